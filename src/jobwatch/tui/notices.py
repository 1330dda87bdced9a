"""What the monitor says when runs fail (or go stuck): one summary toast and a
rate-limited bell.

A toast per failure flooded an 80x24 screen (23 toasts and 14 bells in 30 s of the
demo, covering half the rows). Failures are summed up in one short toast instead
("5 runs failed: nightly x3, sync x2", with a times sign), replaced in place as more arrive, and the
bell rings at most once per :data:`BELL_EVERY_S`. Headless: no Textual here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from jobwatch.core import RunRow
from jobwatch.core.format import GLYPHS
from jobwatch.core.redact import clean

BELL_EVERY_S = 10.0
FAILURE_TOAST_S = 10.0
"""How long the failure summary stays up (``x`` dismisses it at once)."""
TIMES = "\N{MULTIPLICATION SIGN}"
LINE = 36
"""Cells of one toast line at 80 columns (a toast is at most half the screen)."""


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(rows: Sequence[RunRow]) -> tuple[str, str]:
    """(title, message) of the failure toast, each one short line.

    One run: its glyph, job and id, then its problem. Several: how many, and the
    jobs they belong to, most first (``nightly x3, sync x2, +4 more``)."""
    if len(rows) == 1:
        row = rows[0]
        what = clean(row.job or row.label or "") or "run"
        word = "stuck" if row.stuck else row.status.value
        title = _cut(f"{GLYPHS[row.status]} {what} {word}", LINE)
        problem = f" — {clean(row.problem)}" if row.problem else ""
        return title, _cut(f"{clean(row.id)}{problem}", 2 * LINE)
    jobs = Counter(clean(r.job or r.label or "") or "?" for r in rows)
    parts: list[str] = []
    for n, (job, count) in enumerate(jobs.most_common()):
        part = f"{_cut(job, 16)} {TIMES}{count}" if count > 1 else _cut(job, 16)
        rest = len(jobs) - n - 1
        tail = f", +{rest} more" if rest else ""
        if parts and len(", ".join([*parts, part])) + len(tail) > LINE:
            parts.append(f"+{len(jobs) - n} more")
            break
        parts.append(part)
    stuck = sum(1 for r in rows if r.stuck)
    word = "stuck" if stuck == len(rows) else "failed or stuck" if stuck else "failed"
    return f"{len(rows)} runs {word}", ", ".join(parts)


def summary_text(rows: Sequence[RunRow]) -> str:
    title, message = summary(rows)
    return f"{title}: {message}"


@dataclass
class Bell:
    """Rings at most once per ``every`` seconds of the app's (injectable) clock."""

    every: float = BELL_EVERY_S
    last: float | None = None
    rung: int = 0

    def due(self, now: float) -> bool:
        """Whether to ring now; counts the ring when it is."""
        if self.last is not None and now - self.last < self.every:
            return False
        self.last = now
        self.rung += 1
        return True
