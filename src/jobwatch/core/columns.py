"""The one column registry: everything about a column of runs, in one entry.

Header, width policy (in terminal cells), priority on a narrow terminal, cell
text, sort key and filter field live here, and three readers use them: the
monitor's runs table, the filter grammar (``/status:failed``) and ``jobwatch
list``. Adding a column is one :class:`Column` here (plus the field on
:class:`~jobwatch.core.row.RunRow` and, for the store's fast path, its column in
:mod:`jobwatch.sources.local.schema`).

Widths are terminal cells, not characters: a CJK job name or an emoji is two
cells wide (:func:`rich.cells.cell_len`), so rows stay aligned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from rich.cells import cell_len, set_cell_size

from jobwatch.core.format import GLYPHS, duration, relative
from jobwatch.core.reasons import Severity, row_severity
from jobwatch.core.redact import clean
from jobwatch.core.row import RunRow
from jobwatch.core.status import Status

GAP = 1
"""Cells between two columns in the monitor (the CLI's table uses two)."""


class Mode(Enum):
    """Where a cell is drawn: the same column reads a little differently in each."""

    TABLE = "table"
    """The monitor: compact (``3m`` for an age)."""
    HUMAN = "human"
    """``jobwatch list`` on a terminal (``3m ago``)."""
    PLAIN = "plain"
    """``jobwatch list`` through a pipe: raw values a script can parse."""


@dataclass(frozen=True, slots=True)
class Width:
    """How wide a column may be, in cells: ``min`` always, up to ``max`` (``None``:
    no limit), and a ``flex`` share of whatever room is left."""

    min: int
    max: int | None = None
    flex: int = 0


@dataclass(frozen=True, slots=True)
class Cell:
    """What a cell needs besides its row."""

    now: float
    mode: Mode = Mode.TABLE
    width: int = 0
    """The cells the column got (a progress bar fills what it has)."""
    slow: Callable[[RunRow], str | None] | None = None
    """Whether a run is slow for its job (the triage index answers; the core
    cannot know): the duration column marks it with :data:`SLOW_MARK`."""


SLOW_MARK = "↑"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    header: str
    width: Width
    text: Callable[[RunRow, Cell], str]
    priority: int = 0
    """0: never dropped; higher numbers go first when the terminal is narrow."""
    priority_several: int | None = None
    """Its priority when several sources are shown (which one a run is from matters)."""
    style: Callable[[RunRow], str | None] | None = None
    """A semantic style name (``status-failed``, ``dim``, ``problem``), or None."""
    sort: Callable[[RunRow], tuple[Any, ...]] | None = None
    prefixed: bool = False
    """The sort key leads with one float that orders all but ties (see sortedkeys)."""
    filter: str | None = None
    """The field name in the filter grammar (``job:``), if it can be filtered on."""
    values: Callable[[RunRow], tuple[str | None, ...]] | None = None
    """What a filter term on this field is matched against."""
    prefix_match: bool = False
    """Filter values match the start (``status:fail``), not anywhere."""
    shown: bool = True
    """In the default layout; hidden columns still filter and sort."""

    def drop_rank(self, several: bool) -> int:
        if several and self.priority_several is not None:
            return self.priority_several
        return self.priority


# -- cells -----------------------------------------------------------------------------


def ago(seconds: float) -> str:
    """Compact age for a narrow column: ``12s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def progress_text(row: RunRow, width: int = 0, *, compact: bool = True) -> str:
    """``███░░ 8/10 ✗2~``: a bar when there is room, then the counters; a partial
    success is ``~`` in the monitor and the word ``partial`` elsewhere."""
    if row.total is None and row.succeeded is None:
        return ""
    done = row.succeeded or 0
    text = f"{done}/{row.total if row.total is not None else '?'}"
    if row.failed:
        text += f" ✗{row.failed}"
    if row.partial:
        text += "~" if compact else " partial"
    bar_width = width - cell_len(text) - 1
    if bar_width >= 4 and row.total:
        filled = round(bar_width * min(1.0, (done + (row.failed or 0)) / row.total))
        text = "█" * filled + "░" * (bar_width - filled) + " " + text
    return text


def _status(row: RunRow, cell: Cell) -> str:
    word = "aborting" if row.aborting else row.status.value
    if cell.mode is Mode.PLAIN:
        return row.status.value
    return f"{GLYPHS[row.status]} {word}"  # a deleted run says so in PROBLEM


def _job(row: RunRow, cell: Cell) -> str:
    if row.error:
        return clean(row.error)
    text = clean(row.job or row.label or "")
    return f"⌫ {text}" if row.archived and cell.mode is not Mode.PLAIN else text


def _started(row: RunRow, cell: Cell) -> str:
    when = row.started_at or row.created_at
    if when is None:
        return "" if cell.mode is Mode.PLAIN else "-"
    if cell.mode is Mode.TABLE:
        return ago(cell.now - when)
    if cell.mode is Mode.HUMAN:
        now = datetime.fromtimestamp(cell.now, UTC)
        return relative(datetime.fromtimestamp(when, UTC), now)
    return datetime.fromtimestamp(when, UTC).isoformat()


def _when(row: RunRow) -> float:
    return row.started_at or row.created_at or 0.0


_PROBLEM_STYLE: dict[Severity | None, str | None] = {
    None: None,
    Severity.FAULT: "problem",
    Severity.NOTICE: "notice",
    Severity.NORMAL: "dim",
}
"""A reason that is how runs end (``end_turn``, ``user-request``) is not drawn as a
fault; which ones are is decided in :mod:`jobwatch.core.reasons`."""


def _problem(row: RunRow, cell: Cell) -> str:
    """The problem word; a stuck run says for how long it has been quiet."""
    if row.stuck and row.stuck_since is not None:
        quiet = f"stuck {ago(cell.now - row.stuck_since)}"
        return f"{quiet} {clean(row.problem)}" if row.problem else quiet
    return clean(row.problem or "")


def last_change(row: RunRow) -> float | None:
    """When a run last changed as far as its times tell: the later of its end and
    its start (or creation). A long run that just failed has an old start but a
    fresh end: this is what "what just happened" sorts and filters by."""
    times = [t for t in (row.ended_at, row.started_at or row.created_at) if t is not None]
    return max(times) if times else None


def _changed(row: RunRow, cell: Cell) -> str:
    when = last_change(row)
    if when is None:
        return "" if cell.mode is Mode.PLAIN else "-"
    if cell.mode is Mode.TABLE:
        return ago(cell.now - when)
    if cell.mode is Mode.HUMAN:
        now = datetime.fromtimestamp(cell.now, UTC)
        return relative(datetime.fromtimestamp(when, UTC), now)
    return datetime.fromtimestamp(when, UTC).isoformat()


# -- sort keys ---------------------------------------------------------------------------

STATUS_RANK = {
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
_SPAN = 2.0**32
"""A status's band in the status key's leading float: epoch seconds up to 2106.
That float tells apart times about 8 µs apart; closer ones tie on it."""
_STATUS_BASE = {s: rank * _SPAN for s, rank in STATUS_RANK.items()}
_NO_STATUS_BASE = 99 * _SPAN


def _status_key(r: RunRow) -> tuple[Any, ...]:
    """``(band - when, band, -when, id, source)``: the order of (status rank,
    newest first, id, source), led by one float so that moving a row bisects
    floats (see :mod:`jobwatch.tui.table_model.sortedkeys`). That float never
    decreases along the order: clamping and rounding can make it tie, and then the
    rest decides."""
    base = _STATUS_BASE.get(r.status, _NO_STATUS_BASE)
    when = r.started_at or r.created_at or 0.0
    span = when if 0.0 <= when <= _SPAN else (0.0 if when < 0.0 else _SPAN)
    return (base - span, base, -when, r.id, r.source)


def _started_key(r: RunRow) -> tuple[Any, ...]:
    return (-(r.started_at or r.created_at or 0.0), r.id, r.source)


def _changed_key(r: RunRow) -> tuple[Any, ...]:
    return (-(last_change(r) or 0.0), r.id, r.source)


# -- the registry ------------------------------------------------------------------------

COLUMNS: tuple[Column, ...] = (
    Column(
        "status",
        "STATUS",
        Width(12, 12),
        _status,
        style=lambda r: f"status-{r.status.value}",
        sort=_status_key,
        prefixed=True,
        filter="status",
        values=lambda r: (r.status.value,),
        prefix_match=True,
    ),
    Column(
        "id",
        "ID",
        Width(13, 40, flex=2),
        lambda r, c: clean(r.id),
        sort=lambda r: (r.id, r.source),
        filter="id",
        values=lambda r: (r.id,),
    ),
    Column(
        "source",
        "SOURCE",
        Width(8, 16, flex=1),
        lambda r, c: clean(r.source),
        priority=2,
        priority_several=1,
        style=lambda r: "dim",
        sort=lambda r: (r.source, -_when(r), r.id),
        filter="source",
        values=lambda r: (r.source,),
    ),
    Column(
        "job",
        "JOB",
        Width(10, 40, flex=3),
        _job,
        style=lambda r: "broken" if r.error else None,
        sort=lambda r: ((r.job or r.label or "").lower(), -_when(r), r.id, r.source),
        filter="job",
        values=lambda r: (r.job, r.label),
    ),
    Column(
        "started",
        "STARTED",
        Width(8, 8),
        _started,
        style=lambda r: "dim",
        sort=_started_key,
        prefixed=True,
    ),
    Column(
        "duration",
        "DURATION",
        Width(9, 9),
        lambda r, c: duration(r.elapsed_ms(c.now)) + (SLOW_MARK if c.slow and c.slow(r) else ""),
        sort=lambda r: (-(r.duration_ms or 0.0), -_when(r), r.id, r.source),
    ),
    Column(
        "progress",
        "PROGRESS",
        Width(12, 24, flex=1),
        lambda r, c: progress_text(r, c.width, compact=c.mode is Mode.TABLE),
        priority=1,
        priority_several=3,
    ),
    Column(
        "problem",
        "PROBLEM",
        Width(12, 40, flex=3),
        lambda r, c: _problem(r, c),
        priority_several=2,
        style=lambda r: _PROBLEM_STYLE[row_severity(r)],
        sort=lambda r: (r.problem is None, r.problem or "", -_when(r), r.id, r.source),
        filter="problem",
        values=lambda r: (r.problem, "stuck" if r.stuck else None),
    ),
    Column(
        "changed",
        "CHANGED",
        Width(8, 8),
        _changed,
        style=lambda r: "dim",
        sort=_changed_key,
        prefixed=True,
        shown=False,
    ),
    Column(
        "label",
        "LABEL",
        Width(12, 40),
        lambda r, c: clean(r.label or ""),
        filter="label",
        values=lambda r: (r.label,),
        shown=False,
    ),
    Column(
        "raw",
        "RAW STATUS",
        Width(12, 20),
        lambda r, c: clean(r.status_raw or ""),
        filter="raw",
        values=lambda r: (r.status_raw,),
        shown=False,
    ),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
SORTS: tuple[str, ...] = (
    "started",
    "changed",
    "status",
    "duration",
    "source",
    "job",
    "problem",
    "id",
)
"""The order ``s`` cycles through the sortable columns: newest first is the default,
then "last change" (what just happened)."""
FILTER_FIELDS: dict[str, Column] = {c.filter: c for c in COLUMNS if c.filter}
LIST_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.shown)
"""What ``jobwatch list`` prints, in this order (the TSV's documented fields)."""

assert all(BY_NAME[s].sort is not None for s in SORTS)


def sort_key(name: str) -> Callable[[RunRow], tuple[Any, ...]]:
    """Ascending key for column ``name``; newest-first is built in where expected."""
    column = BY_NAME.get(name)
    if column is None or column.sort is None:
        raise ValueError(f"unknown sort column {name!r} (one of {', '.join(SORTS)})")
    return column.sort


def haystack(row: RunRow) -> Iterable[str | None]:
    """Every filterable value of a row: what free text in the filter is matched on."""
    for column in FILTER_FIELDS.values():
        assert column.values is not None
        yield from column.values(row)


# -- layout and fitting ------------------------------------------------------------------


def fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` cells: padded, or cut with an ellipsis."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def layout(
    width: int,
    *,
    several: bool = False,
    columns: Sequence[Column] | None = None,
    gap: int = GAP,
    reserved: int = 0,
) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` cells and the width each gets.

    Columns are dropped by priority (highest first) until their minimum widths
    fit; then fixed columns grow toward their maximum, and the flexible ones share
    what is left by their ``flex`` shares, none beyond its maximum (what no column
    can take stays blank at the right). ``gap`` cells separate columns;
    ``reserved`` cells are kept for something drawn before them (the monitor's
    mark)."""
    chosen = list(columns if columns is not None else [c for c in COLUMNS if c.shown])
    room = width - reserved

    def needed(cols: list[Column]) -> int:
        return sum(c.width.min for c in cols) + gap * max(0, len(cols) - 1)

    ranked = sorted(
        (c for c in chosen if c.drop_rank(several)), key=lambda c: -c.drop_rank(several)
    )
    for column in ranked:
        if needed(chosen) <= room:
            break
        chosen.remove(column)
    widths = {c.name: c.width.min for c in chosen}
    spare = room - needed(chosen)
    for c in chosen:  # fixed columns first, up to their maximum
        limit = c.width.max
        if spare > 0 and not c.width.flex and limit is not None and limit > c.width.min:
            grow = min(spare, limit - c.width.min)
            widths[c.name] += grow
            spare -= grow
    _share(widths, [c for c in chosen if c.width.flex], spare)
    return [(c, widths[c.name]) for c in chosen]


def _share(widths: dict[str, int], flexible: list[Column], spare: int) -> None:
    """Hand out ``spare`` cells one at a time to the column furthest behind its
    share (grown / flex smallest; the first on a tie), skipping full ones: the
    same split at every width, exact in integers, never past a maximum."""
    grown = dict.fromkeys((c.name for c in flexible), 0)
    open_ = [c for c in flexible if c.width.max is None or widths[c.name] < c.width.max]
    while spare > 0 and open_:
        best = min(open_, key=lambda c: (grown[c.name] + 1) / c.width.flex)
        widths[best.name] += 1
        grown[best.name] += 1
        spare -= 1
        if best.width.max is not None and widths[best.name] >= best.width.max:
            open_.remove(best)


def render_row(cells: Iterable[tuple[str, int]], gap: int = GAP) -> str:
    """Cells fitted to their widths and joined: a line of ``jobwatch list``."""
    return (" " * gap).join(fit(text, w) for text, w in cells)
