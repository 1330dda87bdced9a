"""The monitor's table model, headless: rows, filter grammar, sort, marks, counts.

It lives outside ``tui/`` so it can be tested without a terminal, and so every
operation has a measured cost at 100k rows: a poll applies in time proportional
to what changed, and the order is re-sorted only when a sort key moved.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jobwatch.models import FAULTS, RunRow, Status
from jobwatch.sortedkeys import SortedKeys

Key = tuple[str, str]
"""(source, id): runs of different sources may share an id."""

SORTS: tuple[str, ...] = ("started", "status", "duration", "source", "job", "problem", "id")
_STATUS_RANK = {
    s: i
    for i, s in enumerate(
        (
            Status.RUNNING,
            Status.PAUSED,
            Status.QUEUED,
            Status.NEW,
            Status.FAILED,
            Status.TIMED_OUT,
            Status.UNKNOWN,
            Status.ABORTED,
            Status.SUCCEEDED,
        )
    )
}
_FIELDS = ("status", "job", "source", "id", "problem", "label", "raw")
_MOVE_ONE_BY_ONE = 64
"""Up to this many moved rows are bisected into place; beyond, one merge is cheaper."""


def _when(row: RunRow) -> float:
    return row.started_at or row.created_at or 0.0


def sort_key(column: str) -> Callable[[RunRow], tuple[Any, ...]]:
    """Ascending key for ``column``; newest-first is built in where it is expected."""
    if column == "started":
        return lambda r: (-_when(r), r.id, r.source)
    if column == "status":
        return lambda r: (_STATUS_RANK.get(r.status, 99), -_when(r), r.id, r.source)
    if column == "duration":
        return lambda r: (-(r.duration_ms or 0.0), -_when(r), r.id, r.source)
    if column == "source":
        return lambda r: (r.source, -_when(r), r.id)
    if column == "job":
        return lambda r: ((r.job or r.label or "").lower(), -_when(r), r.id, r.source)
    if column == "problem":
        return lambda r: (r.problem is None, r.problem or "", -_when(r), r.id, r.source)
    if column == "id":
        return lambda r: (r.id, r.source)
    raise ValueError(f"unknown sort column {column!r} (one of {', '.join(SORTS)})")


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None  # None: free text over every field
    value: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """``/`` filter: free text, ``status:failed``, ``job:x``, ``source:y``, ``id:``,
    ``problem:``, ``label:``, ``raw:`` and ``!term`` to exclude; terms are ANDed and
    comma-separated values within a field are ORed (``status:failed,timed_out``)."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Filter:
        try:
            words = shlex.split(text)
        except ValueError:  # an open quote while typing: fall back to plain words
            words = text.split()
        terms = []
        for word in words:
            negate = word.startswith("!")
            word = word[1:] if negate else word
            name, sep, value = word.partition(":")
            if sep and name.lower() in _FIELDS:
                terms.append(Term(name.lower(), value.lower(), negate))
            elif word:
                terms.append(Term(None, word.lower(), negate))
        return cls(text=text, terms=tuple(terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, row: RunRow) -> bool:
        return all(self._match(term, row) != term.negate for term in self.terms)

    @staticmethod
    def _match(term: Term, row: RunRow) -> bool:
        if term.field == "status":
            wanted = [v for v in term.value.split(",") if v]
            return any(row.status.value.startswith(v) for v in wanted) if wanted else True
        values = {
            "job": (row.job, row.label),
            "source": (row.source,),
            "id": (row.id,),
            "problem": (row.problem,),
            "label": (row.label,),
            "raw": (row.status_raw,),
        }
        if term.field is None:
            haystack: Iterable[str | None] = (
                row.id,
                row.job,
                row.label,
                row.source,
                row.status.value,
                row.problem,
                row.status_raw,
            )
            return any(term.value in h.lower() for h in haystack if h)
        options = [v for v in term.value.split(",") if v] or [""]
        return any(option in h.lower() for h in values[term.field] if h for option in options)


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
    archived_count: int = 0

    def __post_init__(self) -> None:
        self._key_of = sort_key(self.sort)
        self._sk: dict[Key, tuple[Any, ...]] = {}
        self._order = SortedKeys()
        self.version = 0
        """Bumped whenever rows move in the order: the table redraws all, not lines."""

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

    def visible(self, row: RunRow) -> bool:
        if row.archived and not self.show_archived:
            return False
        if self.faults_only and row.status not in FAULTS:
            return False
        return not self.filter or self.filter.matches(row)

    # -- changing ------------------------------------------------------------------

    def apply(self, rows: Iterable[RunRow], *, notice: bool = True) -> list[Key]:
        """Merge changed rows; returns the keys that turned into a fault (failed,
        timed out, unknown) so the caller can notify. Cost follows the change, not
        the table: rows whose sort key and visibility stay put are not moved."""
        moved: dict[Key, bool] = {}  # key -> was it in the order before this poll
        new_sk: dict[Key, tuple[Any, ...]] = {}
        faulted: list[Key] = []
        key_of, old_sk, known, counts = self._key_of, self._sk, self.rows, self.counts
        # Without a filter or faults-only, visibility is just the archived flag:
        # tested inline, as this loop runs for every changed row of every poll.
        simple = not self.filter and not self.faults_only
        show_archived, visible = self.show_archived, self.visible
        archived = 0
        for row in rows:
            key = (row.source, row.id)
            old = known.get(key)
            known[key] = row
            if old is not None:
                if old.archived:
                    archived -= 1
                else:
                    counts[old.status] -= 1
            if row.archived:
                archived += 1
            else:
                counts[row.status] += 1
            if notice and row.status in FAULTS and (old is None or old.status not in FAULTS):
                faulted.append(key)
            if simple:
                was = old is not None and (show_archived or not old.archived)
                now = show_archived or not row.archived
            else:
                was = old is not None and visible(old)
                now = visible(row)
            sk = key_of(row)
            if was != now or (now and new_sk.get(key, old_sk.get(key)) != sk):
                moved.setdefault(key, was)
            new_sk[key] = sk
        self.archived_count += archived
        self.unseen.update(faulted)
        if moved:
            self._move(moved, new_sk)
        else:
            old_sk.update(new_sk)
        return faulted

    def _count(self, row: RunRow | None, sign: int) -> None:
        if row is None:
            return
        if row.archived:
            self.archived_count += sign
        else:
            self.counts[row.status] += sign

    def _move(self, moved: dict[Key, bool], new_sk: dict[Key, tuple[Any, ...]]) -> None:
        """Take each moved key out where its old sort key says it is and put it
        back where its new one says: a few bisections and a short copy inside
        one block each (see :mod:`jobwatch.sortedkeys`), never a re-sort."""
        order, old_sk = self._order, self._sk
        remove, insert = order.remove, order.insert
        for key, was in moved.items():
            if was and not remove(old_sk[key], key):
                old_sk.update(new_sk)
                self._rebuild()  # never expected; a rebuild is always right
                return
        old_sk.update(new_sk)
        rows, visible = self.rows, self.visible
        show_archived = self.show_archived
        simple = not self.filter and not self.faults_only
        for key in moved:
            row = rows[key]
            if (show_archived or not row.archived) if simple else visible(row):
                insert(new_sk[key], key)
        self.version += 1

    def _rebuild(self) -> None:
        sk = self._sk
        self._order = SortedKeys(
            sorted((sk[k], k) for k, r in self.rows.items() if self.visible(r))
        )
        self.version += 1

    def replace_all(self, rows: Iterable[RunRow]) -> None:
        """The first sync: load everything and sort once."""
        self.rows = {r.key: r for r in rows}
        self.counts = Counter()
        self.archived_count = 0
        for row in self.rows.values():
            self._count(row, +1)
        key_of = self._key_of
        self._sk = {k: key_of(r) for k, r in self.rows.items()}
        self._rebuild()

    def set_filter(self, text: str) -> None:
        self.filter = Filter.parse(text)
        self._rebuild()

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

    def seen(self, key: Key) -> None:
        self.unseen.discard(key)
