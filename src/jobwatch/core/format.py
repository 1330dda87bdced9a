"""Text for runs that every front end shares: glyphs, durations, ages, the redacted
JSON of a run and a log line.

Everything that leaves through these helpers is redacted and stripped of control
sequences first (:mod:`jobwatch.core.redact`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobwatch.core import Status, utcnow
from jobwatch.core.redact import clean, redact

if TYPE_CHECKING:
    from jobwatch.core import LogLine, Run

GLYPHS: dict[Status, str] = {
    Status.NEW: "○",
    Status.QUEUED: "◌",
    Status.RUNNING: "▶",
    Status.PAUSED: "‖",
    Status.SUCCEEDED: "✓",
    Status.FAILED: "✗",
    Status.ABORTED: "■",
    Status.TIMED_OUT: "◷",
    Status.UNKNOWN: "?",
}


def run_json(run: Run) -> dict[str, Any]:
    """The normalized model as JSON-ready data, redacted and sanitized."""
    return redact(run.model_dump(mode="json"))


def relative(when: datetime | None, now: datetime | None = None) -> str:
    """``5s ago``, ``3m ago``, ``2h ago``, ``4d ago``: what a glance needs."""
    if when is None:
        return "-"
    seconds = ((now or utcnow()) - when).total_seconds()
    if seconds < 0:
        return "in " + duration(-seconds * 1000)
    return duration(seconds * 1000) + " ago"


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    seconds = int(ms // 1000)
    if seconds < 60:
        return f"{ms / 1000:.1f}s" if ms < 10_000 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def progress_text(run: Run) -> str:
    p = run.progress
    if p is None or (p.total is None and p.succeeded is None and p.failed is None):
        return ""
    text = f"{p.succeeded or 0}/{p.total if p.total is not None else '?'}"
    if p.failed:
        text += f" ✗{p.failed}"
    if run.partial:
        text += " partial"
    return text


def problem(run: Run) -> str:
    """The one word that says what went wrong: error code, else reason type."""
    if run.error and run.error.code:
        return clean(run.error.code)
    if run.reason and run.reason.type:
        return clean(run.reason.type)
    return ""


def status_word(run: Run) -> str:
    word = f"{GLYPHS[run.status]} {run.status.value}"
    if run.status.is_active and run.metadata and run.metadata.get("abort_requested_at"):
        word += " (aborting)"
    if run.archived:
        word += " [archived]"
    if run.deleted:
        word += " [deleted]"
    return word


def log_line(line: LogLine, *, timestamps: bool) -> str:
    text = clean(line.text)
    if timestamps:  # the stream name came from outside too (a server, a vendor)
        return f"{line.ts.isoformat(timespec='milliseconds')} {clean(line.stream):<6} {text}"
    return text
