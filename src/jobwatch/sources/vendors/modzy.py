"""Modzy jobs: the job history, one job's details, its per-input results, cancel.

Modzy (an ML-ops platform) runs a *job* of one model over a set of inputs. What
this adapter relies on (``vendor-apis.md`` §4):

* ``GET /api/jobs/history`` answers a **bare JSON array** and pages with a
  ``Link: <…>; rel="next"`` header; ``startDate`` filters on the job's
  *creation* date, so it cannot be a change cursor by itself. We sort by
  ``updatedAt`` (newest first) and stop paging at the first job older than the
  last change we saw; ``startDate`` is narrowed to the oldest job that may still
  change (an unfinished one) or the cursor, whichever is earlier.
* Whether ``page`` counts from 0 or 1 is unconfirmed, so the first page is asked
  for without one and later pages come from the ``Link`` header; without it we
  number pages ourselves and tell the bases apart by the ids we already have.
* A job has no start or end time: ``started = submittedAt + queueTime`` and
  ``ended = started + elapsedTime`` (terminal jobs only).
* There is no log; the per-input results (``GET /api/results/{id}``) are shown
  as log lines instead, failed inputs as errors.
* ``submittedBy`` is an API key (or its prefix) and ``user`` holds an e-mail and
  names: neither is ever copied into a run.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import Field

from jobwatch.config.schema import register_kind
from jobwatch.core import LogLine, Progress, Reason, RecordError, Run, RunError, Status
from jobwatch.core.errors import SourceError
from jobwatch.core.levels import LogLevel
from jobwatch.core.redact import REDACTED, clean, mask_email, redact
from jobwatch.core.rules import Capabilities
from jobwatch.core.text import cap_text
from jobwatch.sources.http.transport import ApiClient, decode_json, short
from jobwatch.sources.vendors.base import (
    LOCAL_ARCHIVE,
    POLL_EVERY_S,
    MappingError,
    VendorConfig,
    VendorSource,
)
from jobwatch.sources.vendors.common import Reader, StampCursor

STATUS_MAP: dict[str, Status] = {
    # sdk-go constants.go
    "OPEN": Status.NEW,
    # sdk-python jobs.py
    "SUBMITTED": Status.QUEUED,
    "IN_PROGRESS": Status.RUNNING,
    "COMPLETED": Status.SUCCEEDED,
    "CANCELED": Status.ABORTED,
    "TIMEDOUT": Status.TIMED_OUT,
    # "Cancel a job" and "List the job history" pages
    "PENDING": Status.QUEUED,
    "ERROR": Status.FAILED,
    # spellings the docs use elsewhere (the seed's filter list is lower case)
    "TIMED_OUT": Status.TIMED_OUT,
    "CANCELLED": Status.ABORTED,
}
"""Raw Modzy job status (case-insensitive) → normalized status (§7.2). ``ALL`` and
``TERMINATED`` are filter *categories*, not statuses: a job showing one stays
``unknown`` with its raw value."""

HISTORY = "/jobs/history"
LOG_MAPS_KEPT = 64
_RESULT_META = frozenset(
    {
        "status",
        "engine",
        "error",
        "startTime",
        "updateTime",
        "endTime",
        "elapsedTime",
        "inputFetching",
        "outputUploading",
        "modelLatency",
        "queueTime",
        "voting",
    }
)


def status_of(raw: Any) -> Status:
    """The normalized status of a raw Modzy status; unknown for anything else."""
    if not isinstance(raw, str):
        return Status.UNKNOWN
    key = raw.strip().upper().replace("-", "_").replace(" ", "_")
    return STATUS_MAP.get(key, Status.UNKNOWN)


def _reader(raw: Any, what: str = "job") -> Reader:
    """Modzy jobs are read strictly; its times are always text."""
    return Reader.of(raw, what, epoch=False)


def _text(read: Reader, key: str) -> str | None:
    """A field as text (ids may come as numbers), cleaned for display."""
    value = read.text(key, numbers=True)
    return clean(value) if value is not None else None


def _after(start: datetime | None, ms: int | None) -> datetime | None:
    if start is None or ms is None or ms < 0:
        return None
    try:
        return start + timedelta(milliseconds=ms)
    except OverflowError:
        return None


def _plain(value: Any) -> bool:
    """A flag or a finite number: safe to keep as it is in a config snapshot."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, bool | int)


_SENSITIVE = frozenset(
    {"submittedby", "submittedbykey", "email", "firstname", "lastname", "accesskeys"}
)


def scrub(raw: Any) -> Any:
    """A copy of a raw record with Modzy's key material and PII masked (§4.6)."""
    return redact(raw, keys=_SENSITIVE)


def _input_ids(value: Any) -> list[str]:
    """``jobInputs`` is ``[{identifier}]`` in job details, ``{identifier: [...]}``
    in a submit answer; ids only, never the inputs."""
    if isinstance(value, Mapping):
        value = value.get("identifier")
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    ids: list[str] = []
    for item in items:
        ident = item.get("identifier") if isinstance(item, Mapping) else item
        if isinstance(ident, str) and ident:
            ids.append(clean(ident)[:100])
    return ids


def parse_job(raw: Any, source: str) -> Run:
    """Map one Modzy job (history item, job details or cancel answer) to a run.

    A pure function of the payload, so it can be fuzzed; anything malformed
    raises and becomes an error row for that job only.
    """
    read = _reader(raw)
    job_id = read.raw.get("jobIdentifier")
    if not isinstance(job_id, str) or not job_id.strip():
        raise MappingError("no jobIdentifier")
    status_raw = read.text("status", keep_blank=True)
    status = status_of(status_raw)

    model = read.child("model")
    model_id = _text(model, "identifier")
    version = _text(model, "version")
    job = f"{model_id}@{version}" if model_id and version else model_id

    total = read.whole("total")
    pending = read.whole("pending")
    completed = read.whole("completed")
    failed = read.whole("failed")
    queue_ms = read.whole("queueTime")
    elapsed_ms = read.whole("elapsedTime")
    timeout_ms = read.whole("timeout")

    submitted = read.time("submittedAt")
    started = ended = None
    if status not in (Status.NEW, Status.QUEUED):
        started = _after(submitted, queue_ms)
    if status.is_terminal:
        ended = _after(started, elapsed_ms)
    progress = None
    if any(n is not None for n in (total, completed, failed, pending)):
        progress = Progress(total=total, succeeded=completed, failed=failed, pending=pending)

    error = None
    if status is Status.FAILED or (failed or 0) > 0:
        parts = []
        if failed:
            parts.append(f"{failed} of {total if total is not None else '?'} inputs failed")
        if status is Status.FAILED:
            parts.insert(0, "Modzy reports the job in ERROR")
        error = RunError(
            code=clean(status_raw) if status is Status.FAILED and status_raw else None,
            message="; ".join(parts) + " (the log pane lists each input's error)",
            category="inputs" if failed else None,
        )
    reason = None
    if status is Status.TIMED_OUT:
        limit = f" of {timeout_ms} ms" if timeout_ms is not None else ""
        reason = Reason(type="timeout", message=f"the job passed its timeout{limit}")
    elif status is Status.ABORTED:
        reason = Reason(type="canceled", message="the job was canceled")
    elif status is Status.NEW:
        reason = Reason(
            type="open", message="an OPEN job never completes until it is closed (POST …/close)"
        )

    user = read.child("user")
    team = read.child("team")
    user_id = _text(user, "identifier")
    email = user.raw.get("email")
    team_id = _text(team, "identifier")
    submitted_by = read.raw.get("submittedBy")
    owner: str | None
    if user_id:
        owner = user_id
    elif isinstance(email, str) and email:
        email = clean(email)
        owner = mask_email(email) if "@" in email else REDACTED
    elif submitted_by:
        owner = "API key ***"
    else:
        owner = f"team {team_id}" if team_id else None

    inputs = _input_ids(read.raw.get("jobInputs"))
    metadata = {
        "accountIdentifier": _text(read, "accountIdentifier"),
        "team": team_id,
        "user": user_id,
        "submittedBy": "***" if submitted_by else None,  # an API key or its prefix
        "model": {"identifier": model_id, "version": version} if model_id else None,
        "queueTime_ms": queue_ms,
        "inputs": len(inputs) if inputs else None,
        "inputIdentifiers": inputs[:20] or None,
    }
    config = {
        key: read.raw[key]
        for key in (
            "explain",
            "timeout",
            "imageClassificationModel",
            "inputByteAmount",
            "hoursDeleteInput",
        )
        if _plain(read.raw.get(key))
    }
    job_type = read.raw.get("jobType")
    return Run(
        id=clean(job_id.strip()),
        source=source,
        job=job,
        label=_text(model, "name"),
        type=clean(job_type) if isinstance(job_type, str) and job_type else None,
        status=status,
        status_raw=clean(status_raw) if status_raw is not None else None,
        created_at=read.time("createdAt"),
        queued_at=submitted,
        started_at=started,
        ended_at=ended,
        updated_at=read.time("updatedAt"),
        progress=progress,
        error=error,
        reason=reason,
        owner=owner,
        config=redact(config) or None,
        metadata=redact({k: v for k, v in metadata.items() if v is not None}) or None,
        duration_ms=float(elapsed_ms) if status.is_terminal and elapsed_ms is not None else None,
        partial=status is Status.SUCCEEDED and (failed or 0) > 0,
    )


def modzy_time(when: datetime) -> str:
    """The ``YYYY-MM-DDThh:mm:ss.sTZD`` form the history filters ask for, in UTC;
    truncated to the millisecond, so a ``>=`` filter never skips a job."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class ModzySource(VendorSource):
    """Modzy's job history as a jobwatch source."""

    KIND: ClassVar[str] = "modzy"
    SYSTEM: ClassVar[str] = "Modzy"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "jobwatch asks Modzy to cancel the job (DELETE /api/jobs/{id}); inputs "
            "already processed keep their results."
        ),
        archive_effect=LOCAL_ARCHIVE.format(system="Modzy"),
        pace=POLL_EVERY_S,
        rerun_refusal=(
            "Modzy has no call to run a job again, and a new job needs its inputs, "
            "which jobwatch never keeps"
        ),
    )
    ID_KEYS: ClassVar[tuple[str, ...]] = ("jobIdentifier", "identifier", "id")

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        lookback_days: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, api, **kwargs)
        self.lookback_days = lookback_days
        self._cursor = StampCursor()
        """The newest ``updatedAt`` seen: later polls stop paging below it, less the
        shared overlap (a job committed a moment after a newer one was updated
        must not fall between two polls)."""
        self._pages_by_link = False
        """Seen a ``Link`` header: from then on its absence marks the last page."""
        self._log_keys: OrderedDict[str, dict[str, int]] = OrderedDict()
        """Per run, each result input's log seq, so lines keep their number."""

    def parse(self, raw: Any) -> Run:
        return parse_job(raw, self.name)

    def scrub_raw(self, raw: Any) -> Any:
        """An error row's excerpt never shows the key or the PII (the generic
        redaction does not know ``submittedBy`` or ``email``)."""
        return scrub(raw)

    # -- polling -------------------------------------------------------------------

    def _since(self, now: datetime) -> datetime:
        """``startDate`` for this poll: the look-back window on the first sync, then
        the earliest of the cursor and the creation of any job that may still change."""
        window = now - timedelta(days=self.lookback_days)
        since = self._cursor.since()
        if since is None:
            return window
        bounds = [since]
        bounds += [run.created_at or run.queued_at or window for run in self.active_runs()]
        return min(bounds)

    async def poll(self, first: bool) -> list[Run | RecordError]:
        if first:
            self._cursor.reset()
        now = datetime.now(UTC)
        per_page = max(1, min(self.page_size, self.max_runs))
        params = {
            "startDate": modzy_time(self._since(now)),
            "sort-by": "updatedAt",
            "direction": "DESC",
            "per-page": str(per_page),
        }
        stop_below = self._cursor.since()
        max_pages = math.ceil(self.max_runs / per_page) + 1
        out: list[Run | RecordError] = []
        runs = 0
        seen: set[str] = set()
        url: str | None = HISTORY
        query: dict[str, str] | None = params
        number: int | None = None  # the page we numbered ourselves, when no Link came
        for _ in range(max_pages):
            assert url is not None
            response = await self._get_page(url, query)
            body = decode_json(response, self.name)
            if body is None:
                body = []  # an empty answer: no jobs
            items = self.parse_all(body, "job")
            ids = [i.id for i in items if isinstance(i, Run)]
            if number == 1 and ids and seen.issuperset(ids):
                number, query = 2, {**params, "page": "2"}  # 1-based: page 1 was the first
                continue
            older = False
            for item in items:
                if isinstance(item, Run):
                    if item.id in seen:
                        continue
                    if runs >= self.max_runs:
                        break
                    seen.add(item.id)
                    runs += 1
                    updated = item.updated_at
                    if stop_below is not None and updated is not None and updated < stop_below:
                        older = True
                out.append(item)
            if older or runs >= self.max_runs or not isinstance(body, list):
                break
            if len(body) < per_page:
                break  # a short page is the last, whatever the Link says (as sdk-go reads it)
            link = response.links.get("next", {}).get("url")
            if link:
                self._pages_by_link = True
                url, query = self._follow(response, link), None
                if url is None:
                    out.append(
                        RecordError(
                            source=self.name,
                            message=f"Modzy sent a next-page link to another host "
                            f"({short(link, 80)}); paging stopped there",
                        )
                    )
                    break
                number = None
            elif self._pages_by_link:
                break  # this server pages by Link: no link means no further page
            else:
                number = 1 if number is None else number + 1
                url, query = HISTORY, {**params, "page": str(number)}
        self._cursor.advance(i.updated_at for i in out if isinstance(i, Run))
        return out

    async def _get_page(self, url: str, query: Mapping[str, str] | None) -> httpx.Response:
        response = await self.api.request("GET", url, params=query)
        self.raise_for(response, doing="reading the job history")
        return response

    def _follow(self, response: httpx.Response, link: str) -> str | None:
        """The next page's absolute URL; ``None`` when it leaves the server, where
        the API key must never be sent."""
        target = urljoin(str(response.request.url), link)
        here, there = urlsplit(str(response.request.url)), urlsplit(target)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            return None
        return target

    # -- one job ---------------------------------------------------------------------

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        response = await self.api.request("GET", f"/jobs/{quote(run_id, safe='')}")
        job = f"job {short(run_id, 80)}"
        self.raise_for(response, doing=f"reading {job}", not_found=f"Modzy has no {job}")
        item = self.parse_safely(decode_json(response, self.name), "job")
        if isinstance(item, RecordError):
            raise SourceError(f"{self.name}: {item.message}")
        return item

    async def remote_abort(self, run: Run, by: str) -> str:
        """``DELETE /api/jobs/{id}`` cancels SUBMITTED, PENDING and IN_PROGRESS jobs;
        a 4xx (an auditor's key, a job that finished meanwhile) is Modzy's refusal."""
        response = await self.api.request("DELETE", f"/jobs/{quote(run.id, safe='')}")
        self.raise_for(
            response,
            doing=f"canceling job {run.id}",
            not_found=f"Modzy has no job {run.id}",
            refusal=f"Modzy refused to cancel {run.id}",
        )
        status = None
        try:
            body = decode_json(response, self.name)
            if isinstance(body, Mapping) and isinstance(body.get("status"), str):
                status = clean(body["status"])
        except SourceError:
            pass
        return f"Modzy is canceling {run.id}" + (f" (now {status})" if status else "")

    # -- per-input results as the log --------------------------------------------------

    async def fetch_logs(self, run: Run, after: int) -> list[LogLine]:
        response = await self.api.request("GET", f"/results/{quote(run.id, safe='')}")
        body: Any = None
        if response.status_code not in (204, 404):  # no results yet, or none at all
            self.raise_for(response, doing=f"reading the results of {run.id}")
            body = decode_json(response, self.name)
        entries = result_entries(body, run)
        keys = self._log_keys.setdefault(run.id, {})
        self._log_keys.move_to_end(run.id)
        while len(self._log_keys) > LOG_MAPS_KEPT:
            self._log_keys.popitem(last=False)
        new = sorted((e for e in entries if e[0] not in keys), key=lambda e: (e[1], e[0]))
        for key, *_ in new:
            keys[key] = len(keys) + 1
        return sorted(
            (
                LogLine(
                    run_id=run.id,
                    seq=keys[key],
                    ts=ts,
                    stream="results",
                    level=LogLevel.of(lvl),
                    text=t,
                )
                for key, ts, lvl, t in entries
                if keys[key] > after
            ),
            key=lambda line: line.seq,
        )


def _entry_time(entry: Mapping[str, Any], fallback: datetime) -> datetime:
    read = Reader(entry, strict=False, epoch=False)
    for field in ("endTime", "updateTime", "startTime"):
        if (when := read.time(field)) is not None:
            return when
    return fallback


def _describe(key: str, entry: Any, failed: bool) -> tuple[str, str]:
    """(level, text) of one input's result; outputs by name only, never their data."""
    if not isinstance(entry, Mapping):
        return ("error" if failed else "info", f"input {key}: {short(repr(entry), 300)}")
    status = entry.get("status") if isinstance(entry.get("status"), str) else None
    error = entry.get("error")
    failed = failed or bool(error) or (status or "").upper() in ("FAILED", "ERROR")
    if failed:
        what = error if isinstance(error, str) and error else status or "failed"
        return "error", f"input {key} failed: {cap_text(clean(str(what)))}"
    text = f"input {key}: {status or 'done'}"
    elapsed = entry.get("elapsedTime")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
        text += f" in {elapsed:g} ms"
    engine = entry.get("engine")
    if isinstance(engine, str) and engine:
        text += f" on {short(engine, 80)}"
    outputs = [k for k, v in entry.items() if k not in _RESULT_META and isinstance(v, dict | list)]
    if outputs:
        text += "; outputs: " + ", ".join(short(str(k), 60) for k in outputs[:10])
    return "info", text


def result_entries(body: Any, run: Run) -> list[tuple[str, datetime, str, str]]:
    """``(key, ts, level, text)`` per input of a ``/api/results`` answer, plus a
    summary once the job is finished, or one plain line when there is nothing."""
    fallback = run.ended_at or run.updated_at or run.queued_at or datetime.now(UTC)
    out: list[tuple[str, datetime, str, str]] = []
    if body is not None and not isinstance(body, Mapping):
        text = f"Modzy sent results this monitor cannot read: {short(repr(body), 200)}"
        return [("\x00unreadable", fallback, "warning", text)]
    body = body or {}
    for group, failed in (("results", False), ("failures", True)):
        entries = body.get(group)
        if not isinstance(entries, Mapping):
            continue
        for key, entry in entries.items():
            name = clean(str(key))[:200]
            when = _entry_time(entry, fallback) if isinstance(entry, Mapping) else fallback
            level, text = _describe(name, entry, failed)
            out.append((f"{group}/{name}", when, level, clean(text)))
    if body.get("finished") is True:
        counts = [f"{body.get(k)} {k}" for k in ("total", "completed", "failed") if k in body]
        text = "job finished" + (": " + ", ".join(counts) if counts else "")
        out.append(("\x7fsummary", max([fallback, *(e[1] for e in out)]), "info", clean(text)))
    if not out:
        text = (
            "Modzy has no per-input results for this job"
            if run.status.is_terminal
            else "no input has finished yet; each input's result appears here as it finishes"
        )
        out.append(("\x00none", fallback, "info", text))
    return out


@register_kind
class ModzyConfig(VendorConfig):
    """``[sources.NAME] kind = "modzy"``: one Modzy instance, watched with one key.

    ``url`` is the instance (``https://app.modzy.com``; a trailing ``/api`` is
    fine). The key is sent as ``Authorization: ApiKey <key>``; with ``team_id``
    the token is a team token, sent as ``Bearer`` with ``Modzy-Team-Id``.
    """

    KIND: ClassVar[str] = "modzy"

    team_id: str | None = None
    lookback_days: int = Field(default=30, ge=1, le=3650)
    """How far back the first sync looks (history needs a ``startDate``)."""

    def build(self, name: str, *, read_only: bool = False) -> ModzySource:
        path = urlsplit(self.url).path.rstrip("/")
        base_path = "" if path.endswith("/api") else "/api"
        return ModzySource(
            name,
            self.api(name, modzy_auth(name, self.team_id), base_path=base_path),
            flags_path=self.flags_path(),
            max_runs=self.max_runs,
            read_only=read_only or self.read_only,
            page_size=self.page_size,
            lookback_days=self.lookback_days,
        )


def modzy_auth(name: str, team_id: str | None) -> Callable[[str], Mapping[str, str]]:
    """The auth headers for a token; a token that cannot be a header value is
    refused here, before an HTTP library could echo it in an error."""

    def auth(token: str) -> Mapping[str, str]:
        if not token.isascii() or not token.isprintable():
            raise SourceError(f"{name}: the Modzy key holds characters a header cannot carry")
        if team_id:
            return {"Modzy-Team-Id": team_id, "Authorization": f"Bearer {token}"}
        return {"Authorization": f"ApiKey {token}"}

    return auth
