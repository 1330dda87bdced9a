"""The log tail: a ScrollView indexed by sequence number.

Log and RichLog keep every line in memory (1M lines: +171 MB). Here the virtual
height is the run's line count and ``render_line`` asks a small LRU cache for the
seq on that row; a miss draws a placeholder and loads the window around the
viewport from the source. Opening a million-line log is one bounds query and one
window read; memory stays at the cache size whatever the log's length.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from jobwatch.core.format import log_line
from jobwatch.core.levels import LogLevel
from jobwatch.core.redact import clean
from jobwatch.sources.protocol import Source
from jobwatch.tui import keys
from jobwatch.tui.messages import SearchRequested
from jobwatch.tui.widgets.styles import ComponentStyles

if TYPE_CHECKING:
    from jobwatch.core import LogLine

CACHE_LINES = 4000
WINDOW = 400
"""Lines fetched around the viewport on a miss (a few screens either way)."""
POLL_BATCH = 2000
MAX_WIDTH = 2000
"""Longer lines are cut on screen (saved files keep them whole)."""
SAVE_CHUNK = 5000
_LEVEL_STYLE = {
    LogLevel.ERROR: "log-view--error",
    LogLevel.WARN: "log-view--warn",
    LogLevel.DEBUG: "log-view--debug",
}


class LogView(ComponentStyles, ScrollView, can_focus=True):
    """Follows a run's log; scroll up to pause, ``G``/End to follow again."""

    COMPONENT_CLASSES = {
        "log-view--error",
        "log-view--warn",
        "log-view--debug",
        "log-view--time",
        "log-view--match",
        "log-view--current",
        "log-view--note",
    }

    BINDINGS = keys.LOG

    run_id: var[str | None] = var(None)
    first: var[int] = var(1)
    last: var[int] = var(0)
    following: var[bool] = var(True)
    """Scrolled to the end and sticking there as lines arrive."""
    new_lines: var[int] = var(0)
    """Lines that arrived while paused."""
    wrap: var[bool] = var(False)
    timestamps: var[bool] = var(False)
    run_status: var[str | None] = var(None)
    """The selected run's status as its row shows it (the app keeps it current)."""

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.source: Source | None = None
        self.term: str | None = None
        self.match_seq: int | None = None
        self.search_from: int | None = None
        """The top line when ``/`` was pressed: the search box then takes rows from
        the view (a following view scrolls on), and the first match must be the
        first one the user could see, not the first below the shrunk view."""
        self.note: str | None = "select a run to see its log"
        self._cache: LRUCache[int, LogLine] = LRUCache(CACHE_LINES)
        self._loading: tuple[int, int] | None = None
        self._width = 0
        self._wrapped: tuple[tuple[int, int, int], list[tuple[int, str, bool]]] | None = None
        self._generation = 0

    # -- which run -----------------------------------------------------------------

    async def show_run(self, source: Source | None, run_id: str | None) -> None:
        """Open ``run_id``'s log at its end: one bounds query and one window read.

        Nothing is changed until both reads are done, so a call cancelled half-way
        (the cursor moved on) never leaves the view half-switched.
        """
        if source is self.source and run_id == self.run_id:
            return
        self._generation += 1
        generation = self._generation
        note: str | None = None
        first, last = 1, 0
        tail: list[LogLine] = []
        if source is None or run_id is None:
            note = "select a run to see its log"
        else:
            try:
                bounds = await source.log_bounds(run_id)
                if bounds.count:
                    first, last = bounds.first, bounds.last
                    tail = await source.log_tail(run_id, WINDOW)
                else:
                    note = source.capabilities.logs_note or "no log lines yet"
            except Exception as exc:
                note = f"logs unavailable: {clean(str(exc))}"
        if generation != self._generation:
            return  # a newer selection won
        self.source, self.run_id = source, run_id
        self._cache.clear()
        self._wrapped = None
        self._width = 0
        self.first, self.last = first, last
        self.following, self.new_lines = True, 0
        self.match_seq = None
        self.note = note
        self._store(tail)
        self._resize()
        self._stick()

    async def poll(self) -> None:
        """Fetch lines after the last one known (the monitor calls this each tick)."""
        if self.source is None or self.run_id is None:
            return
        generation = self._generation
        lines = await self.source.log_lines(self.run_id, self.last, POLL_BATCH)
        if not lines or generation != self._generation:
            return
        if self.last == 0:
            self.first = lines[0].seq
            self.note = None
        self._store(lines)
        added = lines[-1].seq - self.last
        self.last = lines[-1].seq
        self._wrapped = None
        self._resize()
        if self.following:
            self._stick()
        else:
            self.new_lines += added

    @property
    def count(self) -> int:
        return 0 if self.last == 0 else self.last - self.first + 1

    def _store(self, lines: list[LogLine]) -> None:
        for line in lines:
            self._cache.set(line.seq, line)
            self._width = max(self._width, min(MAX_WIDTH, len(line.text)))

    def _resize(self) -> None:
        extra = max(0, self.size.height - 1) if self.wrap else 0
        stamp = 13 if self.timestamps else 0
        width = self.size.width if self.wrap else max(self._width + stamp, self.size.width)
        self.virtual_size = Size(width, max(1, self.count + extra))
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._wrapped = None
        self._resize()
        if self.following:
            self._stick()

    # -- following -----------------------------------------------------------------

    def _stick(self) -> None:
        """Scroll to the end once the new virtual size has been laid out."""
        self.call_after_refresh(self._stick_now)

    def _stick_now(self) -> None:
        if self.wrap:
            self.scroll_to(y=self._wrapped_top_for_end(), animate=False, immediate=True)
        else:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        at_end = new_value >= self.max_scroll_y - 0.5 if not self.wrap else False
        if new_value < old_value and self.following:
            self.following = False
        elif at_end and not self.following:
            self.following, self.new_lines = True, 0  # scrolled back to the end: re-stick

    def action_follow(self) -> None:
        self.following, self.new_lines = True, 0
        self._stick()

    def action_pause(self) -> None:
        if self.following:
            self.following = False
        else:
            self.action_follow()

    def action_top(self) -> None:
        self.following = False
        self.scroll_to(y=0, animate=False)

    def action_scroll_lines(self, lines: int, pages: int = 0) -> None:
        delta = lines + pages * max(1, self.size.height - 1)
        self.scroll_to(y=max(0, self.scroll_y + delta), animate=False)

    def _update_title(self) -> None:
        """The one watcher of the state the title shows (run, count, following,
        new lines, wrap, times): whatever changes one of them, the title follows."""
        if self.run_id is None:
            self.border_title = "log"
            self.border_subtitle = ""
            return
        state = "following" if self.following else "paused"
        if not self.following and self.new_lines:
            state += f", {self.new_lines:,} new (G to follow)"
        flags = [f for f, on in (("wrap", self.wrap), ("times", self.timestamps)) if on]
        # A run id is outside text: a Text title is never read as markup.
        status = f" · {self.run_status}" if self.run_status else ""
        self.border_title = Text(f"log {clean(self.run_id or '')}{status} — {self.count:,} lines")
        self.border_subtitle = " · ".join([state, *flags])

    watch_run_id = watch_first = watch_last = watch_run_status = _update_title
    watch_following = watch_new_lines = watch_wrap = watch_timestamps = _update_title

    # -- search, errors, toggles ---------------------------------------------------

    def action_search(self) -> None:
        self.search_from = self.top_seq
        self.post_message(SearchRequested())

    def action_clear_search(self) -> None:
        """Esc in the log: forget the search (its highlights); never the table's filter."""
        self.search_from = None
        if self.term is not None or self.match_seq is not None:
            self.term = None
            self.match_seq = None
            self._wrapped = None
            self.refresh()

    async def search(self, term: str) -> None:
        """Find ``term`` from the top of the view as it was when ``/`` was pressed."""
        top = self.search_from if self.search_from is not None else self.top_seq
        self.search_from = None
        self.term = term.strip() or None
        self.match_seq = None
        self._wrapped = None
        self.refresh()
        if self.term:
            await self.find(1, start=top - 1)

    def action_find(self, direction: int) -> None:
        self.run_worker(self.find(direction), group="log-find", exclusive=True)

    async def find(self, direction: int, start: int | None = None) -> None:
        if not self.term or self.source is None or self.run_id is None:
            self.notify("nothing to search for: press / first", severity="warning")
            return
        if start is None:
            start = self.match_seq if self.match_seq is not None else self.top_seq - 1
        seq = await self.source.log_find(
            self.run_id, self.term, start=start, backwards=direction < 0
        )
        wrapped = False
        if seq is None:  # wrap around once, like less and vim
            edge = 0 if direction > 0 else self.last + 1
            seq = await self.source.log_find(
                self.run_id, self.term, start=edge, backwards=direction < 0
            )
            wrapped = seq is not None
        if seq is None:
            self.notify(f"no match for {clean(self.term)!r}", severity="warning")
            return
        self.match_seq = seq
        self.jump_to(seq)
        if wrapped:
            self.notify("search wrapped around", timeout=2)

    def action_first_error(self) -> None:
        self.run_worker(self._first_error(), group="log-find", exclusive=True)

    async def _first_error(self) -> None:
        if self.source is None or self.run_id is None:
            return
        seq = await self.source.first_error(self.run_id)
        if seq is None:
            self.notify("no error lines in this log")
            return
        self.match_seq = seq
        self.jump_to(seq)

    def jump_to(self, seq: int) -> None:
        """Show ``seq`` a few lines below the top (context above), and pause."""
        self.following = False
        self._wrapped = None
        self.scroll_to(y=max(0, seq - self.first - 3), animate=False, immediate=True)
        self.refresh()

    @property
    def top_seq(self) -> int:
        return self.first + int(self.scroll_y)

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self._wrapped = None
        self._resize()
        if self.following:
            self._stick()

    def action_toggle_time(self) -> None:
        self.timestamps = not self.timestamps
        self._wrapped = None
        self._resize()

    def action_save(self) -> None:
        if self.source is None or self.run_id is None:
            return
        self.save(Path.cwd() / self.save_name())

    def save_name(self) -> str:
        """``jobwatch-<run id>.log`` with anything but letters, digits, ``.``, ``_``
        and ``-`` replaced: a run id from outside must not steer the path."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.run_id or "log")
        return f"jobwatch-{safe}.log"

    @work(group="log-save", exclusive=True, exit_on_error=False)
    async def save(self, path: Path) -> Path | None:
        """Stream the whole log to ``path`` in chunks, redacted and sanitized."""
        source, run_id = self.source, self.run_id
        if source is None or run_id is None:
            return None
        after, written = 0, 0
        try:
            with path.open("w", encoding="utf-8") as out:
                while True:
                    lines = await source.log_lines(run_id, after, SAVE_CHUNK)
                    for line in lines:
                        out.write(log_line(line, timestamps=True) + "\n")
                    written += len(lines)
                    if len(lines) < SAVE_CHUNK:
                        break
                    after = lines[-1].seq
                    await asyncio.sleep(0)
        except Exception as exc:
            self.notify(f"could not save log: {clean(str(exc))}", severity="error")
            return None
        self.notify(f"saved {written:,} lines to {path}")
        return path

    # -- loading windows -----------------------------------------------------------

    def _want(self, seq: int) -> None:
        """A cache miss at ``seq``: load the window around the viewport, once."""
        if self._loading is not None and self._loading[0] <= seq <= self._loading[1]:
            return
        start = max(self.first - 1, seq - WINDOW // 2)
        self._loading = (start + 1, start + WINDOW)
        self.run_worker(self._load(start, self._generation), group="log-window", exclusive=True)

    async def _load(self, after: int, generation: int) -> None:
        if self.source is None or self.run_id is None:
            return
        try:
            lines = await self.source.log_lines(self.run_id, after, WINDOW)
        finally:
            self._loading = None
        if generation == self._generation:
            self._store(lines)
            self._wrapped = None
            self.refresh()

    # -- drawing -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.note and self.count == 0:
            if y == 0:
                note = Segment(self.note, base + self._style("log-view--note"))
                return Strip([note]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        if self.wrap:
            return self._render_wrapped(y, width, base)
        seq = self.first + int(self.scroll_y) + y
        if seq > self.last:
            return Strip.blank(width, base)
        line = self._cache.get(seq)
        if line is None:
            self._want(seq)
            return Strip([Segment("…", base + self._style("log-view--note"))]).crop_extend(
                0, width, base
            )
        segments = self._segments(line, clean(line.text), base, first_piece=True)
        x = int(self.scroll_x)
        return Strip(segments).crop_extend(x, x + width, base)

    def _prefix(self, line: LogLine) -> str:
        return line.ts.strftime("%H:%M:%S.%f")[:-3] + " " if self.timestamps else ""

    def _line_style(self, line: LogLine, base: Style) -> Style:
        level = _LEVEL_STYLE.get(line.level)
        if level is not None:
            base = base + self._style(level)
        if line.seq == self.match_seq:
            base = base + self._style("log-view--current")
        return base

    def _segments(
        self, line: LogLine, text: str, base: Style, *, first_piece: bool
    ) -> list[Segment]:
        style = self._line_style(line, base)
        segments: list[Segment] = []
        if first_piece and self.timestamps:
            segments.append(Segment(self._prefix(line), base + self._style("log-view--time")))
        elif self.timestamps:
            segments.append(Segment(" " * len(self._prefix(line)), base))
        if not self.term:
            segments.append(Segment(text[:MAX_WIDTH], style))
            return segments
        match = style + self._style("log-view--match")
        lower, term = text.lower(), self.term.lower()
        pos = 0
        while (hit := lower.find(term, pos)) >= 0:
            segments.append(Segment(text[pos:hit], style))
            segments.append(Segment(text[hit : hit + len(term)], match))
            pos = hit + len(term)
        segments.append(Segment(text[pos:MAX_WIDTH], style))
        return segments

    def _wrap_pieces(self, line: LogLine, width: int) -> list[str]:
        room = max(8, width - len(self._prefix(line)))
        text = clean(line.text)[:MAX_WIDTH]
        return [text[i : i + room] for i in range(0, len(text), room)] or [""]

    def _wrapped_top_for_end(self) -> int:
        """The top row (as seq offset) that puts the last line at the bottom."""
        width, height = self.size.width, max(1, self.size.height)
        used, seq = 0, self.last
        while seq >= self.first:
            line = self._cache.get(seq)
            pieces = len(self._wrap_pieces(line, width)) if line else 1
            if used + pieces > height:
                break
            used += pieces
            seq -= 1
        return max(0, seq + 1 - self.first)

    def _render_wrapped(self, y: int, width: int, base: Style) -> Strip:
        """Wrap forward from the top seq; only the lines on screen are wrapped."""
        key = (int(self.scroll_y), width, self.size.height)
        if self._wrapped is None or self._wrapped[0] != key:
            rows: list[tuple[int, str, bool]] = []
            seq = self.first + key[0]
            while len(rows) < self.size.height and seq <= self.last:
                line = self._cache.get(seq)
                if line is None:
                    self._want(seq)
                    rows.append((seq, "…", True))
                else:
                    pieces = self._wrap_pieces(line, width)
                    rows += [(seq, piece, i == 0) for i, piece in enumerate(pieces)]
                seq += 1
            self._wrapped = (key, rows)
        rows = self._wrapped[1]
        if y >= len(rows):
            return Strip.blank(width, base)
        seq, piece, first_piece = rows[y]
        line = self._cache.get(seq)
        if line is None:
            return Strip([Segment(piece, base)]).crop_extend(0, width, base)
        return Strip(self._segments(line, piece, base, first_piece=first_piece)).crop_extend(
            0, width, base
        )
