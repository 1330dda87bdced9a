"""The one-line status bar: the counts first, then how the sources are doing.

The line is made of parts, each with a rank: when the terminal is narrow the
lowest-ranked parts go first and the counts go last (in their short form first),
so a stale source's long error message can never push the counts off the line
(it did at 100 columns). The error itself is on the sources screen (``h``); the
line says "5 sources, 1 stale" and counts the retry down live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

from jobwatch.core import Status
from jobwatch.core.format import GLYPHS
from jobwatch.core.redact import clean
from jobwatch.sources.health import SourceHealth

SEPARATOR = " │ "
KEPT = 2
"""Parts of this rank or more important (counts, unseen, health, flags) are all
shortened before any of them is dropped."""


@dataclass(frozen=True, slots=True)
class StatusState:
    """Everything the line shows, gathered by the app from the poller and the table."""

    flags: Sequence[str]
    health: Mapping[str, SourceHealth]
    unseen: int
    counts: Mapping[Status, int]
    last_poll: datetime | None
    refresh: float
    retry: Mapping[str, float | None] = field(default_factory=dict)
    """Seconds until each failing source is tried again, read when the line is drawn."""
    notes: Sequence[str] = ()
    """Short parts other pieces of the monitor add ("3 marked", "↑ 12 new")."""
    unreadable: int = 0
    """Records the sources could not read (error rows), counted apart from statuses."""
    late: int = 0
    """Scheduled jobs with no run started by their expected time plus grace."""


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of the line: ``rank`` 0 is kept longest; ``short`` replaces
    ``text`` before the part is dropped."""

    rank: int
    text: Text
    short: Text | None = None


def retry_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return "retrying" if seconds <= 0 else f"retry in {math.ceil(seconds)}s"


def health_parts(state: StatusState) -> list[Part]:
    """ "5 sources, 1 stale (served, retry in 8s)", then the first error as the
    least important part of the line."""
    health = state.health
    if not health:
        return []
    stale = [n for n, h in health.items() if not h.ok and h.stale]
    waiting = [n for n, h in health.items() if not h.ok and not h.stale]
    several = len(health) > 1
    if not stale:
        what = f"{len(health)} sources" if several else clean(next(iter(health)))
        state_word = "connecting" if waiting else "ok"
        return [Part(2, Text(f"{what} {state_word}" if several else f"{what}: {state_word}"))]
    first = stale[0]
    retry = retry_text(state.retry.get(first))
    detail = ", ".join(p for p in (clean(first) if several else "", retry) if p)
    head = f"{len(health)} sources, {len(stale)} stale" if several else f"{clean(first)}: stale"
    long = Text(head + (f" ({detail})" if detail else ""), style="bold reverse")
    parts = [Part(1, long, Text(head, style="bold reverse"))]
    error = health[first].error
    if error:
        parts.append(Part(9, Text(clean(error), style="italic")))
    return parts


def count_parts(state: StatusState, colors: Mapping[str, str]) -> Part:
    long, short = Text(), Text()
    for status in Status:
        n = state.counts.get(status, 0)
        if n:
            style = colors.get(f"status-{status.value}") or ""
            long.append(f"{GLYPHS[status]} {n:,} {status.value}  ", style=style)
            short.append(f"{GLYPHS[status]}{n:,} ", style=style)
    long.rstrip()
    short.rstrip()
    return Part(0, long, short)


def parts_of(state: StatusState, colors: Mapping[str, str]) -> list[Part]:
    """The parts in the order they are shown."""
    parts = [count_parts(state, colors)]
    if state.unseen:
        parts.append(Part(1, Text(f"! {state.unseen} unseen", style="bold reverse")))
    if state.late:
        word = "job" if state.late == 1 else "jobs"
        parts.append(
            Part(1, Text(f"{state.late} {word} late", style="bold"), Text(f"{state.late} late"))
        )
    if state.unreadable:
        parts.append(Part(1, Text(f"! {state.unreadable:,} unreadable", style="bold")))
    parts += [p for p in health_parts(state) if p.rank < 9]
    parts += [Part(2, Text(clean(note), style="bold")) for note in state.notes]
    if state.flags:
        flags = " · ".join(clean(f) for f in state.flags)
        short = flags if len(flags) <= 24 else flags[:23] + "…"
        parts.append(Part(2, Text(flags, style="bold"), Text(short, style="bold")))
    if state.last_poll:
        parts.append(Part(5, Text(f"{state.last_poll:%H:%M:%S} /{state.refresh:g}s")))
    parts += [p for p in health_parts(state) if p.rank >= 9]
    return [p for p in parts if p.text.plain]


def fit(parts: list[Part], width: int) -> Text:
    """The line within ``width`` cells: the least important parts are shortened and
    dropped first, the important ones (rank up to :data:`KEPT`) all shortened before
    one is dropped, the counts never; what is still too wide is cut with an ellipsis."""
    texts = [p.text for p in parts]

    def total() -> int:
        shown = [t for t in texts if t.plain]
        return sum(cell_len(t.plain) for t in shown) + cell_len(SEPARATOR) * (len(shown) - 1)

    order = sorted(range(len(parts)), key=lambda i: (-parts[i].rank, -i))
    steps = [(i, step) for i in order for step in ("short", "drop")]
    steps = [(i, st) for i, st in steps if st == "short" or parts[i].rank > KEPT]
    steps += [(i, "drop") for i in order if 0 < parts[i].rank <= KEPT]
    for i, step in steps:
        if total() <= width:
            break
        short = parts[i].short
        if step == "drop":
            texts[i] = Text()
        elif short is not None and cell_len(short.plain) < cell_len(texts[i].plain):
            texts[i] = short
    shown = [t for t in texts if t.plain]
    line = Text(SEPARATOR).join(shown)
    if cell_len(line.plain) > width:
        line.truncate(max(1, width), overflow="ellipsis")
    return line


class StatusLine(Static):
    """Counts, unseen failures, source health, notes, flags and the last poll,
    fitted to the width at every draw."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._parts: list[Part] = []

    def show(self, state: StatusState, colors: Mapping[str, str]) -> None:
        self._parts = parts_of(state, colors)
        self._draw()

    def _draw(self) -> None:
        width = self.content_size.width or 10_000
        self.update(fit(self._parts, width), layout=False)  # one line: no relayout

    def on_resize(self, event: events.Resize) -> None:
        self._draw()
