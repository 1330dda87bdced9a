"""A bounded window of runs over a store that answers windowed queries, headless.

With a million runs in the store the monitor cannot hold every row (about 1.3 KB
each: 1.3 GB). :class:`WindowedRunSet` is a :class:`RunSet` that holds at most
``cap`` rows: a contiguous stretch of the view's order (sort and filter) around
what is on screen, placed at ``base`` in that order. Its length is the number of
rows the whole view has (from the store's aggregate), so the table's virtual
height and scrollbar show the whole history; an index outside the stretch is
:data:`PENDING` until it is read. :class:`WindowController` does the reading:

* drawing a row near the stretch's edge (``want``) reads the next rows by keyset
  ("after this row"), far from it (a jump: ``End``, the scrollbar) by position;
* a new filter or sort reads the view afresh around the cursor's run;
* a poll's changed rows are merged only where they fall inside the stretch (its
  first and last sort keys bound it, unless it touches an end of the view); the
  rest are dropped, and the counts, the view's length and ``base`` are read again
  by aggregate (``resync``) instead of from the rows.

Nothing here imports Textual: the app starts :meth:`WindowController.settle` in a
worker when the set says it needs the store, and redraws when it is done.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from jobwatch.core import FAULTS, RunRow, Status
from jobwatch.sources.protocol import Source, StatusCounts, WindowTerm, WindowView
from jobwatch.tui.table_model.runset import Key, RunSet
from jobwatch.tui.table_model.sortedkeys import SortKey


class _Pending(tuple[str, str]):
    """A key that is false: code that asks ``if cursor_key`` (the actions) treats a
    row still being read as no selection."""

    def __bool__(self) -> bool:
        return False


PENDING: Key = _Pending(("", ""))
"""The key of a row the window does not hold yet (never a real run's key)."""
WINDOW_ROWS = 3000
"""Rows held at most: a few screens either side of the viewport."""
MARGIN = 600
"""Rows left between the viewport and the stretch's edge before more are read."""
RECENT = 200
"""Rows a poll dropped (outside the stretch) kept for a toast about them."""
FAULTS_KNOWN = 10_000
"""Faults remembered outside the stretch, so that one is announced once, not at
every later change of a row the window does not hold (bounded, oldest first out)."""
SETTLE_ROUNDS = 8


@dataclass(eq=False)
class WindowedRunSet(RunSet):
    """A :class:`RunSet` holding a stretch of the view, see the module."""

    cap: int = WINDOW_ROWS
    margin: int = MARGIN
    total: int = 0
    """Rows the whole view has (the table's height)."""
    base: int = 0
    """Position in the view's ascending order of the first row held."""
    loaded: bool = False
    need_reload: bool = True
    need_resync: bool = False
    need_extend: bool = False
    focus: int = 0
    """Ascending position of the row drawn last: the window stays around it."""
    on_need: Callable[[], None] | None = None
    recent: dict[Key, RunRow] = field(default_factory=dict)
    pinned: dict[Key, RunRow] = field(default_factory=dict)
    faults_known: dict[Key, None] = field(default_factory=dict)
    """Runs known to be faults already (announced, or let go of while one)."""
    """Marked rows the stretch let go of: still acted on and counted, kept up to
    date by polls, bounded by the marks, not by the history."""

    # -- positions --------------------------------------------------------------------

    def __len__(self) -> int:
        return max(self.total, self.base + len(self._order)) if self.loaded else len(self._order)

    def _ascending(self, index: int) -> int:
        return len(self) - 1 - index if self.reverse else index

    def key_at(self, index: int) -> Key:
        local = self._ascending(index) - (self.base if self.loaded else 0)
        if 0 <= local < len(self._order):
            return self._order.at(local)  # type: ignore[return-value]
        return PENDING

    def index_of(self, key: Key) -> int | None:
        sk = self._sk.get(key)
        local = None if sk is None else self._order.index(sk, key)
        if local is None:
            return None
        return self._ascending(local + (self.base if self.loaded else 0))

    def want(self, index: int) -> None:
        """The table draws ``index``: read more rows when it is near the stretch's edge."""
        if not self.loaded:
            return
        self.focus = position = self._ascending(index)
        held = len(self._order)
        near_start = self.base > 0 and position < self.base + self.margin
        near_end = self.base + held < self.total and position >= self.base + held - self.margin
        if (near_start or near_end) and not self.need_extend:
            self.need_extend = True
            self._ask()

    @property
    def at_start(self) -> bool:
        return self.base <= 0

    @property
    def at_end(self) -> bool:
        return self.base + len(self._order) >= self.total

    def view(self) -> WindowView:
        """What the store is asked for: this set's filter, sort and switches."""
        terms = tuple(WindowTerm(t.field, t.value, t.negate, t.at) for t in self.filter.terms)
        also = tuple(sorted(self.stuck_ids)) if self.faults_only else ()
        return WindowView(self.sort, terms, self.show_archived, self.faults_only, also)

    def held(self) -> int:
        """Rows held now (what the memory bound is about)."""
        return len(self.rows)

    # -- what the store said ----------------------------------------------------------

    def set_counts(self, counts: StatusCounts) -> None:
        known = {s.value: s for s in Status}
        self.counts = Counter(
            {known.get(k, Status.UNKNOWN): n for k, n in counts.by_status.items() if n}
        )
        self.archived_count = counts.archived

    def load(self, rows: list[RunRow], base: int, total: int) -> None:
        """A stretch read afresh: ``rows`` in ascending order from position ``base``."""
        self._pin(list(self.rows))
        self.rows = {r.key: r for r in rows}
        self._sk = {k: self._key_of(r) for k, r in self.rows.items()}
        self.base, self.total, self.loaded = base, total, True
        self._rebuild()

    def extend(self, rows: list[RunRow], *, at_end: bool) -> None:
        """Rows read right after (``at_end``) or right before the stretch."""
        fresh = [r for r in rows if r.key not in self.rows]
        for row in fresh:
            self.rows[row.key] = row
            self._sk[row.key] = self._key_of(row)
        if not at_end:
            self.base = max(0, self.base - len(fresh))
        self._rebuild()
        self._trim()

    # -- changes from polls -----------------------------------------------------------

    def apply(self, rows: Iterable[RunRow], *, notice: bool = True) -> list[Key]:
        """Merge a poll's rows where they fall inside the stretch; drop the others
        (kept in :attr:`recent` for a toast) and ask for a resync of the counts.

        A row outside the stretch was not held, so whether it just turned into a
        fault is not known: one that is a fault now is announced."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not self.loaded:
            self._remember(rows)
            self.need_reload = True
            self._ask()
            return []
        low, high = self._bounds()
        key_of, held = self._key_of, self.rows

        def inside(row: RunRow) -> bool:
            sk = key_of(row)
            return not ((low is not None and sk < low) or (high is not None and sk > high))

        kept: list[RunRow] = []
        faulted: list[Key] = []
        for row in rows:
            if row.key in self.pinned:
                self.pinned[row.key] = row
            if row.key in held or inside(row):
                kept.append(row)
            elif notice and row.status in FAULTS and not row.archived:
                faulted.append(row.key)
        away = [r for r in rows if r.key not in held and not inside(r)]
        counts, archived = self.counts.copy(), self.archived_count
        unseen = self.unseen.copy()
        faulted += super().apply(kept, notice=notice)
        self.counts, self.archived_count = counts, archived  # the store's aggregate decides
        faulted = self._first_news(rows, faulted)
        self.unseen = unseen | set(faulted)
        outside = [r.key for r in kept if not inside(r) or not self.visible(r)]
        self._remember(away + [held[k] for k in outside])
        self._drop(outside)
        self._trim()
        if not len(self._order) and not (self.at_start and self.at_end):
            self.need_reload = True
        self.need_resync = True
        self._ask()
        return faulted

    def replace_all(self, rows: Iterable[RunRow]) -> None:
        rows = list(rows)
        if rows and self.loaded:
            self.apply(rows, notice=False)
            return
        self.rows, self._sk, self.loaded, self.base, self.total = {}, {}, False, 0, 0
        self._rebuild()
        self.need_reload = True
        self._ask()

    def _bounds(self) -> tuple[SortKey | None, SortKey | None]:
        """The sort keys that bound the stretch (``None``: it reaches that end)."""
        if not len(self._order):
            return (None if self.at_start else (), None if self.at_end else ())
        first = self._order.at(0)
        last = self._order.at(len(self._order) - 1)
        low = None if self.at_start else self._sk[first]  # type: ignore[index]
        high = None if self.at_end else self._sk[last]  # type: ignore[index]
        return low, high

    def _first_news(self, rows: list[RunRow], faulted: list[Key]) -> list[Key]:
        """Of the faults a poll brought, the ones not known before: a row the window
        did not hold has no old state to compare with, so what is known of it is
        kept here (a run that stops being a fault is forgotten, so it can fail anew)."""
        known = self.faults_known
        for row in rows:
            if row.status not in FAULTS:
                known.pop(row.key, None)
        news = [k for k in dict.fromkeys(faulted) if k not in known]
        self._know(news)
        return news

    def _know(self, keys: Iterable[Key]) -> None:
        known = self.faults_known
        for key in keys:
            known.pop(key, None)
            known[key] = None
        while len(known) > FAULTS_KNOWN:
            del known[next(iter(known))]

    def _remember(self, rows: list[RunRow]) -> None:
        for row in rows:
            self.recent[row.key] = row
        while len(self.recent) > RECENT:
            del self.recent[next(iter(self.recent))]

    def _pin(self, keys: list[Key]) -> None:
        """Rows about to be let go of: marked ones are kept apart, faults remembered."""
        rows = self.rows
        for key in keys:
            row = rows.get(key)
            if row is None:
                continue
            if key in self.marked:
                self.pinned[key] = row
        self._know(k for k in keys if (r := rows.get(k)) is not None and r.status in FAULTS)

    def _drop(self, keys: list[Key]) -> None:
        if not keys:
            return
        self._pin(keys)
        for key in keys:
            self.rows.pop(key, None)
            self._sk.pop(key, None)
        self._rebuild()

    def _trim(self) -> None:
        """Keep at most ``cap`` rows, the ones nearest :attr:`focus`; rows held but
        not shown (a filter just changed) go first."""
        if len(self.rows) != len(self._order):  # only then can a held row be hidden
            hidden = [k for k in self.rows if self._sk.get(k) is None or self.index_of(k) is None]
            self._drop(hidden)
        held = len(self._order)
        extra = held - self.cap
        if extra <= 0:
            return
        local = min(max(0, self.focus - self.base), held - 1)
        start = min(max(0, local - self.cap // 2), held - self.cap)
        cut = [self._order.at(i) for i in range(start)]
        cut += [self._order.at(i) for i in range(start + self.cap, held)]
        self.base += start
        self._drop(cut)  # type: ignore[arg-type]

    # -- the view changes -------------------------------------------------------------

    def _view_changed(self) -> None:
        self.need_reload = True
        self._ask()

    def _ask(self) -> None:
        if self.on_need is not None:
            self.on_need()

    def set_filter(self, text: str, now: float | None = None) -> None:
        super().set_filter(text, now)
        self._view_changed()

    def toggle_faults(self) -> None:
        super().toggle_faults()
        self._view_changed()

    def set_stuck(self, ids: frozenset[str]) -> None:
        changed = ids != self.stuck_ids
        super().set_stuck(ids)
        if changed and self.faults_only:
            self._view_changed()

    def toggle_archived(self) -> None:
        super().toggle_archived()
        self._view_changed()

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        super().set_sort(column, reverse)
        self._view_changed()

    def toggle_mark(self, key: Key) -> None:
        if key != PENDING:
            super().toggle_mark(key)
            if key not in self.marked:
                self.pinned.pop(key, None)

    def clear_marks(self) -> int:
        self.pinned.clear()
        return super().clear_marks()

    def row_of(self, key: Key) -> RunRow | None:
        row = self.rows.get(key)
        return row if row is not None else self.pinned.get(key)


class WindowController:
    """Reads what a :class:`WindowedRunSet` needs from a windowed source.

    ``cursor`` tells which row the table's cursor is on, so a new sort or filter
    is read around it; ``on_changed`` is called after every change it made."""

    def __init__(
        self,
        source: Source,
        runs: WindowedRunSet,
        *,
        cursor: Callable[[], RunRow | None] = lambda: None,
        on_changed: Callable[[], None] = lambda: None,
        counts: StatusCounts | None = None,
    ) -> None:
        self.source = source
        self.runs = runs
        self.cursor = cursor
        self.on_changed = on_changed
        self._counts = counts
        """Counts just read (by the monitor choosing a window): the first read uses
        them instead of asking again (one round trip less over ``jobwatch serve``)."""
        self.reads = 0
        """Windowed queries made (tests count them)."""
        self._lock = asyncio.Lock()

    async def settle(self) -> None:
        """Do what the set asks for until it asks for nothing (bounded in rounds)."""
        async with self._lock:
            runs = self.runs
            for _ in range(SETTLE_ROUNDS):
                if runs.need_reload:
                    await self._reload()
                elif runs.need_resync:
                    await self._resync()
                elif runs.need_extend:
                    await self._extend()
                else:
                    return

    async def _reload(self) -> None:
        runs = self.runs
        runs.need_reload = runs.need_extend = runs.need_resync = False
        view = runs.view()
        self.reads += 1
        counts, self._counts = self._counts or await self.source.status_counts(), None
        total = await self.source.window_count(view)
        start = total - runs.cap if runs.reverse else 0  # the top of the screen
        row = self.cursor()
        if row is not None and row.key in runs.rows and runs.visible(row) and total > runs.cap:
            start = await self.source.window_count(view, before=row) - runs.cap // 2
        if runs.need_reload:
            return  # the view changed again meanwhile: read that one
        # The very first read is one screen, for the first paint; drawing it near
        # the stretch's edge reads the rest of the window right after.
        await self._load_at(view, start, total, runs.margin // 2 if not runs.loaded else None)
        runs.set_counts(counts)
        self.on_changed()

    async def _load_at(
        self, view: WindowView, start: int, total: int, limit: int | None = None
    ) -> None:
        runs = self.runs
        cap = limit or runs.cap
        start = max(0, min(start, total - cap))
        self.reads += 1
        after = total - start - cap  # rows below the stretch
        if start > 0 and after <= start:
            # counted from the nearer end: a far page walks that many index entries
            # (or skipped rows) first, so a jump near the bottom costs what one near
            # the top does
            rows = await self.source.window_rows(
                view, offset=max(0, after), limit=cap, from_end=True
            )
        else:
            rows = await self.source.window_rows(view, offset=start, limit=cap)
        if runs.need_reload:
            return
        runs.load(rows, start, total)

    async def _resync(self) -> None:
        runs = self.runs
        runs.need_resync = False
        view = runs.view()
        self.reads += 1
        counts = await self.source.status_counts()
        total = await self.source.window_count(view)
        base = 0
        if not runs.at_start and len(runs.order):
            first = runs.rows.get(runs.order[0])
            if first is not None:
                base = await self.source.window_count(view, before=first)
        if runs.need_reload:
            return
        runs.set_counts(counts)
        runs.total = total
        runs.base = base if not runs.at_start or base else 0
        self.on_changed()

    async def _extend(self) -> None:
        runs = self.runs
        runs.need_extend = False
        view = runs.view()
        held = len(runs.order)
        position = runs.focus
        if not held or position < runs.base or position >= runs.base + held:
            await self._load_at(view, position - runs.cap // 2, runs.total)
            self.on_changed()
            return
        self.reads += 1
        step = runs.cap // 2
        if position >= runs.base + held - runs.margin and not runs.at_end:
            last = runs.rows[runs.order[-1]]
            rows = await self.source.window_rows(view, limit=step, after=last)
            at_end = True
        elif position < runs.base + runs.margin and not runs.at_start:
            first = runs.rows[runs.order[0]]
            rows = await self.source.window_rows(view, limit=min(step, runs.base), before=first)
            at_end = False
        else:
            return
        if runs.need_reload:
            return
        runs.extend(rows, at_end=at_end)
        self.on_changed()


def windowed(sources: list[Source]) -> Source | None:
    """The one source a monitor can hold a window over, if it is that case: a single
    source that declares windowed queries (several sources are merged in memory)."""
    if len(sources) == 1 and sources[0].capabilities.window:
        return sources[0]
    return None


__all__ = ["PENDING", "WINDOW_ROWS", "WindowController", "WindowedRunSet", "windowed"]
