"""The one contract every run source meets: local store, ``jobwatch serve``, vendors.

A source *declares* what it can do (:attr:`Source.capabilities`, see
:class:`~jobwatch.core.rules.Capabilities`) and its pace; front ends read that
and never probe it for methods. :class:`SourceBase` gives every optional part a
working default, so an adapter implements only what its system has:

* ``refresh()`` — bring the source's view up to date with its upstream. Pull-based
  sources (vendor APIs) talk to their system here and nowhere else, so the one
  poller (:mod:`jobwatch.sources.poller`) decides how often that happens; the
  store and the ``jobwatch serve`` client are read afresh on every call and
  need nothing.
* ``changes(cursor)`` — what changed in that view after ``cursor``;
  ``row_changes`` the same as table rows (the store reads them from columns,
  others derive them from runs); ``first_rows`` the newest rows for a first
  screen when the source can hand them out before the full load.
* ``list_runs(query)`` — newest first, filtered; a source with
  ``capabilities.query`` does it itself (the store, in SQL), the default syncs.
* logs by sequence number, and the three actions, checked by
  :mod:`jobwatch.core.rules` before any call goes out.
* windowed reads, for a source that declares ``capabilities.window`` (the store):
  ``window_rows`` a page of table rows in the order of a :class:`WindowView`
  (sort and filter), by offset or after/before a row (keyset); ``window_count``
  how many rows match (or come before a row: its position); ``status_counts`` the
  whole history's counts by aggregate; ``head_cursor`` a cursor after everything
  there now, so a monitor that holds a window polls changes without a first full
  sync. The monitor then holds a bounded window of rows and reads the rest when
  the user scrolls, filters or sorts (``tui/table_model/window.py``).
* the triage fill, for the same sources (``capabilities.window``):
  ``triage_rows`` each job's newest finished runs, the active ones and the
  failures since a time, in one query, and the failure shapes seen before it
  (:class:`TriageFill`), so the jobs and failure views start without the monitor
  loading the history. Other sources answer ``None``: their rows reach the
  triage index through the poller, whole, anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from jobwatch.core.errors import TransitionRefused
from jobwatch.core.row import RunRow
from jobwatch.core.rules import Action, Capabilities, check, source_refusal

if TYPE_CHECKING:
    from jobwatch.core import LogLine, RecordError, Run

DEFAULT_PAGE = 1000
SYNC_TIMEOUT_S = 600.0
SYNC_MAX_PAGES = 100_000


@dataclass(slots=True)
class ChangeSet:
    """What changed since a cursor: the first sync and every later poll look alike."""

    runs: list[Run]
    cursor: int | str | None
    errors: list[RecordError] = field(default_factory=list)
    more: bool = False


@dataclass(slots=True)
class RowDelta:
    """:class:`ChangeSet` as table rows; a record that could not be read is a row too
    (:meth:`RunRow.broken`), so nothing is dropped from the table."""

    rows: list[RunRow]
    cursor: int | str | None
    more: bool = False


@dataclass(slots=True)
class RowRecords:
    """:class:`RowDelta` as the store read it: one tuple per row, its values named
    by ``fields`` (:class:`RunRow` field names) and the revision last. ``jobwatch
    serve`` encodes these column by column without a row object per record."""

    fields: tuple[str, ...]
    records: Sequence[Sequence[Any]]
    cursor: int | str | None
    more: bool = False


@dataclass(slots=True, frozen=True)
class LogBounds:
    """First and last sequence numbers of a run's log (0, 0 when it has none)."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return 0 if self.last == 0 else self.last - self.first + 1


@dataclass(slots=True, frozen=True)
class ActionResult:
    """What an abort/archive did: done now, or requested and left to the run's owner.
    ``run`` is the run as it stands after the action, shown at once."""

    run: Run
    message: str


@dataclass(slots=True, frozen=True)
class ListQuery:
    """What ``jobwatch list`` asks for; every field empty means everything."""

    statuses: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    run_sources: tuple[str, ...] = ()
    """Values of the runs' own ``source`` field (not configured source names)."""
    include_archived: bool = False
    limit: int | None = None

    def matches(self, run: Run) -> bool:
        return (
            (self.include_archived or not run.archived)
            and (not self.statuses or run.status.value in self.statuses)
            and (not self.jobs or run.job in self.jobs)
            and (not self.run_sources or run.source in self.run_sources)
        )


@dataclass(frozen=True, slots=True)
class WindowTerm:
    """One term of the monitor's filter grammar (``!status:failed`` is
    ``WindowTerm("status", "failed", True)``; free text has ``field=None``). Values
    are lowercased; commas inside a field's value separate alternatives."""

    field: str | None
    value: str
    negate: bool = False
    at: float | None = None
    """For ``since:``/``before:``: the bound in epoch seconds (the filter computed
    it when it was typed), compared with the row's last change."""


@dataclass(frozen=True, slots=True)
class WindowView:
    """What a windowed query shows: the rows the monitor's filter keeps, in the
    ascending order of the column registry's sort key ``sort`` (ties broken as
    there: by id, then source). A reversed view is the same order read from the
    end, so it is the caller's business."""

    sort: str = "started"
    terms: tuple[WindowTerm, ...] = ()
    show_archived: bool = False
    faults_only: bool = False
    also: tuple[str, ...] = ()
    """Run ids faults-only keeps besides the faults: the runs found stuck."""


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """The whole history by aggregate: rows not archived by status, and archived."""

    by_status: dict[str, int]
    archived: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values()) + self.archived


@dataclass(slots=True)
class TriageFill:
    """What a store hands the triage index (:mod:`jobwatch.triage`) at the start."""

    rows: list[RunRow]
    """Each job's newest finished runs (``per_job``), every active run, and every
    failure at or after ``since``."""
    before: list[tuple[str, str | None, str | None, float]]
    """Failures before ``since`` by (source, problem, message): when first seen."""


def newest_first(run: Run) -> tuple[bool, float]:
    """Sort key of every listing: newest first, runs without a time last."""
    when = run.created_at or run.started_at
    return (when is None, -when.timestamp() if when else 0.0)


@runtime_checkable
class Source(Protocol):
    """A place runs come from. Implementations translate; they never decide rules."""

    name: str
    read_only: bool

    @property
    def capabilities(self) -> Capabilities: ...

    pace: float
    """Seconds between polls (0: the front end's refresh); settable from the config."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def notices(self) -> list[str]:
        """Warnings about how the source is kept (a store others can read), said once
        by the front end; not errors."""
        ...

    async def refresh(self) -> None:
        """Bring the source's view up to date with its upstream (may be a no-op)."""
        ...

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """Runs changed after ``cursor`` (``None`` = everything) and the next cursor."""
        ...

    async def row_changes(self, cursor: int | str | None, limit: int | None = None) -> RowDelta:
        """:meth:`changes` as table rows."""
        ...

    async def first_rows(self, limit: int) -> list[RunRow] | None:
        """The newest ``limit`` rows ahead of the full load, or ``None`` if the source
        cannot tell which are newest without reading everything."""
        ...

    async def row_records(self, cursor: int | str | None, limit: int) -> RowRecords | None:
        """:meth:`row_changes` as the store's records, or ``None`` (see
        :class:`SourceBase`)."""
        ...

    async def get(self, run_id: str) -> Run: ...

    async def window_rows(
        self,
        view: WindowView,
        *,
        offset: int = 0,
        limit: int = 500,
        after: RunRow | None = None,
        before: RunRow | None = None,
        from_end: bool = False,
    ) -> list[RunRow]:
        """At most ``limit`` rows of ``view`` in its order: from position ``offset``
        (``from_end``: counted back from the last row), or the ones right after
        (``after``) or right before (``before``) that row's place; always in
        ascending order. Only with ``capabilities.window``."""
        ...

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        """How many rows ``view`` shows, or how many come before ``before``'s place."""
        ...

    async def status_counts(self) -> StatusCounts:
        """Counts of the whole history by aggregate (cheap: read every poll)."""
        ...

    async def head_cursor(self) -> int | str | None:
        """A cursor after every change there now: polling from it sees what comes next."""
        ...

    async def window_row(self, run_id: str) -> RunRow | None:
        """The row of ``run_id`` as the source keeps it (exact times, raw text), for
        ``jobwatch serve`` to page a window from (a client's copy is cleaned and its
        times rounded); ``None`` if it has no such row or answers no windows."""
        ...

    async def wait_change(self) -> None:
        """Return when the source learns of a change (``capabilities.push`` only)."""
        ...

    async def triage_rows(self, *, per_job: int, since: float) -> TriageFill | None:
        """The triage index's first fill, or ``None`` (then it is fed the rows)."""
        ...

    async def list_runs(self, query: ListQuery) -> tuple[list[Run], list[RecordError]]:
        """Runs matching ``query``, newest first, with the records it could not read."""
        ...

    async def log_bounds(self, run_id: str) -> LogBounds: ...

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        """Lines with ``seq > after`` in order, at most ``limit`` of them."""
        ...

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        """The last ``count`` lines, in order."""
        ...

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        """Seq of the next line after (or before) ``start`` containing ``needle``
        (case-insensitive), so search never loads the whole log."""
        ...

    async def first_error(self, run_id: str) -> int | None:
        """Seq of the first line whose level is ``error``."""
        ...

    async def abort(self, run_id: str, by: str) -> ActionResult: ...

    async def archive(self, run_id: str) -> ActionResult: ...

    async def unarchive(self, run_id: str) -> ActionResult: ...

    async def rerun(self, run_id: str, by: str) -> ActionResult:
        """Start the run's job again; the result is the new run (``rerun_of`` set)."""
        ...


class SourceBase:
    """Defaults for the optional parts of :class:`Source`; subclasses set
    :attr:`CAPABILITIES` and implement the reading and acting they support."""

    CAPABILITIES: ClassVar[Capabilities] = Capabilities()
    name: str
    read_only: bool
    _pace: float | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES

    @property
    def pace(self) -> float:
        """The configured ``refresh`` of this source, else its kind's default."""
        return self.capabilities.pace if self._pace is None else self._pace

    @pace.setter
    def pace(self, seconds: float | None) -> None:
        self._pace = seconds

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def refresh(self) -> None:
        return None

    def notices(self) -> list[str]:
        return []

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        raise NotImplementedError

    async def row_changes(self, cursor: int | str | None, limit: int | None = None) -> RowDelta:
        """One page of :meth:`changes` as rows (a big first sync paints page by page
        instead of showing nothing until the last page)."""
        changes = await self.changes(cursor, limit)
        rows = [RunRow.from_run(run) for run in changes.runs]
        rows += self.error_rows(changes.errors)
        return RowDelta(rows, changes.cursor, changes.more)

    def error_rows(self, errors: Iterable[RecordError]) -> list[RunRow]:
        """Visible rows for records that could not be read; one without an id gets
        one of its own (:attr:`RecordError.row_id`), the same on every poll, so two
        such errors never overwrite each other and one is never shown twice."""
        from jobwatch.core.redact import clean

        return [RunRow.broken(e.source, e.row_id, clean(e.message)) for e in errors]

    async def first_rows(self, limit: int) -> list[RunRow] | None:
        return None

    async def row_records(self, cursor: int | str | None, limit: int) -> RowRecords | None:
        """:meth:`row_changes` as raw records, for a store that reads them from
        columns; ``None`` (the default): use :meth:`row_changes`."""
        return None

    async def triage_rows(self, *, per_job: int, since: float) -> TriageFill | None:
        """Without windowed queries the poller hands the triage index every row."""
        return None

    async def wait_change(self) -> None:
        """Sources without push never tell of a change: the poller's timer does."""
        await asyncio.Event().wait()

    async def sync(
        self,
        cursor: int | str | None = None,
        *,
        page: int = DEFAULT_PAGE,
        max_pages: int = SYNC_MAX_PAGES,
        timeout: float = SYNC_TIMEOUT_S,
    ) -> ChangeSet:
        """Every change after ``cursor``, page by page (bounded in pages and time)."""
        deadline = time.monotonic() + timeout
        runs: dict[str, Run] = {}
        errors: list[RecordError] = []
        for _ in range(max_pages):
            changes = await self.changes(cursor, page)
            for run in changes.runs:
                runs[run.id] = run
            errors += changes.errors
            cursor = changes.cursor
            if not changes.more:
                return ChangeSet(list(runs.values()), cursor, errors, more=False)
            if time.monotonic() > deadline:
                break
        return ChangeSet(list(runs.values()), cursor, errors, more=True)

    async def window_rows(
        self,
        view: WindowView,
        *,
        offset: int = 0,
        limit: int = 500,
        after: RunRow | None = None,
        before: RunRow | None = None,
        from_end: bool = False,
    ) -> list[RunRow]:
        raise NotImplementedError(f"source {self.name} cannot answer windowed queries")

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        raise NotImplementedError(f"source {self.name} cannot answer windowed queries")

    async def status_counts(self) -> StatusCounts:
        raise NotImplementedError(f"source {self.name} cannot count by aggregate")

    async def head_cursor(self) -> int | str | None:
        """Without windowed queries a monitor syncs everything: from the start."""
        return None

    async def window_row(self, run_id: str) -> RunRow | None:
        return None

    async def list_runs(self, query: ListQuery) -> tuple[list[Run], list[RecordError]]:
        """A full sync, filtered and sorted here: for sources that cannot query."""
        changes = await self.sync()
        runs = sorted((r for r in changes.runs if query.matches(r)), key=newest_first)
        return (runs[: query.limit] if query.limit else runs), changes.errors

    async def get(self, run_id: str) -> Run:
        """Every source reads one run; subclasses say how."""
        raise NotImplementedError

    async def abort(self, run_id: str, by: str) -> ActionResult:
        return await self._cannot(Action.ABORT, run_id)

    async def archive(self, run_id: str) -> ActionResult:
        return await self._cannot(Action.ARCHIVE, run_id)

    async def unarchive(self, run_id: str) -> ActionResult:
        return await self._cannot(Action.UNARCHIVE, run_id)

    async def rerun(self, run_id: str, by: str) -> ActionResult:
        return await self._cannot(Action.RERUN, run_id)

    def refuse_early(self, action: Action, run_id: str) -> None:
        """What the rules can say before the run is read (read-only, capability): an
        action refused there costs no request and opens no write connection."""
        why = source_refusal(action, run_id, self)
        if why is not None:
            raise TransitionRefused(why)

    async def _cannot(self, action: Action, run_id: str) -> ActionResult:
        """An action this kind of source does not implement: the rules say why."""
        reason = source_refusal(action, run_id, self) or (
            f"cannot {action.value} {run_id}: source {self.name} cannot {action.value} runs"
        )
        raise TransitionRefused(reason)

    def check(self, action: Action, run: Run) -> None:
        """The rules, with this source's read-only flag and capabilities: what every
        action runs first, before any call goes out."""
        check(action, run, self)

    async def log_bounds(self, run_id: str) -> LogBounds:
        return LogBounds(0, 0)

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        return []

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        return []

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        return None

    async def first_error(self, run_id: str) -> int | None:
        return None


def relabel(rows: Sequence[RunRow], label: str) -> None:
    """Stamp fresh rows with their configured source's name (rows built for one
    poll and not shared yet), so rows of several sources are keyed apart."""
    for row in rows:
        row.source = label


__all__ = [
    "ActionResult",
    "Capabilities",
    "ChangeSet",
    "ListQuery",
    "LogBounds",
    "RowDelta",
    "Source",
    "SourceBase",
    "StatusCounts",
    "TriageFill",
    "WindowTerm",
    "WindowView",
    "newest_first",
    "relabel",
]
