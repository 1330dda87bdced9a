"""Salesforce ``AiJobRun``: Agentforce prompt-template batch runs, over the REST API.

An ``AiJobRun`` is an ordinary sObject, so everything goes through the generic
REST resources of ``{instance}/services/data/vXX.X``:

* list: SOQL through ``GET …/query?q=``, following ``nextRecordsUrl``; the first
  sync reads the ``max_runs`` most recently modified runs, every later poll what
  has ``SystemModstamp >`` the newest stamp seen less five minutes (a run committed
  late with an earlier stamp is still found; what is read twice is no change);
* item counts: one aggregate per poll over the ``AiJobRunItem`` children of the
  runs that changed and the runs still active (``GROUP BY AiJobRunId, Status``),
  so lists show progress and partial runs without opening them;
* deletions: ``GET …/sobjects/AiJobRun/deleted/?start=&end=`` (getDeleted) at most
  once a minute (it ignores seconds); a run listed there is marked deleted, once;
* detail: ``GET …/sobjects/AiJobRun/{Id}`` plus one aggregate over its
  ``AiJobRunItem`` children (``GROUP BY Status``) for the progress counters, which
  the run itself does not carry;
* log: the run has none; the log pane lists its items, one line each, without the
  prompt ``Input``, ``PreprocessedInput`` or ``Response`` (CRM data that is never
  even selected);
* abort and archive: ``PATCH …/sobjects/AiJobRun/{Id}`` with ``Status`` set to
  ``Aborted`` or ``Archived``; Salesforce's ``[{"message", "errorCode"}]`` refusal
  becomes :class:`TransitionRefused`. Nothing can take a run out of ``Archived``.

Raw ``Archived`` replaces the outcome in Salesforce, so jobwatch keeps it apart:
the run gets ``archived=True`` and the status it had. That is the status seen
before (in this process, or remembered in the source's state file when jobwatch
archived it, :mod:`.state`); for a run first seen archived it is derived from
its items (unfinished items: aborted; all failed: failed; else succeeded,
partial when some failed), an ``ErrorCode`` meaning failed, and unknown when
there is nothing to tell by — never from ``EndTime`` alone.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from jobwatch.config.schema import register_kind
from jobwatch.core import LogLine, Progress, Reason, RecordError, Run, RunError, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.core.levels import LogLevel
from jobwatch.core.redact import clean, mask_email, redact
from jobwatch.core.rules import Action, Capabilities
from jobwatch.sources.http.transport import (
    ApiClient,
    decode_json,
    error_message,
    short,
)
from jobwatch.sources.vendors.base import (
    POLL_EVERY_S,
    MappingError,
    VendorConfig,
    VendorSource,
    mark_deleted,
    raw_excerpt,
)
from jobwatch.sources.vendors.common import Reader, StampCursor
from jobwatch.sources.vendors.state import StateFile, state_path

__all__ = [
    "DEFAULT_API_VERSION",
    "ITEM_FIELDS",
    "RUN_FIELDS",
    "STATUS_MAP",
    "SalesforceConfig",
    "SalesforceSource",
    "map_run",
    "normalize_api_version",
    "progress_from_counts",
    "soql_quote",
]

DEFAULT_API_VERSION = "v63.0"
"""The object reference says 63.0; a newer page says 64.0, so both are accepted."""

STATUS_MAP: dict[str, Status | None] = {
    "New": Status.NEW,
    "ReadyToStart": Status.QUEUED,  # starts by itself, in CreatedDate order
    "Queued": Status.QUEUED,
    "InProgress": Status.RUNNING,
    "Completed": Status.SUCCEEDED,
    "Failed": Status.FAILED,
    "Aborted": Status.ABORTED,
    "Archived": None,  # a flag, not an outcome: see map_run
}
"""Every documented ``AiJobRun.Status``; ``None`` marks the archived flag."""
_STATUS_FOLDED = {raw.casefold(): status for raw, status in STATUS_MAP.items()}
ARCHIVED_RAW = "Archived"

RUN_FIELDS = (
    "Id",
    "Name",
    "Label",
    "Status",
    "JobType",
    "Target",
    "StartTime",
    "EndTime",
    "ErrorCode",
    "ErrorMessage",
    "OwnerId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)
ITEM_FIELDS = (
    "Id",
    "Name",
    "Status",
    "ErrorCode",
    "ErrorMessage",
    "CreatedDate",
    "LastModifiedDate",
)
"""Deliberately without ``Input``, ``PreprocessedInput`` and ``Response`` (CRM PII)."""

# AiJobRunItem.Status: only the default ``Ready`` is documented, so every plausible
# spelling of the other outcomes is accepted.
ITEM_SUCCEEDED = frozenset({"completed", "complete", "succeeded", "success", "processed", "done"})
ITEM_FAILED = frozenset({"failed", "failure", "error", "errored"})
ITEM_STOPPED = frozenset({"aborted", "cancelled", "canceled", "skipped", "archived"})

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
"""A Salesforce record id; anything else never reaches a URL or a SOQL string."""
_VERSION = re.compile(r"[vV]?(\d{1,3})(?:\.(\d{1,2}))?")
_NOT_FOUND_CODES = frozenset({"NOT_FOUND", "MALFORMED_ID", "INVALID_ID_FIELD", "ENTITY_IS_DELETED"})
MAX_PAGES = 200
"""Safety stop for one poll's ``nextRecordsUrl`` chain (up to 400,000 records)."""
COUNT_IDS_PER_QUERY = 200
"""Run ids per item-count aggregate: a GET's SOQL stays well under the URL limit
(~4,400 characters) and its rows under the 2,000 an aggregate may return."""
DELETED_EVERY_S = 60.0
"""getDeleted ignores seconds, so asking more often than once a minute tells nothing."""
DELETED_LOOKBACK = timedelta(minutes=5)


# -- pure helpers ----------------------------------------------------------------------


def normalize_api_version(value: str) -> str:
    """``63``, ``63.0``, ``v63.0`` → ``v63.0`` (the path segment Salesforce wants)."""
    match = _VERSION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"api_version {value!r} is not a Salesforce API version like v63.0")
    return f"v{int(match[1])}.{int(match[2] or 0)}"


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash escapes, never a doubled quote."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def soql_datetime(value: datetime) -> str:
    """The documented ``YYYY-MM-DDThh:mm:ssZ`` literal. Cut to whole seconds, so the
    filter can only include more, never skip a run modified in the same second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scrub(value: str, limit: int | None) -> str:
    """Outside text on one line, credentials and e-mail local parts masked
    (``ErrorMessage`` may echo CRM data from the prompt); ``None``: no cut below
    the shared cap the reader applied."""
    joined = " ".join(value.split())
    text = clean(joined) if limit is None else short(joined, limit)
    return mask_email(text)


def _text(read: Reader, key: str, limit: int | None = 300) -> str | None:
    """A field as text (numbers too) on one line, cut to ``limit``, e-mails masked."""
    value = read.text(key, numbers=True)
    return (_scrub(value, limit) or None) if value is not None else None


def _reader(raw: Any, what: str = "record") -> Reader:
    """Salesforce records are read strictly, and its date-times are always text."""
    return Reader.of(raw, what, epoch=False)


def _stamp(raw: Any) -> datetime | None:
    """A record's ``SystemModstamp`` if readable: the poll cursor moves past even a
    record whose other fields are broken."""
    try:
        return _reader(raw).time("SystemModstamp")
    except MappingError:
        return None


def _derived_status(
    raw: Mapping[str, Any], known: Status | None, progress: Progress | None
) -> Status:
    """The outcome of an archived run: the one seen before archiving, else what the
    record and its items still show. Never ``EndTime`` alone: Salesforce sets it
    on an aborted run too."""
    if known is not None and known.is_terminal:
        return known
    if raw.get("ErrorCode"):
        return Status.FAILED
    if progress is None or not progress.total:
        return Status.UNKNOWN  # no items to tell by
    if progress.pending:
        return Status.ABORTED  # stopped with items unprocessed
    if progress.failed == progress.total:
        return Status.FAILED
    return Status.SUCCEEDED  # partial when some failed (derived by Run)


def map_run(
    raw: Any,
    source: str,
    *,
    known: Status | None = None,
    progress: Progress | None = None,
) -> Run:
    """One ``AiJobRun`` record as a :class:`Run`; raises on a record it cannot read.

    A pure function of its arguments: ``known`` is the status the run had before
    (used only when it is now ``Archived``), ``progress`` the item counts if known.
    """
    read = _reader(raw)
    run_id = read.raw.get("Id")
    if not isinstance(run_id, str) or not _ID.fullmatch(run_id):
        raise MappingError("record has no valid Id")
    raw_status = read.text("Status", keep_blank=True)
    archived = False
    if raw_status is None:
        status = Status.UNKNOWN
    else:
        mapped = _STATUS_FOLDED.get(raw_status.strip().casefold(), Status.UNKNOWN)
        if mapped is None:
            archived, status = True, _derived_status(read.raw, known, progress)
        else:
            status = mapped
    code, message = _text(read, "ErrorCode", 200), _text(read, "ErrorMessage", None)
    attributes = read.obj("attributes", strict=False)
    url = attributes.get("url") if attributes is not None else None
    metadata = {
        "name": _text(read, "Name"),
        "created_by": _text(read, "CreatedById"),
        "last_modified_by": _text(read, "LastModifiedById"),
        "url": url if isinstance(url, str) else None,
    }
    metadata = {key: value for key, value in metadata.items() if value is not None}
    return Run(
        id=run_id,
        source=source,
        job=_text(read, "Target"),
        label=_text(read, "Label") or _text(read, "Name"),
        type=_text(read, "JobType", 100),
        status=status,
        status_raw=short(raw_status, 100) if raw_status is not None else None,
        created_at=read.time("CreatedDate"),
        started_at=read.time("StartTime"),
        ended_at=read.time("EndTime"),
        updated_at=read.time("SystemModstamp") or read.time("LastModifiedDate"),
        progress=progress,
        error=RunError(code=code, message=message) if code or message else None,
        reason=(
            Reason(type="user_abort", message="The job run was aborted by the user.")
            if status is Status.ABORTED
            else None
        ),
        owner=_text(read, "OwnerId", 100),
        metadata=redact(metadata) or None,
        archived=archived,
    )


def _count(record: Mapping[str, Any]) -> int:
    """An aggregate row's count: ``expr0`` unless the query named it."""
    value = record.get("expr0")
    if not isinstance(value, int) or isinstance(value, bool):
        value = next(
            (v for k, v in record.items() if isinstance(v, int) and not isinstance(v, bool)),
            0,
        )
    return max(0, value)


def counts_by_run(records: Iterable[Any]) -> dict[str, list[Mapping[str, Any]]]:
    """``SELECT AiJobRunId, Status, COUNT(Id) … GROUP BY AiJobRunId, Status`` rows,
    per run id (rows without a readable id are dropped)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if isinstance(record, Mapping) and isinstance(record.get("AiJobRunId"), str):
            out.setdefault(record["AiJobRunId"], []).append(record)
    return out


def progress_from_counts(records: Iterable[Any]) -> Progress | None:
    """Item counters from ``SELECT Status, COUNT(Id) … GROUP BY Status`` rows; what
    is neither done nor failed (``Ready``, in progress, unknown) counts as pending."""
    total = succeeded = failed = 0
    for record in records:
        if not isinstance(record, Mapping):
            continue
        count = _count(record)
        status = record.get("Status")
        folded = status.casefold() if isinstance(status, str) else ""
        total += count
        if folded in ITEM_SUCCEEDED:
            succeeded += count
        elif folded in ITEM_FAILED:
            failed += count
    if total == 0:
        return None
    return Progress(
        total=total, succeeded=succeeded, failed=failed, pending=total - succeeded - failed
    )


def salesforce_error(response: httpx.Response) -> str:
    """``message (errorCode)`` from Salesforce's ``[{"message", "errorCode"}]`` body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        message, code = body[0].get("message"), body[0].get("errorCode")
        text = short(message, 300) if isinstance(message, str) else ""
        if isinstance(code, str) and code:
            text = f"{text} ({short(code, 80)})" if text else short(code, 80)
        if text:
            return text
    return error_message(response) or f"HTTP {response.status_code}"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        code = body[0].get("errorCode")
        return code if isinstance(code, str) else None
    return None


def _replication_time(value: datetime) -> str:
    """getDeleted's ``start``/``end``: ISO 8601 in UTC with an explicit offset."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _is_next_url(value: Any) -> bool:
    """A ``nextRecordsUrl`` we may follow: a path on the same instance, so the
    bearer token never goes to a host the config did not name."""
    return (
        isinstance(value, str)
        and value.startswith("/services/data/")
        and "//" not in value
        and "\\" not in value
        and len(value) < 1000
    )


class QueryRefused(SourceError):
    """Salesforce refused a query outright (400, 403, 404: no access to the object,
    an org without it): asking again will not help."""


# -- the adapter -----------------------------------------------------------------------


class SalesforceSource(VendorSource):
    """Watches one org's ``AiJobRun`` records."""

    KIND: ClassVar[str] = "salesforce"
    SYSTEM: ClassVar[str] = "Salesforce"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "jobwatch asks Salesforce to set the AiJobRun's Status to Aborted; items it "
            "has not processed yet are not run (Salesforce may refuse while it is InProgress)."
        ),
        archive_effect=(
            "jobwatch asks Salesforce to set the AiJobRun's Status to Archived; jobwatch "
            "keeps showing its outcome. Salesforce has no way back: it cannot be unarchived."
        ),
        # Nothing can take a run out of Archived (Completed and Failed are system-set).
        actions=frozenset({Action.ABORT, Action.ARCHIVE}),
        pace=POLL_EVERY_S,
        rerun_refusal=(
            "an AiJobRun runs once; starting the batch again means creating a new "
            "AiJobRun with its items, which jobwatch does not do"
        ),
    )
    REMOTE_ARCHIVE: ClassVar[bool] = True
    ID_KEYS: ClassVar[tuple[str, ...]] = ("Id",)

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        api_version: str = DEFAULT_API_VERSION,
        job_type: str | None = None,
        target: str | None = None,
        page_size: int = 2000,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, api, page_size=page_size, **kwargs)
        self.api_version = normalize_api_version(api_version)
        self.job_type = job_type
        self.target = target
        # Salesforce takes 200..2000 and treats the value as a hint only.
        self.batch_size = min(2000, max(200, page_size))
        self._cursor = StampCursor()
        self._progress: dict[str, Progress | None] = {}
        """Item counts of this poll, read by :meth:`parse`."""
        self._counting = True
        """Count items in polls; off once Salesforce refuses the aggregate outright."""
        self.deleted_every = DELETED_EVERY_S
        self._deleted_at = 0.0
        """``time.monotonic()`` of the last getDeleted (none before a minute has passed)."""
        self._deleted_from: datetime | None = None
        """Where the next getDeleted starts: Salesforce's ``latestDateCovered``."""
        self._state: StateFile | None = None
        self._before_archive: dict[str, Status] = {}
        """Outcomes jobwatch saw when it archived a run (kept in the state file)."""

    async def open(self) -> None:
        await super().open()
        if self._flags_path is not None:
            self._state = StateFile(state_path(self._flags_path, self.name))
            remembered = self._state.read()
            for run_id, value in remembered.items():
                with contextlib.suppress(ValueError, TypeError):
                    self._before_archive[run_id] = Status(value)

    @property
    def data_path(self) -> str:
        return f"/services/data/{self.api_version}"

    # -- queries -------------------------------------------------------------------------

    def runs_soql(self, since: datetime | None) -> str:
        """The poll's SOQL: newest ``max_runs`` first, then only what changed."""
        where = []
        if self.job_type:
            where.append(f"JobType = {soql_quote(self.job_type)}")
        if self.target:
            where.append(f"Target = {soql_quote(self.target)}")
        if since is not None:
            where.append(f"SystemModstamp > {soql_datetime(since)}")
        soql = f"SELECT {', '.join(RUN_FIELDS)} FROM AiJobRun"
        if where:
            soql += " WHERE " + " AND ".join(where)
        if since is None:
            return soql + f" ORDER BY SystemModstamp DESC LIMIT {self.max_runs}"
        return soql + " ORDER BY SystemModstamp ASC"

    async def query(
        self, soql: str, what: str, *, refusal: bool = False
    ) -> tuple[list[Any], list[RecordError]]:
        """All records of a SOQL query, page by page; an unreadable page ends the
        chain with an error row instead of losing the pages before it. With
        ``refusal``, a 400/403/404 raises :class:`QueryRefused`."""
        records: list[Any] = []
        problems: list[RecordError] = []
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        url: str = f"{self.data_path}/query"
        params: dict[str, str] | None = {"q": soql}
        for _ in range(MAX_PAGES):
            response = await self.api.request("GET", url, params=params, headers=headers)
            if refusal and response.status_code in (400, 403, 404):
                said = salesforce_error(response)
                raise QueryRefused(f"{self.name}: Salesforce refused to count {what}s: {said}")
            self.raise_for(response, doing=f"querying {what}s", said=salesforce_error)
            body = decode_json(response, self.name)
            page = body.get("records") if isinstance(body, Mapping) else None
            if not isinstance(page, list):
                problems.append(
                    RecordError(
                        source=self.name,
                        message=f"Salesforce sent an unreadable query result for {what}s",
                        raw=raw_excerpt(body),
                    )
                )
                break
            records.extend(page)
            next_url = body.get("nextRecordsUrl")
            if body.get("done") is not False or next_url is None:
                break
            if not _is_next_url(next_url):
                problems.append(
                    RecordError(
                        source=self.name,
                        message=f"Salesforce sent a next-page link for {what}s that is "
                        "not a path on this instance; stopped there",
                        raw=raw_excerpt(next_url),
                    )
                )
                break
            url, params = next_url, None
        return records, problems

    # -- hooks ---------------------------------------------------------------------------

    def known_status(self, run_id: str) -> Status | None:
        """The outcome seen before the run was archived: in this process, else as
        remembered when jobwatch archived it."""
        cached = self.cached(run_id)
        if cached is not None and cached.status.is_terminal:
            return cached.status
        return self._before_archive.get(run_id)

    def parse(self, raw: Any) -> Run:
        cached = None
        run_id = raw.get("Id") if isinstance(raw, Mapping) else None
        if isinstance(run_id, str):
            cached = self.cached(run_id)
        progress = cached.progress if cached else None
        if isinstance(run_id, str) and run_id in self._progress:
            progress = self._progress[run_id] or progress
        return map_run(
            raw,
            self.name,
            known=self.known_status(run_id) if isinstance(run_id, str) else None,
            progress=progress,
        )

    async def poll(self, first: bool) -> list[Run | RecordError]:
        if first:
            self._cursor.reset()
        since = self._cursor.since()
        records, problems = await self.query(self.runs_soql(since), "run")
        if since is None:
            records = records[: self.max_runs]
        if self._counting:
            try:
                self._progress = await self.count_items(self._to_count(records))
            except QueryRefused:
                # No access to AiJobRunItem (a permission set without it): lists go
                # on without counts, as before; a run's detail still tries.
                self._counting = False
        try:
            items = [*self.parse_all(records, "run"), *problems]
        finally:
            self._progress = {}
        if not first:
            items += await self.deletions()
        self._cursor.advance(map(_stamp, records))
        if first:
            self._deleted_at = time.monotonic()
            self._deleted_from = self._cursor.since()
        return items

    def _to_count(self, records: list[Any]) -> list[str]:
        """Runs whose items are counted this poll: each new or changed record (one
        the overlap reads again unchanged is not) and every run still active."""
        ids: dict[str, None] = {}
        for raw in records:
            run_id = raw.get("Id") if isinstance(raw, Mapping) else None
            if not isinstance(run_id, str) or not _ID.fullmatch(run_id):
                continue
            cached = self.cached(run_id)
            if cached is None or cached.updated_at != _stamp(raw) or cached.status.is_active:
                ids[run_id] = None
        for run in self.active_runs():
            ids[run.id] = None
        return list(ids)

    async def count_items(self, run_ids: list[str]) -> dict[str, Progress | None]:
        """Item counts of ``run_ids`` with one aggregate per :data:`COUNT_IDS_PER_QUERY`
        ids (one for a poll of a few runs); a run with no items maps to ``None``."""
        out: dict[str, Progress | None] = {}
        for start in range(0, len(run_ids), COUNT_IDS_PER_QUERY):
            chunk = run_ids[start : start + COUNT_IDS_PER_QUERY]
            soql = (
                "SELECT AiJobRunId, Status, COUNT(Id) FROM AiJobRunItem "
                f"WHERE AiJobRunId IN ({', '.join(map(soql_quote, chunk))}) "
                "GROUP BY AiJobRunId, Status"
            )
            records, problems = await self.query(soql, "item count", refusal=True)
            if problems:  # the poll fails and is asked again, counts and all
                raise SourceError(f"{self.name}: {problems[0].message}")
            rows = counts_by_run(records)
            for run_id in chunk:
                out[run_id] = progress_from_counts(rows.get(run_id, ()))
        return out

    async def deletions(self) -> list[Run]:
        """Runs Salesforce lists as deleted since the last look (getDeleted), each
        marked deleted once; asked at most every :attr:`deleted_every` seconds."""
        now = time.monotonic()
        if now - self._deleted_at < self.deleted_every:
            return []
        end = datetime.now(UTC)
        start = self._deleted_from or (end - DELETED_LOOKBACK)
        if start >= end - timedelta(minutes=1):
            start = end - timedelta(minutes=1)  # getDeleted wants a span of a minute
        response = await self.api.request(
            "GET",
            f"{self.data_path}/sobjects/AiJobRun/deleted/",
            params={"start": _replication_time(start), "end": _replication_time(end)},
        )
        self._deleted_at = now
        if response.status_code in (400, 404):
            # A start Salesforce no longer covers (an org idle for weeks), or an
            # org without the resource: start afresh, nothing is marked.
            self._deleted_from = end - DELETED_LOOKBACK
            return []
        self.raise_for(response, doing="reading deleted AiJobRuns", said=salesforce_error)
        body = decode_json(response, self.name)
        read = Reader(body if isinstance(body, Mapping) else {}, strict=False, epoch=False)
        covered = read.time("latestDateCovered")
        self._deleted_from = min(covered, end) if covered is not None else end
        listed = read.get("deletedRecords")[1]
        gone: list[Run] = []
        for record in listed if isinstance(listed, list) else []:
            run_id = record.get("id") if isinstance(record, Mapping) else None
            cached = self.cached(run_id) if isinstance(run_id, str) else None
            if cached is not None and not cached.deleted:
                gone.append(mark_deleted(cached, self.SYSTEM))
        return gone

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        if not _ID.fullmatch(run_id):
            raise RunNotFound(f"{self.name}: {short(run_id, 40)!r} is not a Salesforce record id")
        response = await self.api.request(
            "GET",
            f"{self.data_path}/sobjects/AiJobRun/{run_id}",
            params={"fields": ",".join(RUN_FIELDS)},
        )
        missing = f"Salesforce has no AiJobRun {run_id}"
        if response.status_code >= 400 and _error_code(response) in _NOT_FOUND_CODES:
            raise RunNotFound(f"{self.name}: {missing}")  # a 400 that means "no such id"
        self.raise_for(
            response, doing=f"reading AiJobRun {run_id}", not_found=missing, said=salesforce_error
        )
        raw = decode_json(response, self.name)
        progress = run.progress if run else None
        # The run itself is fresh; stale counts are better than none.
        with contextlib.suppress(SourceError):
            progress = await self.item_progress(run_id) or progress
        try:
            return map_run(raw, self.name, known=self.known_status(run_id), progress=progress)
        except Exception as exc:
            raise SourceError(f"{self.name}: unreadable Salesforce run {run_id}: {exc}") from None

    async def item_progress(self, run_id: str) -> Progress | None:
        soql = (
            "SELECT Status, COUNT(Id) FROM AiJobRunItem "
            f"WHERE AiJobRunId = {soql_quote(run_id)} GROUP BY Status"
        )
        records, _ = await self.query(soql, "item count")
        return progress_from_counts(records)

    async def fetch_logs(self, run: Run, after: int) -> list[LogLine]:
        """One line per ``AiJobRunItem``, in creation order. While the run is active
        the lines stop before the first unfinished item, so every line shown is
        final (the log pane only ever appends)."""
        soql = (
            f"SELECT {', '.join(ITEM_FIELDS)} FROM AiJobRunItem "
            f"WHERE AiJobRunId = {soql_quote(run.id)} ORDER BY CreatedDate ASC, Id ASC"
        )
        records, problems = await self.query(soql, "item")
        if problems:  # asked again on the next refresh, so no line is lost for good
            raise SourceError(f"{self.name}: {problems[0].message}")
        lines: list[LogLine] = []
        fallback = run.updated_at or run.created_at or datetime.now(UTC)
        for seq, raw in enumerate(records, 1):
            line = self._item_line(run, seq, raw, fallback)
            if line is None:
                break
            lines.append(line)
        if not records and run.status.is_terminal:
            lines.append(
                LogLine(
                    run_id=run.id,
                    seq=1,
                    ts=fallback,
                    stream="jobwatch",
                    level=LogLevel.INFO,
                    text="This run has no AiJobRunItem records.",
                )
            )
        return [line for line in lines if line.seq > after]

    def _item_line(self, run: Run, seq: int, raw: Any, fallback: datetime) -> LogLine | None:
        """The line for one item; ``None`` while an active run's item is unfinished."""

        def unreadable(why: object) -> LogLine:
            return LogLine(
                run_id=run.id,
                seq=seq,
                ts=fallback,
                stream="item",
                level=LogLevel.WARN,
                text=f"unreadable item: {why}",
            )

        if not isinstance(raw, Mapping):
            return unreadable(raw_excerpt(raw, 200))
        status = raw.get("Status")
        folded = status.casefold() if isinstance(status, str) else ""
        finished = folded in ITEM_SUCCEEDED | ITEM_FAILED | ITEM_STOPPED
        if not finished and not run.status.is_terminal:
            return None
        try:
            read = _reader(raw, "item")
            name = _text(read, "Name", 80) or _text(read, "Id", 20) or f"item {seq}"
            code, message = _text(read, "ErrorCode", 200), _text(read, "ErrorMessage", None)
            when = read.time("LastModifiedDate") or read.time("CreatedDate") or fallback
        except MappingError as exc:
            return unreadable(exc)
        text = f"{name}: {short(status, 60) if isinstance(status, str) else 'no status'}"
        if code or message:
            text += " — " + ": ".join(part for part in (code, message) if part)
        if folded in ITEM_FAILED:
            level = LogLevel.ERROR
        elif folded in ITEM_SUCCEEDED:
            level = LogLevel.INFO
        else:
            level = LogLevel.WARN  # stopped, or never processed by a finished run
        return LogLine(run_id=run.id, seq=seq, ts=when, stream="item", level=level, text=text)

    async def _set_status(self, run: Run, value: str, verb: str) -> None:
        """PATCH the run's Status; Salesforce's own refusal becomes TransitionRefused."""
        response = await self.api.request(
            "PATCH", f"{self.data_path}/sobjects/AiJobRun/{run.id}", json={"Status": value}
        )
        self.raise_for(
            response,
            doing=f"setting the Status of {run.id} to {value}",
            not_found=f"Salesforce has no AiJobRun {run.id}",
            refusal=f"Salesforce refused to {verb} {run.id}",
            said=salesforce_error,
        )

    async def remote_abort(self, run: Run, by: str) -> str:
        await self._set_status(run, "Aborted", "abort")
        return f"asked Salesforce to abort {run.id} (Status set to Aborted)"

    async def remote_archive(self, run: Run, archived: bool) -> str:
        if not archived:
            raise TransitionRefused(
                f"cannot unarchive {run.id}: Salesforce has no way back from the "
                "Archived status (Completed and Failed cannot be set by a user)"
            )
        self.remember_outcome(run)
        await self._set_status(run, ARCHIVED_RAW, "archive")
        return f"archived {run.id} in Salesforce (Status set to Archived)"

    def remember_outcome(self, run: Run) -> None:
        """Keep the outcome ``run`` has before Salesforce's ``Archived`` replaces it,
        for every later process (the state file), before the PATCH goes out."""
        if not run.status.is_terminal:
            return
        self._before_archive[run.id] = run.status
        if self._state is None:
            return
        try:
            self._state.put(run.id, run.status.value)
        except OSError as exc:
            raise SourceError(
                f"{self.name}: cannot keep the outcome of {run.id} before archiving it "
                f"({exc}); nothing was changed in Salesforce"
            ) from None


@register_kind
class SalesforceConfig(VendorConfig):
    """``kind = "salesforce"``: ``url`` is the instance (My Domain) URL, the token an
    OAuth access token; ``job_type`` / ``target`` narrow the runs watched."""

    KIND: ClassVar[str] = "salesforce"

    api_version: str = DEFAULT_API_VERSION
    job_type: str | None = None
    target: str | None = None

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        return normalize_api_version(value)

    def build(self, name: str, *, read_only: bool = False) -> SalesforceSource:
        return SalesforceSource(
            name,
            self.api(name, auth=lambda token: {"Authorization": f"Bearer {token}"}),
            api_version=self.api_version,
            job_type=self.job_type,
            target=self.target,
            page_size=self.page_size,
            flags_path=self.flags_path(),
            max_runs=self.max_runs,
            read_only=read_only or self.read_only,
        )
