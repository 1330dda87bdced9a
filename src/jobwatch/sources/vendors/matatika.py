"""Matatika jobs: the runs of a workspace's (or one pipeline's) ELT pipelines.

Matatika (an ELT platform built on Meltano) lists jobs as HAL collections, paged
with ``page``/``size``/``sort`` and with no "changed since" filter and no
``updated`` field. So a poll reads the newest pages (``sort=created,desc``) until a
page holds only runs already known and finished, then asks again, one by one,
about the runs it still has as active: that is the cheapest way to see every
change. Quirks kept here and nowhere else:

* two status sets: ``RUNNING, COMPLETE, ERROR, UNKNOWN`` (2021) and ``QUEUED,
  RUNNING, COMPLETE, ERROR, STOPPED`` (now); ``STOPPED`` means "timed out *or*
  stopped by hand", which Matatika does not tell apart;
* timestamps without a zone, taken as UTC;
* the ``_embedded`` key of the jobs collection is undocumented (``jobs`` is the
  collection relation; Spring's ``jobList`` and a lone list are accepted too), and
  an empty collection has no ``_embedded`` at all;
* the pipeline list path was documented singular (``/api/pipeline/{id}/jobs``)
  before 2021-07; the plural one is tried first, the singular one on a 404;
* logs come as plain text or NDJSON from ``/logs?sequence=N`` (line N, 0-based),
  204 when there is nothing (new);
* stop (``PUT /api/jobs/{id}/stopped``) only works on ``RUNNING`` jobs; any other
  refusal is Matatika's own message. There is no archive: it is a local flag.

Secrets: the profile e-mail, the pipeline's connector ``properties`` (some are
``PASSWORD`` settings), seed-era ``arguments`` and query strings in ``_links`` are
masked before a run leaves this module; log lines are redacted as they arrive.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import model_validator

from jobwatch.config.schema import register_kind
from jobwatch.core import LogLine, Reason, RecordError, Run, RunError, Status
from jobwatch.core.errors import SourceError, TransitionRefused
from jobwatch.core.levels import LogLevel
from jobwatch.core.redact import clean, mask_email, mask_values, redact
from jobwatch.core.rules import BASIC_ACTIONS, Action, Capabilities
from jobwatch.core.text import MAX_TEXT, cap_text
from jobwatch.sources.http.transport import ApiClient, decode_json, error_message
from jobwatch.sources.vendors.base import (
    LOCAL_ARCHIVE,
    POLL_EVERY_S,
    MappingError,
    VendorConfig,
    VendorSource,
)
from jobwatch.sources.vendors.common import Reader, is_int, parse_datetime

STATUS_MAP: dict[str, Status] = {
    # current set (docs from 2021-06-16 on)
    "QUEUED": Status.QUEUED,
    "RUNNING": Status.RUNNING,
    "COMPLETE": Status.SUCCEEDED,
    "ERROR": Status.FAILED,
    "STOPPED": Status.ABORTED,  # "timed out or was manually stopped"
    # seed-era set (2021-06-07) adds UNKNOWN
    "UNKNOWN": Status.UNKNOWN,
}
"""Matatika's raw job status → normalized status (vendor-apis.md §7.2)."""

EMBEDDED_KEYS = ("jobs", "jobList", "jobResourceList", "job")
"""Where a jobs page keeps its items, most likely first (the key is undocumented)."""

TASK_DETAILS = {"enable-task-details": "true"}
"""Asks Matatika for ``taskName``, ``exitMessage``, ``arguments`` and ``errorMessage``,
which it otherwise leaves null: without them a failed job shows only an exit code."""
HAL_ACCEPT = {"Accept": "application/hal+json, application/json;q=0.9", **TASK_DETAILS}
LOG_ACCEPT = {"Accept": "application/x-ndjson, application/stream+json;q=0.9, text/plain;q=0.5"}
SORT = "created,desc"

STOPPED_REASON = "timed out or was stopped by hand (Matatika does not say which)"

_LOG_TS = re.compile(
    r"^\s*\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)
_LOG_LEVEL = re.compile(
    r"(?i)(?:\[\s*|\|\s*|\blevel=|^)(critical|fatal|error|warning|warn|info|debug)\b"
)
_LEVEL_NAMES = {"warn": "warning", "err": "error", "crit": "critical"}


# -- the pure mapper -------------------------------------------------------------------


def scrub(obj: Any) -> Any:
    """:func:`redact` plus e-mail masking in every string (profiles are PII)."""
    return redact(obj, emails=True)


def mask_arguments(args: Any) -> list[str] | None:
    """Seed-era CLI ``arguments``: redacted as a command line (the value after a
    secret-looking flag is masked, ``--password=x`` and the like too), e-mails masked."""
    if not isinstance(args, list):
        return None
    return redact(["" if arg is None else str(arg) for arg in args], emails=True)


def _exit_code(read: Reader) -> int | None:
    """A whole number; seed-era jobs may send it as text."""
    value = read.raw.get("exitCode")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    return read.whole("exitCode")


def _text(read: Reader, key: str, limit: int = MAX_TEXT) -> str | None:
    """An optional outside string, cleaned, e-mails masked and cut to ``limit``; a
    value of another kind is ignored (optional parts of a job are read leniently)."""
    value = read.text(key, numbers=True, strict=False)
    if value is None:
        return None
    text = mask_email(clean(value, keep_newlines=True)).strip()
    if not text:
        return None
    return cap_text(text, limit)


def _names(value: Any) -> list[str] | None:
    """Names (or ids) of a list of embedded objects, never their settings."""
    if not isinstance(value, list):
        return None
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):
            name = item.get("name") or item.get("id")
            if isinstance(name, str | int) and not isinstance(name, bool):
                out.append(str(name))
        elif isinstance(item, str):
            out.append(item)
    return out


def _links(value: Any) -> dict[str, Any] | None:
    """``_links`` as rel → href (a list of hrefs for repeated rels), query strings
    and userinfo masked by :func:`scrub` since links may carry access tokens."""
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    for rel, link in value.items():
        if isinstance(link, dict):
            out[str(rel)] = link.get("href")
        elif isinstance(link, list):
            out[str(rel)] = [item.get("href") for item in link if isinstance(item, dict)]
    return out or None


def _prune(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None and value != {}}


def parse_job(raw: Any, source: str) -> Run:
    """One Matatika job (any documented era) as a :class:`Run`.

    Pure: depends on ``raw`` only, so it can be fuzzed. Raises
    :class:`MappingError` when the record cannot be a run (no id, a status or a
    timestamp of the wrong type); optional parts of the wrong type are ignored.
    """
    read = Reader.of(raw, "job")  # strict where it matters: id, status, times, exitCode
    job_id = read.raw.get("id")
    if is_int(job_id):
        job_id = str(job_id)
    if not isinstance(job_id, str) or not job_id.strip():
        raise MappingError("job has no id")
    status_raw = read.text("status", keep_blank=True)
    status = Status.UNKNOWN
    if status_raw is not None:
        status = STATUS_MAP.get(status_raw) or STATUS_MAP.get(status_raw.strip().upper(), status)
    created = read.time("created")
    started = read.time("startTime")
    ended = read.time("endTime")
    exit_code = _exit_code(read)

    embedded = read.child("_embedded", strict=False)  # optional parts: odd ones are ignored
    on_pipeline = embedded.child("pipeline", strict=False)
    on_profile = embedded.child("profile", strict=False)
    pipeline, profile = on_pipeline.raw, on_profile.raw

    # exitCode is the only error code Matatika has; a 0 on a job that failed is still
    # worth showing, a 0 on a job that succeeded is not an error.
    went_wrong = status is Status.FAILED or (exit_code is not None and exit_code != 0)
    error_text = _text(read, "errorMessage")
    exit_text = _text(read, "exitMessage")
    message = error_text or (exit_text if went_wrong else None)
    code = str(exit_code) if exit_code is not None and went_wrong else None
    error = RunError(code=code, message=message) if code or message else None
    reason = Reason(type="stopped", message=STOPPED_REASON) if status is Status.ABORTED else None

    owner = None
    for key in ("handle", "name", "id"):
        if (value := _text(on_profile, key, 200)) is not None:
            owner = value
            break

    job_type = _text(read, "type", 100)
    label = _text(on_pipeline, "name", 300) or _text(read, "taskName", 300)
    pipeline_id = pipeline.get("id")
    config = _prune(
        {
            "commitId": read.raw.get("commitId"),
            "arguments": mask_arguments(read.raw.get("arguments")),
            "pipeline": _prune(
                {
                    "id": pipeline_id,
                    "name": pipeline.get("name"),
                    "status": pipeline.get("status"),
                    "timeout": pipeline.get("timeout"),
                    "maxRetries": pipeline.get("maxRetries"),
                    "created": pipeline.get("created"),
                    "lastModified": pipeline.get("lastModified"),
                    "repositoryPath": pipeline.get("repositoryPath"),
                    "triggeredBy": pipeline.get("triggeredBy"),
                    "properties": mask_values(pipeline.get("properties")),
                    "dataComponents": _names(pipeline.get("dataComponents")),
                    "actions": _names(pipeline.get("actions")),
                }
            )
            or None,
        }
    )
    metadata = _prune(
        {
            "attempt": read.raw.get("attempt"),
            "maxAttempts": read.raw.get("maxAttempts"),
            "taskName": read.raw.get("taskName"),
            "exitMessage": None if message == exit_text else exit_text,
            "profile": _prune({k: profile.get(k) for k in ("id", "name", "handle")}) or None,
            "links": _links(read.raw.get("_links")),
        }
    )
    return Run(
        id=job_id,
        source=source,
        job=_text(on_pipeline, "id", 200),
        label=label,
        type=job_type,
        status=status,
        status_raw=status_raw,
        created_at=created,
        started_at=started,
        ended_at=ended,
        error=error,
        reason=reason,
        exit_code=exit_code,
        owner=owner,
        config=scrub(config) or None,
        metadata=scrub(metadata) or None,
    )


def page_items(body: Any, size: int) -> tuple[Any, bool]:
    """The raw jobs of one collection page and whether another page follows.

    Accepts the HAL envelope under any of :data:`EMBEDDED_KEYS` (or its only list),
    an empty collection without ``_embedded``, Spring's ``content`` and a bare list.
    """
    if body is None:
        return [], False
    if isinstance(body, list):
        return body, len(body) >= size
    if not isinstance(body, dict):
        raise MappingError(f"a jobs page must be an object, not {type(body).__name__}")
    items: Any = []
    embedded = body.get("_embedded")
    if isinstance(embedded, dict):
        for key in EMBEDDED_KEYS:
            if key in embedded:
                items = embedded[key]
                break
        else:
            lists = [value for value in embedded.values() if isinstance(value, list)]
            if len(lists) > 1:
                raise MappingError(f"cannot tell the jobs among _embedded {sorted(embedded)}")
            items = lists[0] if lists else []
    elif embedded is not None:
        raise MappingError("_embedded is not an object")
    elif isinstance(body.get("content"), list):
        items = body["content"]
    if isinstance(items, dict):  # HAL allows a lone embedded object
        items = [items]
    count = len(items) if isinstance(items, list) else 0
    page = body.get("page")
    links = body.get("_links")
    if isinstance(page, dict) and is_int(page.get("number")) and is_int(page.get("totalPages")):
        more = page["number"] + 1 < page["totalPages"]
    elif isinstance(links, dict):
        more = "next" in links
    else:
        more = count >= size
    return items, more and count > 0


def _total(body: Any) -> int | None:
    """``page.totalElements`` of a collection page, when it says."""
    page = body.get("page") if isinstance(body, dict) else None
    total = page.get("totalElements") if isinstance(page, dict) else None
    return total if is_int(total) else None


# -- logs ------------------------------------------------------------------------------


def _level(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().lower()
    return _LEVEL_NAMES.get(name, name)[:20]


def log_line(run_id: str, seq: int, record: Any, fallback_ts: datetime) -> LogLine:
    """One log record (a text line, or a decoded NDJSON value) as a :class:`LogLine`.

    The NDJSON schema is undocumented: the text is looked for under the usual keys,
    and the whole object is shown when none is there. Text is always redacted.
    """
    ts: datetime | None = None
    level: str | None = None
    stream = "stdout"
    if isinstance(record, dict):
        text_value = next(
            (
                record[key]
                for key in ("message", "msg", "line", "text", "log", "content", "data")
                if isinstance(record.get(key), str)
            ),
            None,
        )
        text = text_value if text_value is not None else json.dumps(redact(record))
        for key in ("timestamp", "time", "ts", "@timestamp", "created"):
            if record.get(key) is not None:
                ts = Reader(record, strict=False).time(key)
                break
        for key in ("level", "severity", "logLevel", "levelname"):
            if (level := _level(record.get(key))) is not None:
                break
        if isinstance(record.get("stream"), str) and record["stream"].strip():
            stream = clean(record["stream"])[:20]
    elif isinstance(record, str):
        text = record
    else:
        text = json.dumps(record)
    if ts is None and (match := _LOG_TS.match(text)):
        with contextlib.suppress(ValueError):
            ts = parse_datetime(match[1])
    if level is None and (match := _LOG_LEVEL.search(text[:120])):
        level = _level(match[1])
    text = mask_email(clean(text))
    text = cap_text(text)
    return LogLine(
        run_id=run_id,
        seq=seq,
        ts=ts or fallback_ts,
        stream=stream,
        level=LogLevel.of(level),
        text=text,
    )


def parse_log_body(
    run_id: str, after: int, response_text: str, content_type: str, *, complete: bool, ts: datetime
) -> list[LogLine]:
    """A logs response read from ``sequence=after``: line ``after + i`` (0-based)
    becomes seq ``after + i + 1``, so the next request asks for ``sequence=<last seq>``.

    ``complete`` is False while the job runs: a last line without its newline may
    still be growing and is left for the next request.
    """
    text = response_text.replace("\r\n", "\n")
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()  # the newline that ends the last line
    elif pieces and not complete:
        pieces.pop()  # a partial line: read it again once finished
    ndjson = any(kind in content_type for kind in ("ndjson", "stream+json", "json"))
    if ndjson and len(pieces) == 1 and pieces[0].lstrip().startswith("["):
        try:
            records = json.loads(pieces[0])
        except ValueError:
            records = None
        if isinstance(records, list):
            return [log_line(run_id, after + i + 1, r, ts) for i, r in enumerate(records)]
    out: list[LogLine] = []
    seq = after
    for piece in pieces:
        record: Any = piece
        if ndjson:
            if not piece.strip():
                continue  # a blank line between records is no record
            try:
                record = json.loads(piece)
            except ValueError:
                record = piece
        seq += 1
        out.append(log_line(run_id, seq, record, ts))
    return out


# -- the adapter -----------------------------------------------------------------------


class MatatikaSource(VendorSource):
    """Jobs of one Matatika workspace, or of one pipeline in it."""

    KIND: ClassVar[str] = "matatika"
    SYSTEM: ClassVar[str] = "Matatika"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect="jobwatch asks Matatika to stop the job (PUT /api/jobs/{id}/stopped).",
        archive_effect=LOCAL_ARCHIVE.format(system="Matatika"),
        pace=POLL_EVERY_S,
        actions=BASIC_ACTIONS | {Action.RERUN},
        rerun_effect=(
            "jobwatch asks Matatika to run the job's pipeline again (POST "
            "/api/pipelines/{id}/jobs): a new job; Matatika refuses while the pipeline runs."
        ),
    )

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        workspace_id: str | None = None,
        pipeline_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not workspace_id and not pipeline_id:
            raise ValueError("a Matatika source needs a workspace_id or a pipeline_id")
        super().__init__(name, api, **kwargs)
        self.workspace_id = workspace_id
        self.pipeline_id = pipeline_id
        self._singular_pipeline_path = False
        self._vouched: set[str] = set()
        self._total: int | None = None
        """``totalElements`` of the jobs collection at the last poll."""
        self._stopped_here: dict[str, str] = {}
        """Runs we asked to stop, and by whom: their STOPPED is no timeout."""

    # -- mapping ---------------------------------------------------------------------

    def scrub_raw(self, raw: Any) -> Any:
        """Error rows mask what the mapper would have masked."""
        return scrub(raw)

    def parse(self, raw: Any) -> Run:
        return parse_job(raw, self.name)

    def _ours(self, item: Run | RecordError) -> Run | RecordError:
        """A STOPPED run that jobwatch stopped says so instead of "timeout or hand"."""
        if (
            isinstance(item, Run)
            and item.status is Status.ABORTED
            and item.id in self._stopped_here
        ):
            by = self._stopped_here[item.id]
            message = f"stopped on request from jobwatch ({by})" if by else "stopped from jobwatch"
            return item.evolve(reason=Reason(type="stopped", message=clean(message)))
        return item

    # -- HTTP helpers ----------------------------------------------------------------

    def _list_path(self) -> str:
        if self.pipeline_id:
            kind = "pipeline" if self._singular_pipeline_path else "pipelines"
            return f"/{kind}/{quote(self.pipeline_id, safe='')}/jobs"
        assert self.workspace_id is not None
        return f"/workspaces/{quote(self.workspace_id, safe='')}/jobs"

    async def _list_page(self, page: int, size: int) -> Any:
        params = {"page": page, "size": size, "sort": SORT}
        response = await self.api.request(
            "GET", self._list_path(), params=params, headers=HAL_ACCEPT
        )
        if response.status_code == 404 and self.pipeline_id and not self._singular_pipeline_path:
            # The 2021 docs spell it /api/pipeline/{id}/jobs: a server that old may too.
            self._singular_pipeline_path = True
            retry = await self.api.request(
                "GET", self._list_path(), params=params, headers=HAL_ACCEPT
            )
            if retry.status_code < 300:
                response = retry
            else:
                self._singular_pipeline_path = False
        where = (
            f"pipeline {self.pipeline_id}" if self.pipeline_id else f"workspace {self.workspace_id}"
        )
        missing = SourceError(f"{self.name}: Matatika has no {where} (404)")
        self.raise_for(response, doing=f"listing the jobs of {where}", not_found=missing)
        return decode_json(response, self.name)

    def _job_path(self, run_id: str) -> str:
        return f"/jobs/{quote(run_id, safe='')}"

    # -- hooks -----------------------------------------------------------------------

    async def poll(self, first: bool) -> Iterable[Run | RecordError]:
        """Newest pages first; on later polls stop at a page of runs already known and
        finished, then re-read the runs still active that those pages did not show.

        Deletions: a finished job missing from pages that cover its creation time is
        asked for by id (a 404 marks it deleted). When the collection's
        ``totalElements`` is smaller than the jobs known and new would make it,
        something older was deleted: the poll reads on to ``max_runs`` to find it."""
        out: list[Run | RecordError] = []
        seen: set[str] = set()
        size = min(self.page_size, self.max_runs)
        read = 0
        page = 0
        complete = False
        sweep = False
        total: int | None = None
        while read < self.max_runs:
            body = await self._list_page(page, size)
            try:
                raws, more = page_items(body, size)
            except MappingError as exc:
                out.append(
                    RecordError(
                        source=self.name, message=f"unreadable Matatika jobs page {page}: {exc}"
                    )
                )
                break
            if isinstance(raws, list):
                raws = raws[: self.max_runs - read]
                read += len(raws)
            items = [self._ours(item) for item in self.parse_all(raws, "job")]
            out += items
            runs = [item for item in items if isinstance(item, Run)]
            if page == 0:
                total = _total(body)
                new = sum(1 for run in runs if self.cached(run.id) is None)
                if not first and total is not None and self._total is not None:
                    sweep = total < self._total + new
            seen.update(run.id for run in runs)
            settled = all(
                self.cached(run.id) is not None and run.status.is_terminal for run in runs
            )
            if not more or not isinstance(raws, list) or not raws:
                complete = not more and read < self.max_runs
                break
            if settled and not first and not sweep and not self._page_on(seen, page + 1, size):
                break
            page += 1
        self._total = total
        suspects = [] if first else self._gone(seen, out, complete=complete)
        stale = [run for run in self.active_runs() if run.id not in seen]
        again = await self.reread([*stale, *suspects], lambda run: self._job(run.id))
        self._vouched.update(r.id for r in again if isinstance(r, Run) and not r.deleted)
        return out + again

    def _page_on(self, seen: set[str], pages_read: int, size: int) -> bool:
        """Whether reading on to the oldest active run costs fewer requests than
        asking for each active run not seen yet (Matatika has no status filter)."""
        stale = [run for run in self.active_runs() if run.id not in seen]
        times = [run.created_at for run in stale]
        if not stale or None in times:
            return False
        floor = min(t for t in times if t is not None)
        above = sum(1 for r in self._runs.values() if r.created_at and r.created_at >= floor)
        return math.ceil(above / size) - pages_read < len(stale)

    def _gone(
        self, seen: set[str], listed: list[Run | RecordError], *, complete: bool
    ) -> list[Run]:
        """Known finished runs that the pages just read should have held: pages read
        from the newest vouch for everything created after the oldest they hold
        (everything at all when they were the whole collection)."""
        times = [r.created_at for r in listed if isinstance(r, Run) and r.created_at]
        floor = min(times) if times else None
        errors = {e.id for e in listed if isinstance(e, RecordError)}
        out = []
        for run in list(self._runs.values()):
            if run.deleted or run.status.is_active or run.id in seen or run.id in errors:
                continue
            if run.id in self._vouched:
                continue  # Matatika had it when asked by id: its lists just omit it
            if complete or (floor and run.created_at and run.created_at > floor):
                out.append(run)
        return out

    async def _job(self, run_id: str) -> Run | RecordError:
        """One job as Matatika has it now (an error row if it cannot be read)."""
        response = await self.api.request("GET", self._job_path(run_id), headers=HAL_ACCEPT)
        job = f"job {clean(run_id)[:80]}"
        self.raise_for(response, doing=f"reading {job}", not_found=f"Matatika has no {job}")
        return self._ours(self.parse_safely(decode_json(response, self.name), "job"))

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        item = await self._job(run_id)
        if isinstance(item, RecordError):
            raise SourceError(f"{self.name}: {item.message}")
        return item

    async def fetch_logs(self, run: Run, after: int) -> list[LogLine] | None:
        response = await self.api.request(
            "GET",
            self._job_path(run.id) + "/logs",
            params={"sequence": max(0, after)},
            headers=LOG_ACCEPT,
        )
        if response.status_code in (204, 404):
            return []  # nothing (new) yet, or a job too young to have a log
        self.raise_for(response, doing=f"reading the log of {run.id}")
        return parse_log_body(
            run.id,
            max(0, after),
            response.text,
            response.headers.get("content-type", "").lower(),
            complete=not run.status.is_active,
            ts=run.started_at or run.created_at or datetime.now(UTC),
        )

    async def remote_abort(self, run: Run, by: str) -> str:
        response = await self.api.request(
            "PUT", self._job_path(run.id) + "/stopped", headers=HAL_ACCEPT
        )
        self.raise_for(
            response,
            doing=f"stopping {run.id}",
            not_found=f"Matatika has no job {run.id}",
            refusal=f"Matatika refused to stop {run.id}",
        )
        self._stopped_here[run.id] = by
        said = error_message(response)
        return f"Matatika accepted the stop of {run.id}" + (f": {said}" if said else "")

    async def remote_rerun(self, run: Run, by: str) -> tuple[Run, str]:
        """``POST /api/pipelines/{pipeline}/jobs``: a new job of the run's pipeline
        (the run's ``job`` is its pipeline's id)."""
        pipeline = run.job or self.pipeline_id
        if not pipeline:
            raise TransitionRefused(f"cannot rerun {run.id}: Matatika did not say its pipeline")
        response = await self.api.request(
            "POST", f"/pipelines/{quote(pipeline, safe='')}/jobs", headers=HAL_ACCEPT
        )
        self.raise_for(
            response,
            doing=f"starting pipeline {pipeline} again",
            not_found=f"Matatika has no pipeline {pipeline}",
            refusal=f"Matatika refused to run pipeline {pipeline} again",
        )
        body = decode_json(response, self.name) if response.content else None
        new = self.parse_safely(body, "job") if isinstance(body, dict) else None
        if not isinstance(new, Run):
            raise SourceError(
                f"{self.name}: Matatika started pipeline {pipeline} but its answer names no job"
            )
        return new, f"Matatika started pipeline {pipeline} again as job {new.id}"


# -- config ----------------------------------------------------------------------------


@register_kind
class MatatikaConfig(VendorConfig):
    """``kind = "matatika"``: ``url`` is the app (``https://app.matatika.com``, with or
    without ``/api``), and the jobs are a workspace's or one pipeline's."""

    KIND: ClassVar[str] = "matatika"

    workspace_id: str | None = None
    pipeline_id: str | None = None

    @model_validator(mode="after")
    def _ids(self) -> MatatikaConfig:
        for key in ("workspace_id", "pipeline_id"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ValueError(f"{key} is empty")
        if not self.workspace_id and not self.pipeline_id:
            raise ValueError("give workspace_id (all its jobs) or pipeline_id (one pipeline)")
        return self

    def build(self, name: str, *, read_only: bool = False) -> MatatikaSource:
        path = urlsplit(self.url).path.rstrip("/")
        base_path = "" if path.endswith("/api") else "/api"
        api = self.api(
            name, auth=lambda token: {"Authorization": f"Bearer {token}"}, base_path=base_path
        )
        return MatatikaSource(
            name,
            api,
            workspace_id=self.workspace_id,
            pipeline_id=self.pipeline_id,
            page_size=self.page_size,
            flags_path=self.flags_path(),
            max_runs=self.max_runs,
            read_only=read_only or self.read_only,
        )


__all__ = [
    "STATUS_MAP",
    "MatatikaConfig",
    "MatatikaSource",
    "page_items",
    "parse_job",
    "parse_log_body",
]
