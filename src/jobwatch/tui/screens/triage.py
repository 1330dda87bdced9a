"""The jobs screen (``J``) and the failure-groups screen (``F``), over the app's one
:class:`~jobwatch.triage.index.TriageIndex`.

Both are a row table whose columns drop by priority when the terminal is narrow
(as the runs table's do), so they read at 80x24. A poll that changes the index
hands the screen what it touched (:meth:`TriageScreen.touched`): only those rows
are recomputed and redrawn. Enter closes the screen with a filter for the runs
table (``job:NAME``; a group's run ids), which the app applies.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from jobwatch.core.status import Status
from jobwatch.triage import text as say
from jobwatch.triage.index import (
    WINDOW_S,
    FailureGroup,
    JobKey,
    JobSummary,
    Touched,
    TriageIndex,
)
from jobwatch.tui import keys

PAD = 2
"""DataTable's cell padding, both sides together."""
BORDER = 4
"""The box's border and padding, both sides together."""
SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Col:
    key: str
    header: str
    width: int
    priority: int
    """0: never dropped; higher numbers go first when the terminal is narrow."""
    flex_to: int = 0
    """A column that takes the spare cells, up to this many."""


def fit(cols: Sequence[Col], width: int) -> list[tuple[Col, int]]:
    """The columns that fit ``width`` cells, highest priority first kept, in their
    own order; the spare cells go to the flexible ones."""
    chosen: set[str] = set()
    used = 0
    for col in sorted(cols, key=lambda c: c.priority):
        need = col.width + PAD
        if col.priority == 0 or used + need <= width:
            chosen.add(col.key)
            used += need
    spare = max(0, width - used)
    out = []
    for col in cols:
        if col.key not in chosen:
            continue
        grow = min(spare, max(0, col.flex_to - col.width))
        spare -= grow
        out.append((col, col.width + grow))
    return out


class TriageScreen(ModalScreen[str | None]):
    """A table over the index; subclasses say which rows and cells."""

    BINDINGS = keys.TRIAGE
    DEFAULT_CSS = """
    TriageScreen { align: center middle; }
    TriageScreen > #triage-box {
        width: 100%; height: 100%; border: round $accent; padding: 0 1;
        background: $surface;
    }
    TriageScreen #triage-note { height: 1; color: $text-muted; }
    TriageScreen DataTable { height: 1fr; }
    """
    TITLE_TEXT = ""
    COLS: tuple[Col, ...] = ()

    def __init__(self, index: TriageIndex, clock: Callable[[], float], several: bool) -> None:
        super().__init__()
        self.index = index
        self.clock = clock
        self.several = several
        self.layout_cols: list[tuple[Col, int]] = []
        self.updates = 0
        """Rows recomputed by :meth:`touched` (tests read it)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="triage-box") as box:
            box.border_title = self.TITLE_TEXT
            box.border_subtitle = "Enter: filter the runs · Esc: close"
            yield Static(id="triage-note")
            yield DataTable(id="triage-table", cursor_type="row", zebra_stripes=False)

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#triage-table", DataTable)

    def columns(self) -> tuple[Col, ...]:
        return self.COLS

    def on_mount(self) -> None:
        self.rebuild()
        self.table.focus()

    def on_resize(self) -> None:
        if [c.key for c, _ in fit(self.columns(), self._width())] != [
            c.key for c, _ in self.layout_cols
        ]:
            self.rebuild()

    def _width(self) -> int:
        return max(20, self.app.size.width - BORDER)

    def rebuild(self) -> None:
        """Every row again (on open and when the columns that fit change)."""
        table = self.table
        table.clear(columns=True)
        self.layout_cols = fit(self.columns(), self._width())
        for col, width in self.layout_cols:
            table.add_column(col.header, width=width, key=col.key)
        for key, cells in self.rows():
            table.add_row(*self._ordered(cells), key=key)
        self.note()

    def _ordered(self, cells: dict[str, Text | str]) -> list[Text | str]:
        return [cells.get(col.key, "") for col, _ in self.layout_cols]

    def put(self, key: str, cells: dict[str, Text | str] | None) -> None:
        """Update, add or (``None``) remove one row."""
        table = self.table
        self.updates += 1
        exists = key in table.rows
        if cells is None:
            if exists:
                table.remove_row(key)
            return
        if not exists:
            table.add_row(*self._ordered(cells), key=key)
            return
        row = table.get_row_index(key)
        for column, (col, _) in enumerate(self.layout_cols):
            table.update_cell_at(Coordinate(row, column), cells.get(col.key, ""))

    def colour(self, status: Status | None) -> Style:
        if status is None:
            return Style()
        value = self.app.theme_variables.get(f"status-{status.value}")
        return Style.parse(value) if value else Style()

    def rows(self) -> list[tuple[str, dict[str, Text | str]]]:
        raise NotImplementedError

    def touched(self, what: Touched) -> None:
        raise NotImplementedError

    def note(self) -> None:
        return None

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.dismiss(self.filter_for(event.row_key.value))

    def filter_for(self, key: str) -> str | None:
        raise NotImplementedError


class JobsScreen(TriageScreen):
    """One row per job (source + job): last status, success rate, p50/p95, the last
    runs as a sparkline coloured by outcome, time since the last success, trend."""

    TITLE_TEXT = "jobs"

    def columns(self) -> tuple[Col, ...]:
        cols: tuple[Col, ...] = (
            Col("job", "JOB", 16, 0),
            Col("last", "LAST", 11, 0),
            Col("ok", "OK", 4, 1),
            Col("trend", "TREND", 22, 1),
            Col("recent", "RECENT", 10, 2, flex_to=30),
            Col("p50", "P50", 7, 3),
            Col("last_ok", "LAST OK", 7, 3),
            Col("runs", "24H", 4, 4),
            Col("p95", "P95", 7, 4),
        )
        if self.several:
            cols = (Col("source", "SOURCE", 10, 1), *cols)
        return cols

    def cells(self, s: JobSummary) -> dict[str, Text | str]:
        now = self.clock()
        plain = say.job_cells(s, now)
        cells: dict[str, Text | str] = dict(plain)
        cells["last"] = Text(plain["last"], style=self.colour(s.last_status))
        width = next((w for c, w in self.layout_cols if c.key == "recent"), 0)
        spark = Text(justify="right")
        for bar, status in say.spark(s.spark)[-width:] if width else []:
            spark.append(bar, style=self.colour(status))
        cells["recent"] = spark
        if (s.trend and "failed" in s.trend) or s.late:
            cells["trend"] = Text(plain["trend"], style=self.colour(Status.FAILED))
        return cells

    def on_mount(self) -> None:
        super().on_mount()
        self._stale: set[JobKey] = set()
        self.watch(self.table, "scroll_y", self._scrolled, init=False)

    def rows(self) -> list[tuple[str, dict[str, Text | str]]]:
        return [(SEP.join(s.key), self.cells(s)) for s in self.index.jobs(self.clock())]

    def touched(self, what: Touched) -> None:
        """Recompute the touched jobs on screen now; the others when they scroll
        into view (a busy poll touches hundreds of jobs, the screen shows twenty)."""
        shown = self._shown()
        for key in what.jobs:
            row = SEP.join(key)
            if row in self.table.rows and row not in shown:
                self._stale.add(key)
            else:
                self._redo(key)
        self.note()

    def _shown(self) -> set[str]:
        """Row keys in the table's viewport (with a screen's margin either side)."""
        table = self.table
        height = max(1, table.size.height)
        first = max(0, int(table.scroll_y) - height)
        last = min(table.row_count, int(table.scroll_y) + 2 * height)
        ordered = table.ordered_rows
        return {str(ordered[i].key.value) for i in range(first, last)}

    def _redo(self, key: JobKey) -> None:
        self._stale.discard(key)
        summary = self.index.summary(key, self.clock())
        self.put(SEP.join(key), self.cells(summary) if summary else None)

    def _scrolled(self) -> None:
        if not self._stale:
            return
        shown = self._shown()
        for key in [k for k in self._stale if SEP.join(k) in shown]:
            self._redo(key)

    def note(self) -> None:
        jobs, failing, running = self.index.tally()
        self.query_one("#triage-note", Static).update(
            f"{jobs} jobs · {failing} failing now · {running} active"
        )

    def filter_for(self, key: str) -> str | None:
        source, _, job = key.partition(SEP)
        terms = [f"job:{job}"] if job else []
        if self.several:
            terms.append(f"source:{source}")
        return shlex.join(terms) if terms else None


class FailuresScreen(TriageScreen):
    """Failures grouped by signature in the last day: count, first and last seen,
    jobs affected, an example run; "NEW" for a signature not seen before."""

    TITLE_TEXT = "failure groups (last 24h)"
    COLS = (
        Col("new", "NEW", 3, 0),
        Col("count", "N", 4, 0),
        Col("signature", "SIGNATURE", 20, 0, flex_to=80),
        Col("last", "LAST", 5, 1),
        Col("jobs", "JOBS", 16, 1),
        Col("first", "FIRST", 5, 2),
        Col("kind", "KIND", 8, 4),
        Col("example", "EXAMPLE", 16, 3),
    )

    def __init__(self, index: TriageIndex, clock: Callable[[], float], several: bool) -> None:
        super().__init__(index, clock, several)
        self.since = clock() - WINDOW_S
        self._groups: dict[str, FailureGroup] = {}

    def cells(self, g: FailureGroup) -> dict[str, Text | str]:
        plain = say.group_cells(g, self.clock())
        cells: dict[str, Text | str] = dict(plain)
        cells["new"] = Text(plain["new"], style=self.colour(Status.FAILED) + Style(bold=True))
        return cells

    def rows(self) -> list[tuple[str, dict[str, Text | str]]]:
        groups = self.index.failures(self.since, self.clock())
        self._groups = {g.signature.key: g for g in groups}
        return [(g.signature.key, self.cells(g)) for g in groups]

    def touched(self, what: Touched) -> None:
        for name in what.groups:
            group = self.index.group(name, self.since)
            if group is None:
                self._groups.pop(name, None)
            else:
                self._groups[name] = group
            self.put(name, self.cells(group) if group else None)
        self.note()

    def note(self) -> None:
        groups = self._groups.values()
        new = sum(1 for g in groups if g.new)
        total = sum(g.count for g in groups)
        self.query_one("#triage-note", Static).update(
            f"{len(self._groups)} groups · {total} failures · {new} new"
        )

    def filter_for(self, key: str) -> str | None:
        group = self._groups.get(key)
        if group is None or not group.keys:
            return None
        return shlex.join(["id:" + ",".join(k[1] for k in group.keys)])
