"""The runs table: a ScrollView that renders only the rows on screen.

The stock DataTable builds every row up front (about 16 s for 100k rows); here
``render_line`` draws a row from the headless :class:`~jobwatch.tui.table_model.runset.RunSet` when
Textual asks for it, so cost follows the terminal's height, not the table's size.
The cursor is a run key, not a position, so it stays on its run when rows move.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from jobwatch.core import RunRow, Status
from jobwatch.core.format import GLYPHS, duration
from jobwatch.core.redact import clean
from jobwatch.tui.table_model.runset import Key, RunSet
from jobwatch.tui.widgets.styles import ComponentStyles

FLASH_S = 2.0
"""How long a changed row stays highlighted."""


def ago(seconds: float) -> str:
    """Compact age for a narrow column: ``12s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def progress_cell(row: RunRow, width: int) -> str:
    """``███░░ 8/10 ✗2~``: a bar when there is room, then the counters."""
    if row.total is None and row.succeeded is None:
        return ""
    done = row.succeeded or 0
    text = f"{done}/{row.total if row.total is not None else '?'}"
    if row.failed:
        text += f" ✗{row.failed}"
    if row.partial:
        text += "~"
    bar_width = width - len(text) - 1
    if bar_width >= 4 and row.total:
        filled = round(bar_width * min(1.0, (done + (row.failed or 0)) / row.total))
        text = "█" * filled + "░" * (bar_width - filled) + " " + text
    return text


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    title: str
    width: int  # 0: takes the space left over


_ALL_COLUMNS = (
    Column("mark", " ", 1),
    Column("status", "STATUS", 12),
    Column("id", "ID", 13),
    Column("source", "SOURCE", 15),
    Column("job", "JOB", 0),
    Column("started", "STARTED", 8),
    Column("duration", "DURATION", 9),
    Column("progress", "PROGRESS", 18),
    Column("problem", "PROBLEM", 16),
)
_OPTIONAL = ("source", "progress")  # dropped, in this order, when the screen is narrow
_OPTIONAL_SEVERAL = ("progress", "problem", "source")
"""With several sources open, which one a run comes from matters more."""
_SORT_COLUMN = {
    "started": "started",
    "status": "status",
    "duration": "duration",
    "source": "source",
    "job": "job",
    "problem": "problem",
    "id": "id",
}


def layout(width: int, *, several: bool = False) -> list[Column]:
    """Columns that fit ``width``; the job column gets whatever is left."""
    columns = list(_ALL_COLUMNS)
    for name in _OPTIONAL_SEVERAL if several else _OPTIONAL:
        fixed = sum(c.width + 1 for c in columns)
        if fixed + 12 <= width:
            break
        columns = [c for c in columns if c.name != name]
    fixed = sum(c.width + 1 for c in columns if c.width)
    job = max(8, width - fixed)
    return [Column(c.name, c.title, job) if c.width == 0 else c for c in columns]


class RunsTable(ComponentStyles, ScrollView, can_focus=True):
    """All runs of all sources; filtering and sorting happen in the RunSet."""

    COMPONENT_CLASSES = {
        "runs-table--header",
        "runs-table--cursor",
        "runs-table--changed",
        "runs-table--marked",
        "runs-table--broken",
        "runs-table--dim",
        *(f"runs-table--status-{s.value}" for s in Status),
    }

    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("home,g", "edge(0)", "First", show=False, id="table.first"),
        Binding("end,G", "edge(1)", "Last", show=False, id="table.last"),
        Binding("space", "mark", "Mark", id="table.mark"),
    ]

    class CursorMoved(Message):
        """The selected run changed (or the same run changed underneath)."""

        def __init__(self, key: Key | None) -> None:
            super().__init__()
            self.key = key

    class RowsDrawn(Message):
        """The first data rows were drawn: the app may load the rest now."""

    def __init__(
        self,
        runs: RunSet,
        *,
        name: str | None = None,
        id: str | None = None,
        clock: Callable[[], float] = time.time,
        several: bool = False,
    ) -> None:
        super().__init__(name=name, id=id)
        self.runs = runs
        self.clock = clock
        self.several = several
        """Several sources are shown: keep the source column over others."""
        self.cursor_key: Key | None = None
        self._cursor = 0
        self._flash: dict[Key, float] = {}
        self._columns: list[Column] = layout(80, several=several)
        self._drawn = False

    # -- data ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick, name="runs-table tick")
        if len(self.runs):  # rows that arrived before the table: select the first
            self.reloaded()

    def on_resize(self, event: events.Resize) -> None:
        self._columns = layout(self.size.width, several=self.several)
        self._sync_size()

    def _sync_size(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.runs) + 1)

    def reloaded(self) -> None:
        """The order changed wholesale (first sync, filter, sort): keep the cursor
        on its run, or at the same height if the run is no longer shown."""
        self._sync_size()
        self._follow_cursor_key()
        self.refresh()

    def changed(self, keys: list[Key], *, moved: bool, flash: bool = True) -> None:
        """Rows changed in place (``moved`` False) or the order moved too."""
        if flash:
            deadline = time.monotonic() + FLASH_S
            for key in keys:
                self._flash[key] = deadline
        if moved:
            self.reloaded()
            return
        changed = set(keys)
        for y, key in self._visible():
            if key in changed:
                self.refresh_line(y + 1)
        if self.cursor_key in changed:
            self.post_message(self.CursorMoved(self.cursor_key))

    def _follow_cursor_key(self) -> None:
        index = self.runs.index_of(self.cursor_key) if self.cursor_key else None
        if index is None:
            index = min(self._cursor, max(0, len(self.runs) - 1))
            new_key = self.runs.key_at(index) if len(self.runs) else None
            if new_key != self.cursor_key:
                self.cursor_key = new_key
                self.post_message(self.CursorMoved(new_key))
        self._cursor = index
        self._scroll_to_cursor()

    def _visible(self) -> list[tuple[int, Key]]:
        """(row index, key) of the rows on screen."""
        top = int(self.scroll_offset.y)
        count = max(0, self.size.height - 1)
        end = min(len(self.runs), top + count)
        return [(i, self.runs.key_at(i)) for i in range(top, end)]

    def _tick(self) -> None:
        """Once a second: running durations tick and flashes fade, on screen only."""
        now = time.monotonic()
        for y, key in self._visible():
            row = self.runs.rows.get(key)
            expired = key in self._flash and self._flash[key] <= now
            if expired:
                del self._flash[key]
            if expired or (row is not None and row.status is Status.RUNNING):
                self.refresh_line(y + 1)
        if len(self._flash) > 10_000:
            self._flash = {k: d for k, d in self._flash.items() if d > now}

    # -- cursor --------------------------------------------------------------------

    def select_key(self, key: Key) -> bool:
        index = self.runs.index_of(key)
        if index is None:
            return False
        self._move_to(index)
        return True

    def _move_to(self, index: int) -> None:
        if not len(self.runs):
            return
        index = max(0, min(len(self.runs) - 1, index))
        old = self._cursor
        self._cursor = index
        key = self.runs.key_at(index)
        self._scroll_to_cursor()
        self.refresh_line(old - int(self.scroll_offset.y) + 1)
        self.refresh_line(index - int(self.scroll_offset.y) + 1)
        if key != self.cursor_key:
            self.cursor_key = key
            self.post_message(self.CursorMoved(key))

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        rows = max(1, self.size.height - 1)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
            self.refresh()
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, immediate=True)
            self.refresh()

    @property
    def cursor_index(self) -> int:
        return self._cursor

    def action_cursor(self, delta: int) -> None:
        self._move_to(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self._cursor + direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self._move_to(len(self.runs) - 1 if end else 0)

    def action_mark(self) -> None:
        if self.cursor_key is not None:
            self.runs.toggle_mark(self.cursor_key)
            self._move_to(self._cursor + 1)
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move_to(int(self.scroll_offset.y) + event.y - 1)

    # -- drawing -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._header(width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.runs):
            return Strip.blank(width, self.rich_style)
        key = self.runs.key_at(index)
        row = self.runs.rows[key]
        base = self.rich_style
        if key in self._flash and self._flash[key] > time.monotonic():
            base = base + self._style("runs-table--changed")
        if key in self.runs.marked:
            base = base + self._style("runs-table--marked")
        if index == self._cursor:
            base = base + self._style("runs-table--cursor")
        segments = self._cells(row, key, base)
        if not self._drawn:
            self._drawn = True
            # Posted from the table's own queue: a message made while the screen
            # renders counts the screen as its sender and stops bubbling there.
            self.call_later(self._post_rows_drawn)
        return Strip(segments).crop_extend(0, width, base)

    def _post_rows_drawn(self) -> None:
        self.post_message(self.RowsDrawn())

    def _header(self, width: int) -> Strip:
        style = self.rich_style + self._style("runs-table--header")
        sort = self.runs.sort
        arrow = "▲" if self.runs.reverse else "▼"
        cells = []
        for column in self._columns:
            title = column.title
            if _SORT_COLUMN.get(column.name) == sort:
                title += arrow
            cells.append(Segment(title[: column.width].ljust(column.width) + " ", style))
        return Strip(cells).crop_extend(0, width, style)

    def _cells(self, row: RunRow, key: Key, base: Style) -> list[Segment]:
        now = self.clock()
        segments: list[Segment] = []
        dim = base + self._style("runs-table--dim")
        for column in self._columns:
            style = base
            text = ""
            name = column.name
            if name == "mark":
                text = "●" if key in self.runs.marked else ("!" if key in self.runs.unseen else "")
                style = base + self._style("runs-table--status-failed") if text == "!" else base
            elif name == "status":
                text = f"{GLYPHS[row.status]} {row.status.value}"
                if row.aborting:
                    text = f"{GLYPHS[row.status]} aborting"
                style = base + self._style(f"runs-table--status-{row.status.value}")
            elif name == "id":
                text = clean(row.id)
            elif name == "source":
                text = clean(row.source)
                style = dim
            elif name == "job":
                if row.error:
                    text = clean(row.error)
                    style = base + self._style("runs-table--broken")
                else:
                    text = clean(row.job or row.label or "")
                    if row.archived:
                        text = "⌫ " + text
            elif name == "started":
                when = row.started_at or row.created_at
                text = ago(now - when) if when else "-"
                style = dim
            elif name == "duration":
                text = duration(row.elapsed_ms(now))
            elif name == "progress":
                text = progress_cell(row, column.width)
            elif name == "problem":
                text = clean(row.problem or "")
                style = base + self._style("runs-table--status-failed") if text else base
            if len(text) > column.width:
                text = text[: column.width - 1] + "…"
            segments.append(Segment(text.ljust(column.width) + " ", style))
        return segments
