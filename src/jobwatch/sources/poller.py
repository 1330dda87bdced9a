"""The one poller every front end shares: the monitor, ``list``, ``watch``,
``logs --follow`` and ``serve``.

It keeps, per source, where the next read resumes (the cursor), how the source is
doing (:class:`~jobwatch.sources.health.Tracker`: stale since when and why,
back-off), and its pace. One poll asks every *due* source concurrently for what
changed and hands the result to the front end's sink; the next poll is scheduled
after this one finished, never on a fixed tick, so polls never overlap or pile up.
A failing source is marked stale and retried with back-off while the others keep
updating, and catches up from its cursor when it answers again.

Actions go through :meth:`Poller.act`: routed to the source that owns the run,
checked by :mod:`jobwatch.core.rules` first, and the run as the action left it is
handed to the sink at once — a row never shows its old state until the next poll.

Two ways to read, chosen by the front end:

* ``rows`` (the monitor): :class:`~jobwatch.core.row.RunRow` deltas, the store's
  fast path at 100k runs; the poller keeps no runs (the table model does).
* ``runs`` (``watch``, ``logs --follow``, ``serve``): full runs, optionally kept
  (``keep=True``) so a verb can look one up by key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from jobwatch.core.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    TransitionRefused,
)
from jobwatch.core.redact import clean
from jobwatch.core.row import RunRow
from jobwatch.core.rules import Action, HasState, check, source_refusal
from jobwatch.sources.health import Backoff, SourceHealth, Tracker, describe_error
from jobwatch.sources.protocol import (
    ActionResult,
    ChangeSet,
    ListQuery,
    Source,
    newest_first,
    relabel,
)

if TYPE_CHECKING:
    from jobwatch.core import LogLine, RecordError, Run

log = logging.getLogger(__name__)

Mode = Literal["rows", "runs", "refresh"]
FIRST_SCREEN_ROWS = 300
"""Rows read before the full table, so a first paint never waits for 100k."""


class RunKey(NamedTuple):
    """A run's identity across sources: (source name, run id)."""

    source: str
    id: str


@dataclass(eq=False)
class Feed:
    """One source as the poller sees it."""

    source: Source
    tracker: Tracker
    label: str | None = None
    """With several sources open, every row is stamped with its source's name."""
    cursor: int | str | None = None
    synced: bool = False
    """The first full sync is done."""
    started: bool = False
    """The first-screen read (or the first page) is done."""
    more: bool = False
    """The source said more changes are waiting than one page held."""
    busy: bool = False
    forced: bool = False
    """``r`` in the monitor: poll now, whatever the source's own pace says."""
    opened: bool = False
    reset: bool = False
    """The source said its data was replaced (a store file swapped): what it showed
    before is dropped when the new data's first rows arrive."""
    last_poll: float | None = None
    """``clock()`` when its last poll started."""
    window: bool = False
    """The front end holds a window of this source's rows and reads them itself
    (``capabilities.window``): the first poll starts at the source's head instead
    of reading every row, later polls read what changed as usual."""
    runs: dict[str, Run] = field(default_factory=dict)
    errors: dict[str, RecordError] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def health(self) -> SourceHealth:
        return self.tracker.health

    def wait(self, now: float) -> float | None:
        """Seconds until this source wants polling again, if it has its own pace."""
        pace = self.source.pace
        if self.last_poll is None or not pace or self.forced or self.busy:
            return None
        return max(0.0, self.last_poll + pace - now)

    def due(self, now: float) -> bool:
        if self.busy or not self.tracker.due():
            return False
        wait = self.wait(now)
        return wait is None or wait <= 0.0 or not self.synced or self.more


@dataclass
class PollReport:
    """What one :meth:`Poller.poll_once` did."""

    changed: list[RunKey] = field(default_factory=list)
    """Runs that changed, in ``runs`` mode (in ``rows`` mode the sink has the rows:
    a key per row would be 100k tuples nobody reads on a first sync)."""
    failed: dict[str, str] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    removed: list[RunKey] = field(default_factory=list)
    """Runs forgotten because their source's data was replaced (a store file swapped)."""
    more: bool = False
    ms: float = 0.0
    """How long the poll took, sinks included."""


RowSink = Callable[[Feed, list[RunRow], bool], None]
"""``(feed, rows, first)``: rows changed in ``feed``; ``first`` while its first sync
loads (a front end does not announce what was already there)."""
RunSink = Callable[[Feed, ChangeSet], None]
HealthSink = Callable[[Feed, bool], None]
"""``(feed, recovered)``: it just went stale (``False``) or came back (``True``)."""


class Poller:
    """Polls several sources without overlap; one that fails never fails the rest."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        mode: Mode = "rows",
        refresh: float = 1.0,
        keep: bool = False,
        page: int | None = None,
        pages: int = 1,
        first_screen: int = 0,
        on_rows: RowSink | None = None,
        on_runs: RunSink | None = None,
        on_health: HealthSink | None = None,
        on_settled: Callable[[], None] | None = None,
        on_reset: Callable[[Feed], None] | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        self.mode = mode
        self.refresh = max(0.05, refresh)
        self.keep = keep
        self.page = page
        self.pages = max(1, pages)
        """Pages read per poll while a source has more: 1 for the monitor, which
        paints page by page; more for verbs that only want the end result."""
        self.first_screen = first_screen
        self.on_rows = on_rows
        self.on_runs = on_runs
        self.on_health = on_health
        self.on_settled = on_settled
        self.on_reset = on_reset
        """Called with a feed whose data was replaced, before its new rows arrive."""
        self.clock = clock
        several = len(sources) > 1
        self.feeds = [
            Feed(
                source,
                Tracker(backoff=Backoff(base=backoff_base, cap=backoff_cap), clock=clock),
                label=source.name if several else None,
            )
            for source in sources
        ]
        self._by_name = {feed.name: feed for feed in self.feeds}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self.polls = 0
        self.pushes = 0
        """Times a source's push (not the timer) woke the poller."""

    # -- lifecycle -----------------------------------------------------------------

    async def open(self, *, strict: bool = False) -> None:
        """Open every source; one that fails is marked stale and retried by a poll
        (``strict``: its error is raised instead, for a verb over one source)."""
        await asyncio.gather(*(self._open(feed, strict) for feed in self.feeds))

    async def _open(self, feed: Feed, strict: bool = False) -> bool:
        if feed.opened:
            return True
        try:
            await feed.source.open()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if strict:
                raise
            self._failed(feed, exc)
            return False
        feed.opened = True
        return True

    async def close(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        for feed in self.feeds:
            if feed.opened:
                feed.opened = False
                with contextlib.suppress(Exception):
                    await feed.source.close()

    async def __aenter__(self) -> Poller:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- health ----------------------------------------------------------------------

    def _failed(self, feed: Feed, exc: BaseException) -> str:
        message = describe_error(exc)
        was_ok = not feed.health.stale
        retry_after = exc.retry_after if isinstance(exc, JobwatchError) else None
        feed.tracker.failed(message, retry_after=retry_after)
        if was_ok and self.on_health is not None:
            self.on_health(feed, False)
        return message

    def _succeeded(self, feed: Feed) -> bool:
        recovered = feed.tracker.succeeded()
        if recovered and self.on_health is not None:
            self.on_health(feed, True)
        return recovered

    def health(self) -> dict[str, SourceHealth]:
        """Each source's health (the live objects: read, do not change)."""
        return {feed.name: feed.health for feed in self.feeds}

    def synced(self) -> bool:
        """Every source has loaded once, or has failed trying (it shows as stale)."""
        return all(f.synced or (not f.health.ok and f.health.failures) for f in self.feeds)

    # -- polling -----------------------------------------------------------------------

    def wake(self, *, force: bool = False) -> None:
        """Poll now (``force``: every source, whatever its own pace says)."""
        if force:
            for feed in self.feeds:
                feed.forced = True
        self._wake.set()

    async def poll_once(self, *, wait: float | None = None) -> PollReport:
        """One poll of every due source, concurrently.

        Returns when every source answered, or after ``wait`` seconds: a source
        still busy then goes on in the background, hands its rows to the sink when
        it answers, and is skipped by the polls in between, so one hanging server
        never holds up the others.
        """
        report = PollReport()
        started = time.perf_counter()
        async with self._lock:
            now = self.clock()
            tasks = []
            for feed in self.feeds:
                if feed.due(now):
                    feed.busy = True  # not picked again while this poll is running
                    task = asyncio.create_task(self._poll_feed(feed, report))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                    tasks.append(task)
            if tasks:
                done, _ = await asyncio.wait(tasks, timeout=wait)
                for task in done:
                    task.result()  # a bug in a sink is raised, not swallowed
            self.polls += 1
        report.more = any(f.more or (f.started and not f.synced) for f in self.feeds)
        report.ms = (time.perf_counter() - started) * 1000
        return report

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:  # retrieved here when nobody awaits it any more
            log.error("poll failed", exc_info=task.exception())
        if not self._lock.locked():  # it outlived its poll: the front end updates now
            if self.on_settled is not None:
                self.on_settled()
            self._wake.set()  # a late answer, or a first sync that needs its next page

    async def _poll_feed(self, feed: Feed, report: PollReport) -> None:
        feed.last_poll, feed.forced = self.clock(), False
        try:
            if not feed.opened:
                await feed.source.open()  # reconnects a source that failed to open
                feed.opened = True
            if self.mode == "refresh":
                await feed.source.refresh()
                feed.started = feed.synced = True
            elif self.mode == "rows":
                await self._read_rows(feed, report)
            else:
                await self._read_runs(feed, report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a source failing never stops the others
            if isinstance(exc, JobwatchError) and exc.resync:  # replaced: sync afresh
                report.removed += [RunKey(feed.label or feed.name, rid) for rid in feed.runs]
                feed.cursor, feed.started, feed.synced, feed.more = None, False, False, False
                feed.runs.clear()
                feed.errors.clear()
                feed.reset = True
            report.failed[feed.name] = self._failed(feed, exc)
        else:
            if self._succeeded(feed):
                report.recovered.append(feed.name)
        finally:
            feed.busy = False

    async def _read_rows(self, feed: Feed, report: PollReport) -> None:
        source = feed.source
        first = not feed.synced
        if feed.window and not feed.started:
            head = await source.head_cursor()
            if source.capabilities.window:
                feed.cursor = head
                feed.started = feed.synced = True
                self._hand_rows(feed, [], True, report)  # a reset still reaches the front end
                return
            feed.window = False  # it turned out to answer no windows (an older server): sync
        if not feed.started and self.first_screen:
            feed.started = True
            rows = await source.first_rows(self.first_screen)
            if rows is not None:  # the rest loads at the next poll, right after
                self._hand_rows(feed, list(rows), True, report)
                return
        await source.refresh()
        for _ in range(self.pages):
            delta = await source.row_changes(feed.cursor, self.page)
            feed.cursor, feed.more, feed.started = delta.cursor, delta.more, True
            if not delta.more:
                feed.synced = True
            self._hand_rows(feed, delta.rows, first, report)
            if not delta.more:
                break

    def _hand_rows(self, feed: Feed, rows: list[RunRow], first: bool, report: PollReport) -> None:
        if feed.reset:
            feed.reset = False
            if self.on_reset is not None:
                self.on_reset(feed)
        if not rows:
            return
        if feed.label is not None:
            relabel(rows, feed.label)
        if self.on_rows is not None:
            self.on_rows(feed, rows, first)

    async def _read_runs(self, feed: Feed, report: PollReport) -> None:
        await feed.source.refresh()
        name = feed.label or feed.name
        for _ in range(self.pages):
            changes = await feed.source.changes(feed.cursor, self.page)
            feed.cursor, feed.more, feed.started = changes.cursor, changes.more, True
            if not changes.more:
                feed.synced = True
            for run in changes.runs:
                if self.keep:
                    feed.runs[run.id] = run
                    feed.errors.pop(run.id, None)
                report.changed.append(RunKey(name, run.id))
            if self.keep:
                for error in changes.errors:
                    feed.errors[error.row_id] = error
            if self.on_runs is not None:
                self.on_runs(feed, changes)
            if not changes.more:
                break

    def next_wait(self) -> float:
        """``refresh``, or sooner when a failing source is due for a retry or a
        source's own pace is quicker than the front end's refresh."""
        now = self.clock()
        waits = [self.refresh]
        waits += [w for f in self.feeds if (w := f.tracker.wait()) is not None]
        waits += [w for f in self.feeds if f.tracker.due() and (w := f.wait(now)) is not None]
        return max(0.05, min(waits))

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        max_polls: int | None = None,
        hold: Callable[[], Awaitable[None]] | None = None,
        alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
        after: Callable[[PollReport], None] | None = None,
    ) -> None:
        """Poll, then wait: the next poll is scheduled after this one finished.

        ``hold`` is awaited before each poll (the monitor lets its first frame be
        drawn before the rest of a first sync competes with it); ``alongside`` runs
        concurrently with each poll (the monitor's open log); ``after`` sees each
        report. A first sync that has more pages goes on at once.
        """
        stop = stop or asyncio.Event()
        polls = 0
        try:
            while not stop.is_set() and (max_polls is None or polls < max_polls):
                if hold is not None:
                    await hold()
                side: asyncio.Task[None] | None = None
                if alongside is not None:
                    side = asyncio.create_task(alongside())
                report = await self.poll_once(wait=self.refresh)
                if side is not None:
                    await side
                polls += 1
                if after is not None:
                    after(report)
                now = self.clock()
                if any(f.due(now) and (not f.synced or f.more) for f in self.feeds):
                    await asyncio.sleep(0)
                    continue  # the first screen is painted; load the rest straight away
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first(stop), timeout=self.next_wait())
                self._wake.clear()
        finally:
            for task in list(self._inflight):
                task.cancel()

    async def _first(self, stop: asyncio.Event) -> None:
        """Return when woken, stopped, or told of a change by a source that pushes
        (its poll is then due at once, whatever its slow fallback pace says)."""
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        pushed: dict[asyncio.Future[Any], Feed] = {
            asyncio.create_task(feed.source.wait_change()): feed
            for feed in self.feeds
            if feed.opened and feed.source.capabilities.push
        }
        try:
            done, _ = await asyncio.wait([*waits, *pushed], return_when=asyncio.FIRST_COMPLETED)
            for task in done & pushed.keys():
                if not task.cancelled() and task.exception() is None:
                    pushed[task].forced = True
                    self.pushes += 1
        finally:
            for task in [*waits, *pushed]:
                task.cancel()

    # -- what is known (keep=True) ----------------------------------------------------

    def entries(self) -> list[tuple[RunKey, Run]]:
        return [
            (RunKey(feed.label or feed.name, run_id), run)
            for feed in self.feeds
            for run_id, run in feed.runs.items()
        ]

    # -- routing ---------------------------------------------------------------------

    @property
    def sources(self) -> list[Source]:
        return [feed.source for feed in self.feeds]

    def feed(self, name: str) -> Feed:
        try:
            return self._by_name[name]
        except KeyError:
            raise SourceError(f"no source named {clean(name)!r}") from None

    def key(self, feed: Feed, run_id: str) -> RunKey:
        """The key of ``run_id`` in ``feed``, as the poller's sinks see it."""
        return RunKey(feed.label or feed.name, run_id)

    def feed_for(self, key: tuple[str, str]) -> Feed | None:
        """The source that owns a run: where its detail, log and actions go. With
        one source, rows keep the runs' own ``source`` field and all go to it."""
        if len(self.feeds) == 1:
            return self.feeds[0]
        return self._by_name.get(key[0])

    async def find(self, ref: str) -> tuple[Feed, Run]:
        """The run ``ref`` names (id or unique prefix) and the feed that owns it,
        asking every open source at once; one that fails is reported, not fatal."""
        feeds = [f for f in self.feeds if f.opened]
        if len(feeds) == 1:
            return feeds[0], await feeds[0].source.get(ref)
        results = await asyncio.gather(*(f.source.get(ref) for f in feeds), return_exceptions=True)
        hits: list[tuple[Feed, Run]] = []
        failures: list[str] = []
        for feed, result in zip(feeds, results, strict=True):
            if isinstance(result, AmbiguousRunId):
                raise result
            if isinstance(result, RunNotFound):
                continue
            if isinstance(result, Exception):
                failures.append(f"{feed.name}: {describe_error(result)}")
            elif isinstance(result, BaseException):
                raise result
            else:
                hits.append((feed, result))
        if len(hits) > 1:
            where = ", ".join(f"{f.name} ({r.id})" for f, r in hits)
            raise AmbiguousRunId(
                f"{clean(ref)!r} matches runs in several sources: {where}; pick one with --source"
            )
        if hits:
            return hits[0]
        names = ", ".join(f.name for f in feeds)
        if failures:
            raise SourceError(
                f"no run {clean(ref)!r} found; some sources failed: " + "; ".join(failures)
            )
        raise RunNotFound(f"no run {clean(ref)!r} in {names}")

    async def list_runs(
        self, query: ListQuery
    ) -> tuple[list[tuple[Feed, Run]], list[RecordError], dict[str, str]]:
        """Newest first over every open source, each asked at once; returns the runs
        with their feeds, the unreadable records, and the sources that failed."""
        feeds = [f for f in self.feeds if f.opened]
        results = await asyncio.gather(
            *(f.source.list_runs(query) for f in feeds), return_exceptions=True
        )
        pairs: list[tuple[Feed, Run]] = []
        errors: list[RecordError] = []
        failed: dict[str, str] = {}
        for feed, result in zip(feeds, results, strict=True):
            if isinstance(result, Exception):
                failed[feed.name] = self._failed(feed, result)
                continue
            if isinstance(result, BaseException):
                raise result
            pairs += [(feed, run) for run in result[0]]
            errors += result[1]
        pairs.sort(key=lambda pair: newest_first(pair[1]))
        if query.limit:
            pairs = pairs[: query.limit]
        return pairs, errors, failed

    # -- actions -----------------------------------------------------------------------

    def get_run(self, key: tuple[str, str]) -> Run | None:
        feed = self.feed_for(key)
        return feed.runs.get(key[1]) if feed is not None else None

    def key_for(self, ref: tuple[str, str] | str) -> RunKey:
        """The key of a known run (``keep=True``); a bare id must be unique."""
        if not isinstance(ref, str):
            if self.feed_for(ref) is None:
                raise RunNotFound(f"no source named {clean(ref[0])!r}")
            return RunKey(*ref)
        found = [RunKey(feed.label or feed.name, ref) for feed in self.feeds if ref in feed.runs]
        if not found:
            raise RunNotFound(f"no run {clean(ref)!r} in {', '.join(self._by_name)}")
        if len(found) > 1:
            where = ", ".join(k.source for k in found)
            raise AmbiguousRunId(
                f"run {clean(ref)!r} is in several sources ({where}); pick one with --source"
            )
        return found[0]

    async def act(
        self,
        action: Action,
        ref: tuple[str, str] | str,
        *,
        by: str = "",
        read_only: bool = False,
        current: HasState | None = None,
    ) -> ActionResult:
        """Carry out ``action`` on the run ``ref`` names, in the source that owns it,
        after the rules; the run as it now stands goes to the sink at once.

        ``current`` is what the caller shows of the run (the monitor's row); the
        rules are asked about it before any call goes out. The source asks them
        again about the run as it is now, so a stale screen never decides."""
        key = self.key_for(ref)
        feed = self.feed_for(key)
        if feed is None:
            raise RunNotFound(f"no run {clean(key.id)!r}: its source is not open")
        state = current if current is not None else feed.runs.get(key.id)
        if state is not None:
            check(action, state, feed.source, read_only=read_only)
        else:
            why = source_refusal(action, key.id, feed.source, read_only=read_only)
            if why is not None:
                raise TransitionRefused(why)
        source = feed.source
        if action is Action.ABORT:
            result = await source.abort(key.id, by)
        elif action is Action.ARCHIVE:
            result = await source.archive(key.id)
        elif action is Action.RERUN:
            result = await source.rerun(key.id, by)  # the result is the new run
        else:
            result = await source.unarchive(key.id)
        self.apply_result(feed, result)
        return result

    def apply_result(self, feed: Feed, result: ActionResult) -> None:
        """Show what an action did now; the next poll confirms it."""
        run = result.run
        if self.keep:
            feed.runs[run.id] = run
        if self.on_rows is not None:
            row = RunRow.from_run(run)
            if feed.label is not None:
                row.source = feed.label
            self.on_rows(feed, [row], False)
        if self.on_runs is not None:
            self.on_runs(feed, ChangeSet([run], feed.cursor))
        feed.forced = True
        self._wake.set()

    def __len__(self) -> int:
        return sum(len(feed.runs) for feed in self.feeds)

    # -- one run over time -------------------------------------------------------------

    async def watch_run(
        self,
        feed: Feed,
        run: Run,
        *,
        interval: float,
        on_change: Callable[[Run], None],
        stop: Callable[[Run], bool] = lambda run: not run.status.is_active,
        max_polls: int = 10_000_000,
    ) -> Run:
        """Read ``run`` again every ``interval`` until ``stop`` says so, calling
        ``on_change`` whenever it changed; a source that fails meanwhile is marked
        stale (``on_health``) and retried with back-off, the last known state
        standing until it answers."""
        on_change(run)
        for _ in range(max_polls):
            if stop(run):
                break
            await asyncio.sleep(self._delay(feed, interval))
            try:
                await feed.source.refresh()
                fresh = await feed.source.get(run.id)
            except (SourceError, OSError) as exc:
                self._failed(feed, exc)
                continue
            self._succeeded(feed)
            if fresh != run:
                run = fresh
                on_change(run)
        return run

    async def follow_log(
        self,
        feed: Feed,
        run: Run,
        *,
        after: int,
        interval: float,
        on_lines: Callable[[list[LogLine]], None],
        page: int = 5000,
        until_caught_up: bool = False,
        max_polls: int = 10_000_000,
    ) -> Run:
        """Hand on every log line after ``after``, page by page, until the run has
        ended and its log has no more (``until_caught_up``: until the last line
        written so far). The run's state is read after its lines and the lines once
        more after that, so the last lines of a run that just ended are never
        missed. Faults as in :meth:`watch_run`."""
        source = feed.source
        for _ in range(max_polls):
            try:
                lines = await source.log_lines(run.id, after, page)
                if len(lines) < page and not until_caught_up:
                    await source.refresh()
                    run = await source.get(run.id)
                    if not lines:
                        lines = await source.log_lines(run.id, after, page)
            except (SourceError, OSError) as exc:
                self._failed(feed, exc)
                await asyncio.sleep(self._delay(feed, interval))
                continue
            self._succeeded(feed)
            if lines:
                on_lines(lines)
                after = lines[-1].seq
                if len(lines) == page:
                    continue
            if until_caught_up or (not lines and not run.status.is_active):
                return run
            if not lines:
                await asyncio.sleep(interval)
        return run

    @staticmethod
    def _delay(feed: Feed, interval: float) -> float:
        wait = feed.tracker.wait()
        return interval if wait is None else max(interval, wait)


__all__ = [
    "FIRST_SCREEN_ROWS",
    "Feed",
    "PollReport",
    "Poller",
    "RunKey",
]
