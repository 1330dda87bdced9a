"""The sources screen (``h``): each source's kind, last poll, state, last error and
a live retry countdown, where the status line only has room for "1 stale"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobwatch.core.redact import clean
from jobwatch.sources.poller import Feed
from jobwatch.sources.protocol import Source
from jobwatch.tui import keys

REDRAW_S = 1.0


def kind_of(source: Source) -> str:
    """The ``kind`` a config file would give this source."""
    kind = getattr(type(source), "KIND", "")
    if isinstance(kind, str) and kind:
        return kind
    from jobwatch.sources.http.client import HttpSource
    from jobwatch.sources.local import SqliteStore

    if isinstance(source, SqliteStore):
        return "sqlite"
    if isinstance(source, HttpSource):
        return "jobwatch"
    return type(source).__name__


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{int(seconds)}s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)}m ago"
    return f"{int(seconds // 3600)}h ago"


def _at(when: datetime | None) -> str:
    return f"{when.astimezone():%H:%M:%S}" if when is not None else "—"


def sources_table(feeds: Sequence[Feed], now: float) -> Table:
    """One row per source; ``now`` is the poller's clock (its feeds' times)."""
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    for name, ratio in (("source", 2), ("kind", 1), ("state", 2), ("last poll", 1)):
        table.add_column(name, ratio=ratio, no_wrap=True)
    table.add_column("retry", ratio=1, no_wrap=True)
    table.add_column("last error", ratio=5)
    for feed in feeds:
        health = feed.health
        if health.ok:
            state = Text("ok", style="bold")
        elif health.stale:
            state = Text(f"stale since {_at(health.stale_since)}", style="bold reverse")
        else:
            state = Text("not polled yet")
        wait = feed.tracker.wait()
        retry = "" if wait is None else ("now" if wait <= 0 else f"in {math.ceil(wait)}s")
        polled = None if feed.last_poll is None else now - feed.last_poll
        table.add_row(
            clean(feed.name),
            clean(kind_of(feed.source)),
            state,
            _ago(polled),
            retry,
            Text(clean(health.error or ""), style="italic"),
        )
    return table


class SourcesScreen(ModalScreen[None]):
    """Redrawn every second while open, so the countdown and "ago" are live."""

    BINDINGS = keys.SOURCES

    def __init__(self, feeds: Sequence[Feed], clock: Callable[[], float]) -> None:
        super().__init__()
        self._feeds = feeds
        self._clock = clock

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="sources-box") as box:
            box.border_title = "sources (Esc to close)"
            yield Static(self.table(), id="sources-table")

    def table(self) -> Table:
        return sources_table(self._feeds, self._clock())

    def on_mount(self) -> None:
        self.set_interval(REDRAW_S, self.redraw)

    def redraw(self) -> None:
        self.query_one("#sources-table", Static).update(self.table())
