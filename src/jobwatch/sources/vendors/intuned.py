"""Intuned job runs (``JobRun`` of the Intuned public API, v1).

What is special about Intuned, and kept in this module:

* Runs live under ``/{workspaceId}/projects/{project}/jobs/{jobId}/runs``; there is
  no list across jobs, so a source watches a fixed list of job ids.
* The list has no status or updated-since filter, only ``pageSize``/``pageNumber``
  (0-based) and ``sortBy=start_time,desc``. A poll therefore reads the newest pages
  of each job until it meets a run it already knows as finished, and asks again
  about each cached run that is still active (one detail GET each).
* The wire format is snake_case although the TypeScript SDK shows camelCase, and
  the error object is spelled ``retirable``/``correlationId`` in one place and
  ``retriable``/``correlation_id`` in another: every spelling is accepted.
* There is no RUNNING status (``PENDING`` covers it), jobs can be paused, and
  ``COMPLETED`` may hide failed payloads: ``failed_runs > 0`` marks it partial.
* Abort is ``POST …/runs/{id}/terminate``. There is no archive (jobwatch keeps a
  local flag) and no log API.
* ``job_configuration_snapshot`` carries sink credentials, webhook headers, proxy
  userinfo; the detail's ``results.signed_url`` is a bearer URL. They are masked or
  dropped here, before anything is cached. ``reason.details.pausedBy`` is a
  person's e-mail address: the run's metadata and messages are kept with every
  address masked (``***@example.com``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator, model_validator

from jobwatch.config.schema import register_kind
from jobwatch.core import Callback, Progress, Reason, RecordError, Run, RunError, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.core.redact import REDACTED, mask_email, mask_url, redact
from jobwatch.core.rules import BASIC_ACTIONS, Action, Capabilities
from jobwatch.sources.http.transport import ApiClient, decode_json, short
from jobwatch.sources.vendors.base import (
    LOCAL_ARCHIVE,
    POLL_EVERY_S,
    MappingError,
    VendorConfig,
    VendorSource,
)
from jobwatch.sources.vendors.common import Reader

DEFAULT_URL = "https://app.intuned.io/api/v1/workspace"
API_PATH = "/api/v1/workspace"
"""Appended when ``url`` is given as a bare host (``https://app.intuned.io``)."""
TOKEN_ENV = "INTUNED_API_KEY"
"""The variable the official SDKs read; used when the config names no token."""
NEWEST_FIRST = "start_time,desc"

STATUS_MAP: dict[str, Status] = {
    # GetJobRunStatus (SDK), the job-run values.
    "PENDING": Status.RUNNING,  # no RUNNING value exists: PENDING covers executing
    "RESUMING": Status.RUNNING,
    "PAUSED": Status.PAUSED,
    "PAUSING": Status.PAUSED,
    "SUCCESS": Status.SUCCEEDED,
    "COMPLETED": Status.SUCCEEDED,  # partial when failed_runs > 0 (derived by Run)
    "FAILURE": Status.FAILED,
    "TERMINATED": Status.ABORTED,
    "CANCELED": Status.ABORTED,  # may be system-initiated: reason.type says why
    # The per-payload run API's lower-case set (pending, started, completed, canceled,
    # failed), in case a job run ever reports in it; matched case-insensitively.
    "STARTED": Status.RUNNING,
    "FAILED": Status.FAILED,
    "CANCELLED": Status.ABORTED,
}
"""Raw Intuned status (upper-cased) → normalized status; anything else is unknown."""

_SECRET_FIELDS = frozenset({"accesskeyid", "secretaccesskey", "sessiontoken"})
"""The spec's sink credentials, masked by name wherever they sit in a snapshot."""
_URL_FIELDS = frozenset({"url", "endpoint", "proxy"})
"""Fields holding URLs of sinks, proxies and notifications (userinfo, ``?token=``)."""


def scrub(value: Any, *, emails: bool = False) -> Any:
    """A snapshot as it may be kept: :func:`redact` with Intuned's secret and URL
    fields (any ``headers`` are masked by :func:`redact` itself); with ``emails``,
    every e-mail address masked too (what a person did: ``pausedBy``)."""
    return redact(value, keys=_SECRET_FIELDS, url_keys=_URL_FIELDS, emails=emails)


def _personal(text: str | None) -> str | None:
    """A message that may name who paused or stopped a run, its address masked."""
    return mask_email(text) if text is not None else None


# -- pure helpers: the mapper must never depend on state --------------------------------


def _read(raw: Any) -> Reader:
    """Intuned records are read leniently: an odd value is unknown, never an error
    (the API's own spellings and types vary between its pages and SDKs)."""
    return Reader(raw if isinstance(raw, Mapping) else {}, strict=False)


def _error(raw: Any) -> RunError | None:
    if not isinstance(raw, Mapping):
        return None
    read = _read(raw)
    return RunError(
        code=read.text("code", numbers=True),
        message=_personal(read.text("message", numbers=True)),
        category=read.text("category", numbers=True),
        correlation_id=read.text("correlation_id", "correlationId", numbers=True),
        doc_url=read.text("doc_url", "docUrl"),
        retriable=read.flag("retriable", "retirable"),
    )


def _reason(raw: Any) -> Reason | None:
    if not isinstance(raw, Mapping):
        return None
    read = _read(raw)
    return Reason(
        type=read.text("type", numbers=True),
        message=_personal(read.text("message", numbers=True)),
        doc_url=read.text("doc_url", "docUrl"),
    )


def _progress(read: Reader) -> Progress | None:
    total = read.whole("payloads", minimum=0)
    succeeded = read.whole("successful_runs", "successfulRuns", minimum=0)
    failed = read.whole("failed_runs", "failedRuns", minimum=0)
    if total is None and succeeded is None and failed is None:
        return None
    pending = None if total is None else max(0, total - (succeeded or 0) - (failed or 0))
    return Progress(total=total, succeeded=succeeded, failed=failed, pending=pending)


def _callback(snapshot: Mapping[str, Any] | None) -> Callback | None:
    """Where results go: the sink, by type and a URL with no credentials in it."""
    sink = _read(snapshot).child("sink")
    kind = sink.text("type")
    if kind == "s3":
        bucket = sink.text("bucket", numbers=True) or "?"
        prefix = sink.text("prefix", numbers=True) or ""
        return Callback(url=mask_url(f"s3://{bucket}/{prefix}"))
    url = sink.text("url")
    return Callback(url=mask_url(url)) if url else None


def _results(raw: Any) -> dict[str, Any] | None:
    """The detail's result file, minus its pre-signed URL (a bearer credential)."""
    if not isinstance(raw, Mapping):
        return None
    keep = ("format", "size", "key", "signed_url_expiration", "signedUrlExpiration")
    out = {key: raw[key] for key in keep if raw.get(key) is not None}
    if _read(raw).get("signed_url", "signedUrl")[1] is not None:
        out["signed_url"] = REDACTED
    return out


def map_run(raw: Any, source: str) -> Run:
    """One Intuned job run (a list item, or a detail ``{"jobRun", "results"}``) as
    a :class:`Run`. Pure: the same payload always maps the same way."""
    outer = Reader.of(raw, "job run", strict=False)
    results: Any = None
    inner = outer.obj("jobRun", "job_run", strict=True)  # a detail's envelope
    read = outer
    if inner is not None:
        results, read = outer.raw.get("results"), _read(inner)
    run_id = read.text("id", numbers=True)
    if run_id is None:
        raise MappingError("job run has no id")
    status_raw = read.text("status")
    status = STATUS_MAP.get(status_raw.strip().upper(), Status.UNKNOWN) if status_raw else None
    job = read.text("job_id", "jobId", numbers=True)
    snapshot = read.obj("job_configuration_snapshot", "jobConfigurationSnapshot")
    error, reason = read.obj("error"), read.obj("reason")
    metadata = {
        "workspace_id": read.text("workspace_id", "workspaceId", numbers=True),
        "project_id": read.text("project_id", "projectId", numbers=True),
        "results": _results(results),
        "error_details": error.get("details") if error is not None else None,
        "reason_details": reason.get("details") if reason is not None else None,
    }
    metadata = {key: value for key, value in metadata.items() if value is not None}
    return Run(
        id=run_id,
        source=source,
        job=job,
        label=job,
        type=read.text("type", numbers=True),
        status=status or Status.UNKNOWN,
        status_raw=status_raw,
        created_at=read.time("created_at", "createdAt"),
        started_at=read.time("start_time", "startTime"),
        ended_at=read.time("end_time", "endTime"),
        updated_at=read.time("updated_at", "updatedAt"),
        progress=_progress(read),
        error=_error(error),
        reason=_reason(reason),
        config=scrub(snapshot) if snapshot is not None else None,
        metadata=scrub(metadata, emails=True) or None,
        callback=_callback(snapshot),
    )


def _newest(items: list[Run | RecordError], limit: int) -> list[Run | RecordError]:
    """The ``limit`` most recently started runs across jobs (error rows all kept)."""
    runs = [item for item in items if isinstance(item, Run)]
    floor = datetime.min.replace(tzinfo=UTC)
    runs.sort(key=lambda run: run.started_at or run.created_at or floor, reverse=True)
    return [*(item for item in items if isinstance(item, RecordError)), *runs[:limit]]


def _q(segment: str) -> str:
    return quote(segment, safe="")


# -- the source --------------------------------------------------------------------------


LOGS_NOTE = (
    "Intuned has no API for job-run logs. Open the job run in the Intuned "
    "dashboard (app.intuned.io → your project → Jobs → the job → Runs) to see "
    "each payload's attempts, logs and traces."
)
"""Shown where the log would be: Intuned has no log API for job runs."""


class IntunedSource(VendorSource):
    """The job runs of a few Intuned jobs in one project."""

    KIND: ClassVar[str] = "intuned"
    SYSTEM: ClassVar[str] = "Intuned"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "jobwatch asks Intuned to terminate the job run; payloads already "
            "processed keep their results."
        ),
        archive_effect=LOCAL_ARCHIVE.format(system="Intuned"),
        logs=False,
        logs_note=LOGS_NOTE,
        pace=POLL_EVERY_S,
        actions=BASIC_ACTIONS | {Action.RERUN},
        rerun_effect=(
            "jobwatch asks Intuned to trigger the job again (POST …/jobs/{id}/trigger): "
            "a new job run with the job's configuration as it is now."
        ),
    )

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        jobs: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(name, api, **kwargs)
        self.jobs: tuple[str, ...] = tuple(dict.fromkeys(jobs))
        if not self.jobs:
            raise ValueError("an Intuned source needs at least one job id")

    def scrub_raw(self, raw: Any) -> Any:
        """Error rows mask what the mapper would have masked."""
        return scrub(raw, emails=True)

    def parse(self, raw: Any) -> Run:
        return map_run(raw, self.name)

    # -- HTTP ------------------------------------------------------------------------

    async def _get(self, url: str, params: Mapping[str, str] | None = None) -> Any | None:
        """Decoded JSON; ``None`` for a 404 (an unknown job or run), which callers
        turn into something the user can act on."""
        response = await self.api.request("GET", url, params=params)
        if response.status_code == 404:
            return None
        self.raise_for(response, doing=f"reading {url}")
        return decode_json(response, self.name)

    # -- polling ---------------------------------------------------------------------

    async def poll(self, first: bool) -> Iterable[Run | RecordError]:
        items: list[Run | RecordError] = []
        seen: set[str] = set()
        for job in self.jobs:
            items += await self._list_job(job, first, seen)
        if first:
            items = _newest(items, self.max_runs)
        # No updated-since filter exists: ask again about what may still change.
        stale = [run for run in self.active_runs() if run.id not in seen]
        items += await self.reread(stale, self._reread_one)
        errors = [item for item in items if isinstance(item, RecordError)]
        # Error rows first: a change set ends at its last run's revision, so an error
        # remembered after every run would only be delivered by the next call.
        return [*errors, *(self._keep_results(i) for i in items if isinstance(i, Run))]

    async def _list_job(self, job: str, first: bool, seen: set[str]) -> list[Run | RecordError]:
        """Newest-first pages of one job: up to ``max_runs`` on the first poll, then
        only until a run already known as finished shows up."""
        size = min(self.page_size, self.max_runs)
        out: list[Run | RecordError] = []
        for number in range(math.ceil(self.max_runs / size)):
            params = {"pageSize": str(size), "pageNumber": str(number), "sortBy": NEWEST_FIRST}
            body = await self._get(f"/jobs/{_q(job)}/runs", params)
            if body is None:
                message = (
                    f"Intuned answered 404 for job {job!r}: check workspace_id, project "
                    "and the job id"
                )
                return [RecordError(source=self.name, id=f"job:{short(job, 100)}", message=message)]
            page = _read(body)
            records = page.get("jobRuns", "job_runs")[1] if isinstance(body, Mapping) else body
            if not isinstance(records, list):
                return [*out, *self.parse_all(body, "job run")]
            total = page.whole("totalCount", "total_count", minimum=0)
            reached_known = False
            for item in self.parse_all(records, "job run"):
                out.append(item)
                if isinstance(item, Run):
                    seen.add(item.id)
                    known = self.cached(item.id)
                    reached_known |= known is not None and known.status.is_terminal
            if first and sum(isinstance(i, Run) for i in out) >= self.max_runs:
                break
            if (not first and reached_known) or len(records) < size:
                break
            if total is not None and (number + 1) * size >= total:
                break
        return out

    async def _reread_one(self, run: Run) -> Run | RecordError:
        """A cached active run as it is now, asked of its own job when known."""
        found = await self._detail(run.id, [run.job] if run.job else list(self.jobs))
        if found is None:
            raise RunNotFound(f"{self.name}: Intuned no longer has job run {run.id!r}")
        return found

    def _keep_results(self, item: Run) -> Run:
        """List items carry no ``results``; keep what a detail call learned so a
        poll does not flip the run back and forth."""
        old = self.cached(item.id)
        had = (old.metadata or {}).get("results") if old else None
        if had is None or (item.metadata or {}).get("results") is not None:
            return item
        return item.evolve(metadata={**(item.metadata or {}), "results": had})

    async def _detail(self, run_id: str, jobs: Sequence[str]) -> Run | RecordError | None:
        for job in jobs:
            body = await self._get(f"/jobs/{_q(job)}/runs/{_q(run_id)}")
            if body is not None:
                return self.parse_safely(body, "job run")
        return None

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        jobs = [run.job] if run is not None and run.job else list(self.jobs)
        found = await self._detail(run_id, jobs)
        if found is None:
            raise RunNotFound(f"{self.name}: Intuned has no job run {run_id!r}")
        if isinstance(found, RecordError):
            raise SourceError(f"{self.name}: {found.message}")
        return found

    # -- actions ---------------------------------------------------------------------

    async def remote_abort(self, run: Run, by: str) -> str:
        """``POST …/terminate``; Intuned records no "who", so ``by`` stays local."""
        for job in [run.job] if run.job else self.jobs:
            url = f"/jobs/{_q(job)}/runs/{_q(run.id)}/terminate"
            response = await self.api.request("POST", url)
            status = response.status_code
            if status == 404:
                continue  # not this job's run (or gone): nothing was terminated
            self.raise_for(
                response,
                doing=f"terminating {run.id}",
                refusal=f"Intuned refused to terminate {run.id}",
            )
            body = decode_json(response, self.name) if response.content else None
            said = body.get("message") if isinstance(body, Mapping) else None
            if isinstance(said, str) and said:
                return short(said)
            return f"Intuned terminated {run.id}"
        raise RunNotFound(f"{self.name}: Intuned has no job run {run.id!r}")

    async def remote_rerun(self, run: Run, by: str) -> tuple[Run, str]:
        """``POST …/jobs/{job}/trigger`` answers ``{jobRunId, message}``; the new run
        is read at once when Intuned has it, else shown queued until the next poll."""
        if not run.job:
            raise TransitionRefused(f"cannot rerun {run.id}: Intuned did not say its job")
        response = await self.api.request("POST", f"/jobs/{_q(run.job)}/trigger")
        self.raise_for(
            response,
            doing=f"triggering job {run.job}",
            not_found=f"Intuned has no job {run.job}",
            refusal=f"Intuned refused to trigger job {run.job}",
        )
        body = decode_json(response, self.name) if response.content else None
        new_id = body.get("jobRunId") if isinstance(body, Mapping) else None
        if not isinstance(new_id, str) or not new_id:
            raise SourceError(f"{self.name}: Intuned triggered job {run.job} but named no run")
        said = body.get("message") if isinstance(body, Mapping) else None
        found = await self._detail(new_id, [run.job])
        if isinstance(found, Run):
            new = found
        else:
            new = Run(id=new_id, source=self.name, job=run.job, status=Status.QUEUED)
        text = short(said) if isinstance(said, str) and said else f"Intuned triggered {run.job}"
        return new, f"{text} (new run {new_id})"


# -- config ------------------------------------------------------------------------------


@register_kind
class IntunedConfig(VendorConfig):
    """``kind = "intuned"``: some jobs of one Intuned project.

    ``url`` is the API base (``https://app.intuned.io/api/v1/workspace``, also
    accepted as the bare host); the API key goes in ``x-api-key`` and comes from
    ``token_env`` (default ``INTUNED_API_KEY``) or ``token_file``.
    """

    KIND: ClassVar[str] = "intuned"

    url: str = DEFAULT_URL
    workspace_id: str = Field(min_length=1)
    project: str = Field(min_length=1)
    """The project's name (or id), as it appears in the API path."""
    jobs: list[str] = Field(min_length=1)
    """Ids of the jobs whose runs are watched."""

    @model_validator(mode="before")
    @classmethod
    def _default_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and not any(
            data.get(k) for k in ("token_env", "token_file", "token")
        ):
            data = {**data, "token_env": TOKEN_ENV}
        return data

    @field_validator("jobs", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("workspace_id", "project")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value: list[str]) -> list[str]:
        jobs = [job.strip() for job in value]
        if not all(jobs):
            raise ValueError("job ids must not be empty")
        return list(dict.fromkeys(jobs))

    def base_path(self) -> str:
        """The path under ``url`` that every request of this source starts with."""
        api = "" if urlsplit(self.url).path.strip("/") else API_PATH
        return f"{api}/{_q(self.workspace_id)}/projects/{_q(self.project)}"

    def build(self, name: str, *, read_only: bool = False) -> IntunedSource:
        api = self.api(name, auth=lambda token: {"x-api-key": token}, base_path=self.base_path())
        return IntunedSource(
            name,
            api,
            jobs=self.jobs,
            page_size=self.page_size,
            flags_path=self.flags_path(),
            max_runs=self.max_runs,
            read_only=read_only or self.read_only,
        )
