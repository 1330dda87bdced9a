"""The monitor's table model, headless: rows, filter grammar, sort, marks, counts.

It lives outside ``tui/`` so it can be tested without a terminal, and so every
operation has a measured cost at 100k rows: a poll applies in time proportional
to what changed, and the order is re-sorted only when a sort key moved.
"""

from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobwatch.core import FAULTS, RunRow, Status
from jobwatch.core.columns import COLUMNS, FILTER_FIELDS, SORTS, haystack, last_change, sort_key
from jobwatch.tui.table_model.sortedkeys import SortedKeys, SortKey

Key = tuple[str, str]
"""(source, id): runs of different sources may share an id."""

BULK_SHARE = 0.5
"""A batch of at least this share of the known rows is merged by one sort: moving
rows one by one costs more once about a third of a 100k table moves (measured)."""
_PREFIXED = frozenset(c.name for c in COLUMNS if c.prefixed)
"""Sorts whose keys lead with a float that orders them but for ties (``prefix``)."""


TIME_FIELDS = ("since", "before")
"""The time window of the filter: on a run's last change (the later of its end and
its start), so ``since:1h`` shows what happened in the last hour."""
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: str, now: float) -> float | None:
    """Epoch seconds for a filter's time: an age before ``now`` (``30m``, ``1h``,
    ``2d``, ``1w``, ``90s``, or several: ``1h30m``) or an ISO date or datetime
    (``2026-12-01``, ``2026-12-01T08:00``; local time unless it names its zone).
    None when it is neither (the term is then reported, not applied)."""
    text = value.strip().lower()
    if not text:
        return None
    parts = _AGE.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return now - sum(float(n) * _UNIT_S[u] for n, u in parts)
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.timestamp()  # a naive datetime is local time


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None  # None: free text over every field
    value: str
    negate: bool = False
    at: float | None = None
    """For ``since:``/``before:``: the bound in epoch seconds."""


@dataclass(frozen=True, slots=True)
class Filter:
    """``/`` filter: free text, ``field:value`` for every filter field of the column
    registry (``status:failed``, ``job:x``, ``source:y``, ``id:``, ``problem:``,
    ``label:``, ``raw:``) and ``!term`` to exclude; terms are ANDed and
    comma-separated values within a field are ORed (``status:failed,timed_out``).

    ``since:1h`` / ``before:2026-12-01`` keep runs whose last change (the later of
    end and start) is in that window. An age counts back from when the filter was
    typed: the window does not slide while it stays on screen (a table that
    dropped rows by itself as the clock ticks would hide that it did)."""

    text: str = ""
    terms: tuple[Term, ...] = ()
    bad: tuple[str, ...] = ()
    """Time terms that could not be read (shown to the user, not applied)."""

    @classmethod
    def parse(cls, text: str, now: float | None = None) -> Filter:
        try:
            words = shlex.split(text)
        except ValueError:  # an open quote while typing: fall back to plain words
            words = text.split()
        terms, bad = [], []
        for word in words:
            negate = word.startswith("!")
            word = word[1:] if negate else word
            name, sep, value = word.partition(":")
            if sep and name.lower() in TIME_FIELDS:
                at = parse_when(value, time.time() if now is None else now)
                if at is None:
                    bad.append(word)
                else:
                    terms.append(Term(name.lower(), value.lower(), negate, at))
            elif sep and name.lower() in FILTER_FIELDS:
                terms.append(Term(name.lower(), value.lower(), negate))
            elif word:
                terms.append(Term(None, word.lower(), negate))
        return cls(text=text, terms=tuple(terms), bad=tuple(bad))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, row: RunRow) -> bool:
        return all(self._match(term, row) != term.negate for term in self.terms)

    @staticmethod
    def _match(term: Term, row: RunRow) -> bool:
        if term.at is not None:
            when = last_change(row)
            if when is None:
                return False
            return when >= term.at if term.field == "since" else when < term.at
        if term.field is None:
            return any(term.value in h.lower() for h in haystack(row) if h)
        column = FILTER_FIELDS[term.field]
        assert column.values is not None
        options = [v for v in term.value.split(",") if v]
        if not options:
            return True if column.prefix_match else any(h for h in column.values(row))
        found = [h.lower() for h in column.values(row) if h]
        if column.prefix_match:
            return any(h.startswith(o) for h in found for o in options)
        return any(o in h for h in found for o in options)


@dataclass
class RunSet:
    """All known rows and the visible, sorted order of their keys."""

    rows: dict[Key, RunRow] = field(default_factory=dict)
    filter: Filter = field(default_factory=Filter)
    faults_only: bool = False
    show_archived: bool = False
    sort: str = "started"
    reverse: bool = False
    marked: set[Key] = field(default_factory=set)
    unseen: set[Key] = field(default_factory=set)
    counts: Counter[Status] = field(default_factory=Counter)
    """Runs by status, archived ones and unreadable records left out."""
    archived_count: int = 0
    unreadable_count: int = 0
    stuck_ids: frozenset[str] = frozenset()
    """Runs found stuck, by id: what a windowed faults-only view asks the store for."""
    """Error rows (records a source could not read): counted apart, not as unknown."""

    def __post_init__(self) -> None:
        self._key_of = sort_key(self.sort)
        self._sk: dict[Key, tuple[Any, ...]] = {}
        self._order = SortedKeys(prefix=self.sort in _PREFIXED)
        self.version = 0
        """Bumped whenever rows move in the order: the table redraws all, not lines."""
        self._relocated: dict[Key, Any] | None = {}
        """Keys the last :meth:`apply` took out of the order and put back (their
        sort key or visibility changed); None after a bulk merge (unknown)."""

    # -- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._order)

    @property
    def order(self) -> list[Key]:
        """The visible keys in sort order (a copy: for tests and small tables)."""
        return list(self._order)  # type: ignore[arg-type]

    def key_at(self, index: int) -> Key:
        """The key shown at ``index`` (reversal is a view, not a re-sort)."""
        n = len(self._order)
        return self._order.at(n - 1 - index if self.reverse else index)  # type: ignore[return-value]

    def row_at(self, index: int) -> RunRow:
        return self.rows[self.key_at(index)]

    def index_of(self, key: Key) -> int | None:
        """Where ``key`` is shown, found by bisection on its sort key (keys are
        unique within a sort key, which always ends with the id)."""
        sk = self._sk.get(key)
        i = None if sk is None else self._order.index(sk, key)
        if i is None:
            return None
        return len(self._order) - 1 - i if self.reverse else i

    def want(self, index: int) -> None:
        """The table is drawing ``index``; a set holding only a window of the rows
        reads more around it (:mod:`jobwatch.tui.table_model.window`)."""

    def visible(self, row: RunRow) -> bool:
        if row.archived and not self.show_archived:
            return False
        if self.faults_only and row.status not in FAULTS and not self._stuck(row):
            return False
        return not self.filter or self.filter.matches(row)

    # -- changing ------------------------------------------------------------------

    def apply(self, rows: Iterable[RunRow], *, notice: bool = True) -> list[Key]:
        """Merge changed rows; returns the keys that turned into a fault (failed,
        timed out, unknown) so the caller can notify. Cost follows the change, not
        the table: rows whose sort key and visibility stay put are not moved, and a
        batch that is large next to the table (a first sync after the first screen
        of rows) is sorted once instead of moved row by row, which is quicker and
        builds nothing per row that it would throw away."""
        rows = rows if isinstance(rows, list) else list(rows)
        known = self.rows
        bulk = len(rows) >= BULK_SHARE * len(known)
        if bulk and not notice:
            keys = [(r.source, r.id) for r in rows]
            if known.keys().isdisjoint(keys) and len(set(keys)) == len(keys):
                self._add_new(rows, keys)
                return []
        # key -> (in the order before this poll, sort key there, in it after, sort key)
        moved: dict[Key, tuple[bool, SortKey | None, bool, SortKey]] = {}
        faulted: list[Key] = []
        gone: list[Status] = []  # counted in one go at the end: item by item, a Counter is slow
        came: list[Status] = []
        key_of, sks = self._key_of, self._sk
        # Without a filter or faults-only, visibility is just the archived flag:
        # tested inline, as this loop runs for every changed row of every poll.
        simple = not self.filter and not self.faults_only
        show_archived, visible = self.show_archived, self.visible
        archived = unreadable = 0
        for row in rows:
            key = (row.source, row.id)
            old = known.get(key)
            known[key] = row
            if old is not None:
                if old.archived:
                    archived -= 1
                elif old.error:
                    unreadable -= 1
                else:
                    gone.append(old.status)
            if row.archived:
                archived += 1
            elif row.error:
                unreadable += 1
            else:
                came.append(row.status)
            if notice and row.status in FAULTS and (old is None or old.status not in FAULTS):
                faulted.append(key)
            if bulk:
                sks[key] = key_of(row)
                continue
            if simple:
                was = old is not None and (show_archived or not old.archived)
                now = show_archived or not row.archived
            else:
                was = old is not None and visible(old)
                now = visible(row)
            sk = key_of(row)
            before = sks.get(key)
            sks[key] = sk
            if key in moved:  # seen before in this poll: it goes back as last seen
                first = moved[key]
                moved[key] = (first[0], first[1], now, sk)
            elif was != now or (now and before != sk):
                moved[key] = (was, before, now, sk)
        counts = self.counts
        counts.update(came)
        counts.subtract(Counter(gone))
        self.archived_count += archived
        self.unreadable_count += unreadable
        self.unseen.update(faulted)
        self._relocated = None if bulk else moved
        if bulk:
            self._rebuild()
        elif moved:
            self._move(moved)
        return faulted

    def _add_new(self, rows: list[RunRow], keys: list[Key]) -> None:
        """A first sync's next page: rows none of which is held yet, merged by
        dictionary updates and counts over the whole batch instead of one row at
        a time (the per-row loop was most of merging a 50k-row page, measured)."""
        self.rows.update(zip(keys, rows, strict=True))
        self._sk.update(zip(keys, map(self._key_of, rows), strict=True))
        plain = [r.status for r in rows if not r.archived and not r.error]
        archived = sum(1 for r in rows if r.archived)
        self.counts.update(plain)
        self.archived_count += archived
        self.unreadable_count += len(rows) - archived - len(plain)
        self._relocated = None
        self._rebuild()

    def relocated(self, key: Key) -> bool:
        """Whether the last :meth:`apply` moved ``key`` to another place of its own
        accord (its sort key or visibility changed), rather than being shifted by
        rows that came or went around it. After a bulk merge: assume it did."""
        return self._relocated is None or key in self._relocated

    def _move(self, moved: dict[Key, tuple[bool, SortKey | None, bool, SortKey]]) -> None:
        """Take each moved key out where its old sort key says it is and put it
        back where its new one says: a few bisections and a short copy inside
        one block each (see :mod:`jobwatch.tui.table_model.sortedkeys`), never a re-sort."""
        order = self._order
        gone = [(sk, k) for k, (was, sk, _, _) in moved.items() if was and sk is not None]
        if not order.remove_many(gone):
            self._rebuild()  # never expected; a rebuild is always right
            return
        order.insert_many([(m[3], k) for k, m in moved.items() if m[2]])
        self.version += 1

    def _rebuild(self) -> None:
        sk, rows = self._sk, self.rows
        if not self.filter and not self.faults_only:
            show_archived = self.show_archived
            keys = [k for k, r in rows.items() if show_archived or not r.archived]
        else:
            visible = self.visible
            keys = [k for k, r in rows.items() if visible(r)]
        # Sorting the keys by their sort keys compares the sort keys alone, about
        # twice as fast as sorting (sort key, key) pairs.
        keys.sort(key=sk.__getitem__)
        sks = list(map(sk.__getitem__, keys))
        self._order = SortedKeys(sks, keys, prefix=self.sort in _PREFIXED)
        self.version += 1

    def replace_all(self, rows: Iterable[RunRow]) -> None:
        """The first sync: load everything and sort once."""
        self.rows = {r.key: r for r in rows}
        rows = self.rows.values()
        self.counts = Counter(r.status for r in rows if not r.archived and not r.error)
        self.unreadable_count = sum(1 for r in rows if r.error and not r.archived)
        self.archived_count = len(self.rows) - self.counts.total() - self.unreadable_count
        key_of = self._key_of
        self._sk = {k: key_of(r) for k, r in self.rows.items()}
        self._rebuild()

    def set_filter(self, text: str, now: float | None = None) -> None:
        """``now`` is what ``since:1h`` counts back from (the monitor's clock)."""
        self.filter = Filter.parse(text, now)
        self._rebuild()

    @property
    def unfiltered(self) -> int:
        """How many runs the text filter chooses from: those faults-only and the
        archived toggle let through (what "12 of 340 match" counts against)."""
        counts = self.counts
        if not self.faults_only:
            return counts.total() + (self.archived_count if self.show_archived else 0)
        if not self.show_archived:
            return sum(counts.get(s, 0) for s in FAULTS)
        return sum(1 for r in self.rows.values() if r.status in FAULTS)  # rare: not counted

    def match_text(self) -> str | None:
        """``12 of 340 match`` / ``no match`` while a filter is set, else None; time
        terms that could not be read are named first."""
        parts = []
        if self.filter.bad:
            parts.append(f"cannot read {', '.join(self.filter.bad)} (try 30m, 2h, 1d, 2026-12-01)")
        if self.filter:
            shown = len(self)
            parts.append(f"{shown:,} of {self.unfiltered:,} match" if shown else "no match")
        return " · ".join(parts) or None

    def _stuck(self, row: RunRow) -> bool:
        """Stamped stuck, or found stuck by id (a row just read from a store)."""
        return row.stuck or (row.status is Status.RUNNING and row.id in self.stuck_ids)

    def set_stuck(self, ids: frozenset[str]) -> None:
        """The ids of the runs found stuck (faults-only keeps them; rows say it too)."""
        self.stuck_ids = ids

    def toggle_faults(self) -> None:
        self.faults_only = not self.faults_only
        self._rebuild()

    def toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self._rebuild()

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        self._key_of = sort_key(column)
        self.sort = column
        if reverse is not None:
            self.reverse = reverse
        self._sk = {k: self._key_of(r) for k, r in self.rows.items()}
        self._rebuild()

    def cycle_sort(self) -> str:
        self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])
        return self.sort

    def toggle_reverse(self) -> None:
        self.reverse = not self.reverse

    def toggle_mark(self, key: Key) -> None:
        self.marked.symmetric_difference_update({key})

    def mark_visible(self) -> int:
        """Mark every run the table shows now; returns how many were newly marked."""
        before = len(self.marked)
        self.marked.update(self._order)  # type: ignore[arg-type]
        return len(self.marked) - before

    def clear_marks(self) -> int:
        count = len(self.marked)
        self.marked.clear()
        return count

    def row_of(self, key: Key) -> RunRow | None:
        """The newest row known for ``key``: a held row, or a marked one the set
        keeps apart (a window lets go of rows it no longer shows, never of marks)."""
        return self.rows.get(key)

    def hidden_marks(self) -> list[Key]:
        """Marked runs the table does not show (filtered out, faults-only, archived,
        or scrolled out of a window).

        Marks survive a filter change on purpose: mark some runs under one filter,
        more under another, then act on all of them. So that nothing is acted on
        unseen, the status line counts these and the confirmation names them."""
        return [k for k in self.marked if self.row_of(k) is not None and self.index_of(k) is None]

    def seen(self, key: Key) -> None:
        self.unseen.discard(key)
