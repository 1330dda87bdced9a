"""The runs table: a ScrollView that renders only the rows on screen.

The stock DataTable builds every row up front (about 16 s for 100k rows); here
``render_line`` draws a row from the headless :class:`~jobwatch.tui.table_model.runset.RunSet` when
Textual asks for it, so cost follows the terminal's height, not the table's size.
The cursor is a run key, not a position, so it stays on its run when rows move.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from jobwatch.core import RunRow, Status, columns
from jobwatch.core.columns import Cell, Column, Mode
from jobwatch.tui import keys
from jobwatch.tui.messages import CursorMoved, RowsDrawn
from jobwatch.tui.table_model.runset import Key, RunSet
from jobwatch.tui.widgets.styles import ComponentStyles

FLASH_S = 2.0
"""How long a changed row stays highlighted."""


MARK = 1
"""The mark column (``●`` marked, ``!`` unseen failure): the table's own, not a
column of runs, so it is not in the registry."""
_STYLE = {
    "dim": "runs-table--dim",
    "broken": "runs-table--broken",
    "problem": "runs-table--status-failed",
    **{f"status-{s.value}": f"runs-table--status-{s.value}" for s in Status},
}


def layout(width: int, *, several: bool = False) -> list[tuple[Column, int]]:
    """The registry's columns that fit ``width`` cells, after the mark."""
    return columns.layout(width, several=several, reserved=MARK + columns.GAP)


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

    BINDINGS = keys.TABLE

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
        self._columns = layout(80, several=several)
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
            self.post_message(CursorMoved(self.cursor_key))

    def _follow_cursor_key(self) -> None:
        index = self.runs.index_of(self.cursor_key) if self.cursor_key else None
        if index is None:
            index = min(self._cursor, max(0, len(self.runs) - 1))
            new_key = self.runs.key_at(index) if len(self.runs) else None
            if new_key != self.cursor_key:
                self.cursor_key = new_key
                self.post_message(CursorMoved(new_key))
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
            self.post_message(CursorMoved(key))

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
        row = self.runs.rows.get(key)
        self.runs.want(index)
        if row is None:  # a windowed set is still reading it from the store
            return Strip([Segment(" " * (MARK + columns.GAP) + "…", self.rich_style)]).crop_extend(
                0, width, self.rich_style
            )
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
        self.post_message(RowsDrawn())

    def _header(self, width: int) -> Strip:
        style = self.rich_style + self._style("runs-table--header")
        arrow = "▲" if self.runs.reverse else "▼"
        cells = [Segment(" " * (MARK + columns.GAP), style)]
        for column, cells_wide in self._columns:
            title = column.header + (arrow if column.name == self.runs.sort else "")
            cells.append(Segment(columns.fit(title, cells_wide) + " ", style))
        return Strip(cells).crop_extend(0, width, style)

    def _cells(self, row: RunRow, key: Key, base: Style) -> list[Segment]:
        mark = "●" if key in self.runs.marked else ("!" if key in self.runs.unseen else "")
        mark_style = base + self._style("runs-table--status-failed") if mark == "!" else base
        segments = [Segment(columns.fit(mark, MARK) + " ", mark_style)]
        now = self.clock()
        for column, width in self._columns:
            text = column.text(row, Cell(now, Mode.TABLE, width))
            style = base
            name = column.style(row) if column.style is not None else None
            if name is not None and (text or name.startswith("status-")):
                style = base + self._style(_STYLE[name])
            segments.append(Segment(columns.fit(text, width) + " ", style))
        return segments
