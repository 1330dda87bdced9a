"""The runs table: a ScrollView that renders only the rows on screen.

The stock DataTable builds every row up front (about 16 s for 100k rows); here
``render_line`` draws a row from the headless :class:`~jobwatch.tui.table_model.runset.RunSet` when
Textual asks for it, so cost follows the terminal's height, not the table's size.
The cursor is a run key, not a position, so it stays on its run when rows move
(but see :class:`RunsTable` for the two exceptions: following the newest, and a
selected run that leaves the screen because it changed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from jobwatch.core import FAULTS, RunRow, Status, columns
from jobwatch.core.columns import Cell, Column, Mode
from jobwatch.tui import keys
from jobwatch.tui.messages import CursorMoved, MarksChanged, RowsDrawn
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
    "notice": "runs-table--status-paused",
    **{f"status-{s.value}": f"runs-table--status-{s.value}" for s in Status},
}


def layout(
    width: int, *, several: bool = False, names: Sequence[str] | None = None
) -> list[tuple[Column, int]]:
    """The registry's columns (``names``, else the default ones) that fit ``width``
    cells, after the mark."""
    chosen = [columns.BY_NAME[n] for n in names if n in columns.BY_NAME] if names else None
    return columns.layout(width, several=several, columns=chosen, reserved=MARK + columns.GAP)


class RunsTable(ComponentStyles, ScrollView, can_focus=True):
    """All runs of all sources; filtering and sorting happen in the RunSet.

    Where the cursor goes when a poll changes the rows under it:

    * **Following.** While the cursor is on the first row it stays on the first
      row: newer runs arriving above are selected as they come (``g`` or ``home``
      goes back there and follows again).
    * **Moved away.** Once the user moved, the cursor stays on its run and the
      viewport moves with it, so the rows on screen do not slide while one reads
      them; the border counts the newer rows that arrived above ("↑ 12 new").
    * **The selected run moved itself** (its status changed while sorted by
      status, or its end while sorted by last change): if its new place is on the
      screen the cursor goes with it; if not, the cursor keeps its row and selects
      the run now there. Following the run would drag the view hundreds of rows
      away from what was being watched (a running run that succeeds lands among
      the succeeded ones, row 720) and nothing on screen would say why; kept in
      place, the screen stays put and the run's change was already shown.

    A change the user made (sort, filter, faults, archived) keeps the cursor on
    its run wherever it goes, or on the same row when the run is no longer shown.
    """

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

    following: var[bool] = var(True)
    """The cursor is on the first row and stays there as newer runs arrive."""
    new_above: var[int] = var(0)
    """Rows that arrived above the cursor since it last followed the first row."""

    def __init__(
        self,
        runs: RunSet,
        *,
        name: str | None = None,
        id: str | None = None,
        clock: Callable[[], float] = time.time,
        several: bool = False,
        column_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.runs = runs
        self.clock = clock
        self.several = several
        """Several sources are shown: keep the source column over others."""
        self.cursor_key: Key | None = None
        self._cursor = 0
        self._flash: dict[Key, float] = {}
        self.column_names: list[str] | None = list(column_names) if column_names else None
        """The columns chosen (the column chooser, the config's ``columns``)."""
        self._columns = layout(80, several=several, names=self.column_names)
        self._drawn = False
        self._titles: tuple[str, str] = ("", "")
        self.slow: Callable[[RunRow], str | None] | None = None
        """Set by the app: the triage index's slow mark for a row."""

    # -- data ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.slow = getattr(self.app, "slow_of", None)
        self.set_interval(1.0, self._tick, name="runs-table tick")
        if len(self.runs):  # rows that arrived before the table: select the first
            self.reloaded()

    def on_resize(self, event: events.Resize) -> None:
        self._columns = layout(self.size.width, several=self.several, names=self.column_names)
        self._sync_size()
        self.update_titles()

    def show_columns(self, names: Sequence[str] | None) -> None:
        """Draw ``names`` (registry order kept by the caller), or the defaults."""
        self.column_names = list(names) if names else None
        self._columns = layout(self.size.width, several=self.several, names=self.column_names)
        self.refresh()

    @property
    def columns_shown(self) -> list[str]:
        """The columns chosen, whether or not this width has room for all."""
        if self.column_names:
            return list(self.column_names)
        return [c.name for c in columns.COLUMNS if c.shown]

    def _sync_size(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.runs) + 1)

    def reloaded(self) -> None:
        """The order changed wholesale (first sync, filter, sort): keep the cursor
        on its run, or at the same height if the run is no longer shown."""
        self._sync_size()
        index = self.runs.index_of(self.cursor_key) if self.cursor_key else None
        self._select(self._cursor if index is None else index)
        self.following = self._cursor == 0
        self.new_above = 0
        self.refresh()
        self.update_titles()

    def changed(
        self, keys: list[Key], *, moved: bool, flash: bool = True, arrived: Sequence[Key] = ()
    ) -> None:
        """Rows changed in place (``moved`` False) or the order moved too;
        ``arrived`` are the keys among them that are new to the table."""
        if flash:
            deadline = time.monotonic() + FLASH_S
            for key in keys:
                self._flash[key] = deadline
        changed = set(keys)
        if moved:
            self._sync_size()
            self._place(changed)
            self._count_arrived(arrived)
            self.refresh()
        else:
            for y, key in self._visible():
                if key in changed:
                    self.refresh_line(y + 1)
        if self.cursor_key in changed:  # the detail pane follows the row's change
            self.post_message(CursorMoved(self.cursor_key, user=False))
        self.update_titles()

    def _place(self, changed: set[Key]) -> None:
        """After a poll moved rows: where the cursor goes (see the class docstring)."""
        if self.following:
            self._select(0, top=0)
            return
        key, top = self.cursor_key, int(self.scroll_offset.y)
        index = self.runs.index_of(key) if key is not None else None
        if index is None:  # no longer shown: the same row
            self._select(self._cursor, top=top)
        elif key in changed and self.runs.relocated(key):
            on_screen = top <= index < top + self._rows_on_screen()
            self._select(index if on_screen else self._cursor, top=top)
        else:  # shifted by rows above it: the view shifts along
            self._select(index, top=top + index - self._cursor)

    def _select(self, index: int, *, top: int | None = None) -> None:
        """Put the cursor on row ``index`` (scrolled to ``top`` if given, and in
        view either way) and announce a new selection."""
        count = len(self.runs)
        self._cursor = max(0, min(count - 1, index))
        if top is not None:
            self.scroll_to(y=max(0, top), animate=False, immediate=True, force=True)
        self._scroll_to_cursor()
        new_key = self.runs.key_at(self._cursor) if count else None
        if new_key != self.cursor_key:
            self.cursor_key = new_key
            self.post_message(CursorMoved(new_key, user=False))

    def _count_arrived(self, arrived: Sequence[Key]) -> None:
        if self.following or not arrived:
            return
        cursor, index_of = self._cursor, self.runs.index_of
        self.new_above += sum(1 for k in arrived if (i := index_of(k)) is not None and i < cursor)

    def _rows_on_screen(self) -> int:
        return max(1, self.size.height - 1)

    @property
    def new_count(self) -> int:
        """The "↑ N new" shown: arrivals above the cursor, at most the rows above it."""
        return 0 if self.following else min(self.new_above, self._cursor)

    def update_titles(self) -> None:
        """The border: newer rows above and a sort the header cannot show (title);
        the filter's match count (subtitle). Set only when they change: setting a
        title redraws the whole table."""
        parts = []
        if self.new_count:
            parts.append(f"↑ {self.new_count:,} new (g: top)")
        if all(c.name != self.runs.sort for c, _ in self._columns):
            column = columns.BY_NAME[self.runs.sort]
            parts.append(f"sort: {column.header.lower()} {'▲' if self.runs.reverse else '▼'}")
        titles = (" · ".join(parts), self.runs.match_text() or "")
        if titles != self._titles:
            self._titles = titles
            self.border_title, self.border_subtitle = titles

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
        """The user moved the cursor: on the first row it follows the newest again."""
        if not len(self.runs):
            return
        index = max(0, min(len(self.runs) - 1, index))
        old = self._cursor
        self._cursor = index
        key = self.runs.key_at(index)
        self._scroll_to_cursor()
        self.refresh_line(old - int(self.scroll_offset.y) + 1)
        self.refresh_line(index - int(self.scroll_offset.y) + 1)
        self.following = index == 0
        if self.following:
            self.new_above = 0
        self.update_titles()
        if key != self.cursor_key:
            self.cursor_key = key
            self.post_message(CursorMoved(key))

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        rows = max(1, self.size.height - 1)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True, force=True)
            self.refresh()
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, immediate=True, force=True)
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

    def action_next_fault(self, direction: int) -> None:
        """To the next (1) or previous (-1) failed, timed-out or lost run shown."""
        index = self._cursor + direction
        while 0 <= index < len(self.runs):  # at most one pass over the table
            if self.runs.row_at(index).status in FAULTS:
                self._move_to(index)
                return
            index += direction
        self.app.notify(f"no failure {'below' if direction > 0 else 'above'}", timeout=1.5)

    def action_mark(self) -> None:
        if self.cursor_key is not None:
            self.runs.toggle_mark(self.cursor_key)
            self._move_to(self._cursor + 1)
            self.refresh()
            self.post_message(MarksChanged())

    def action_mark_all(self) -> None:
        """Mark every run the table shows (under the current filter)."""
        self.runs.mark_visible()
        self.refresh()
        self.post_message(MarksChanged())

    def on_click(self, event: events.Click) -> None:
        # Content rows, not widget rows: the border is above the header line.
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self._move_to(int(self.scroll_offset.y) + offset.y - 1)

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
        segments = self._cells(row, key, base, selected=index == self._cursor)
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

    def _cells(self, row: RunRow, key: Key, base: Style, *, selected: bool) -> list[Segment]:
        """The selected row keeps the cursor's one colour pair (chosen per theme for
        contrast, see ``row-cursor`` in theming): a status colour on the cursor's
        background can vanish, above all with 16 colours. Glyphs and words still
        say the status."""
        mark = "●" if key in self.runs.marked else ("!" if key in self.runs.unseen else "")
        mark_style = base
        if mark == "!" and not selected:
            mark_style = base + self._style("runs-table--status-failed")
        segments = [Segment(columns.fit(mark, MARK) + " ", mark_style)]
        now = self.clock()
        for column, width in self._columns:
            text = column.text(row, Cell(now, Mode.TABLE, width, self.slow))
            style = base
            name = column.style(row) if column.style is not None else None
            if name is not None and not selected and (text or name.startswith("status-")):
                style = base + self._style(_STYLE[name])
            segments.append(Segment(columns.fit(text, width) + " ", style))
        return segments
