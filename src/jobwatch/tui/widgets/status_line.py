"""The one-line status bar: what changes what you see comes first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from jobwatch.core import Status
from jobwatch.core.format import GLYPHS
from jobwatch.core.redact import clean
from jobwatch.sources.health import SourceHealth


@dataclass(frozen=True, slots=True)
class StatusState:
    """Everything the line shows, gathered by the app from the poller and the table."""

    flags: Sequence[str]
    health: Mapping[str, SourceHealth]
    unseen: int
    counts: Mapping[Status, int]
    last_poll: datetime | None
    refresh: float
    unreadable: int = 0
    """Records the sources could not read (error rows), counted apart from statuses."""


class StatusLine(Static):
    """Flags and failing sources first (they change what you see), then unseen
    failures, counts, the healthy sources and the last poll: an 80-column line
    cuts the end."""

    def show(self, state: StatusState, colors: Mapping[str, str]) -> None:
        text = Text()
        if state.flags:
            text.append(" · ".join(clean(f) for f in state.flags) + " │ ", style="bold")
        for name, health in state.health.items():
            if not health.ok:
                text.append(f"[{clean(name)}: {health.describe()}]", style="bold reverse")
                text.append(" ")
        if state.unseen:
            text.append(f"! {state.unseen} unseen ", style="bold reverse")
            text.append(" ")
        if state.unreadable:
            text.append(f"! {state.unreadable:,} unreadable  ", style="bold")
        for status in Status:
            count = state.counts.get(status, 0)
            if count:
                color = colors.get(f"status-{status.value}")
                text.append(f"{GLYPHS[status]} {count:,} {status.value}  ", style=color or "")
        for name, health in state.health.items():
            if health.ok:
                text.append(f"[{clean(name)}: ok] ")
        if state.last_poll:
            text.append(f"{state.last_poll:%H:%M:%S} /{state.refresh:g}s")
        self.update(text, layout=False)  # one line of a fixed height: no relayout
