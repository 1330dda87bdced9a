"""What the jobs and failure views say, for every front end (the CLI's tables and
JSON, the monitor's screens): cells from :class:`JobSummary` and
:class:`FailureGroup`, every outside string through :func:`clean`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobwatch.core.columns import ago
from jobwatch.core.format import GLYPHS, duration
from jobwatch.core.redact import clean
from jobwatch.core.status import Status
from jobwatch.triage.index import FailureGroup, JobSummary

BARS = "▁▂▃▄▅▆▇█"


def spark(points: tuple[tuple[float | None, Status], ...]) -> list[tuple[str, Status]]:
    """One bar per run, its height the duration against the longest shown; a run
    without a duration is a dot. The caller colours each by its outcome."""
    longest = max((d for d, _ in points if d), default=0.0)
    out: list[tuple[str, Status]] = []
    for dur, status in points:
        if not dur or not longest:
            out.append(("·", status))
        else:
            level = min(len(BARS) - 1, int(dur / longest * (len(BARS) - 1) + 0.5))
            out.append((BARS[level], status))
    return out


def since_text(at: float | None, now: float) -> str:
    return "-" if at is None else ago(now - at)


def rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def last_text(s: JobSummary) -> str:
    if s.last_status is None:
        return "-"
    return f"{GLYPHS[s.last_status]} {s.last_status.value}"


def runs_text(s: JobSummary) -> str:
    return f"≥{s.runs_in_window}" if s.window_full else str(s.runs_in_window)


def trend_text(s: JobSummary) -> str:
    parts = [p for p in (s.late, s.trend) if p]
    return clean("; ".join(parts))


def job_cells(s: JobSummary, now: float) -> dict[str, str]:
    """The jobs view's cells by column name (the sparkline is drawn apart)."""
    return {
        "source": clean(s.source),
        "job": clean(s.job) or "(no job)",
        "last": last_text(s),
        "runs": runs_text(s),
        "ok": rate_text(s.success_rate),
        "p50": duration(s.p50_ms),
        "p95": duration(s.p95_ms),
        "recent": "".join(bar for bar, _ in spark(s.spark)),
        "last_ok": since_text(s.last_success_at, now),
        "trend": trend_text(s),
    }


def group_cells(g: FailureGroup, now: float) -> dict[str, str]:
    jobs = ", ".join(clean(j) or "(no job)" for j in g.jobs[:3])
    if len(g.jobs) > 3:
        jobs += f" +{len(g.jobs) - 3}"
    return {
        "new": "NEW" if g.new else "",
        "count": str(g.count),
        "jobs": jobs,
        "first": since_text(g.first_seen, now),
        "last": since_text(g.last_seen, now),
        "kind": clean(g.signature.kind),
        "signature": clean(g.text),
        "example": clean(g.example[1]),
    }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def job_json(s: JobSummary, now: float) -> dict[str, Any]:
    return {
        "source": clean(s.source),
        "job": clean(s.job),
        "last_status": s.last_status.value if s.last_status else None,
        "last_at": _iso(s.last_at),
        "active": s.active,
        "runs_in_window": s.runs_in_window,
        "window_full": s.window_full,
        "success_rate": s.success_rate,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "recent": [{"duration_ms": d, "status": st.value} for d, st in s.spark],
        "last_success_at": _iso(s.last_success_at),
        "since_last_success_s": None if s.last_success_at is None else now - s.last_success_at,
        "trend": clean(s.trend) if s.trend else None,
        "late": clean(s.late) if s.late else None,
    }


def group_json(g: FailureGroup) -> dict[str, Any]:
    return {
        "id": g.signature.digest,
        "kind": clean(g.signature.kind),
        "code": clean(g.signature.code) or None,
        "message": clean(g.signature.shape) or None,
        "count": g.count,
        "first_seen": _iso(g.first_seen),
        "last_seen": _iso(g.last_seen),
        "jobs": [clean(j) for j in g.jobs],
        "example": {"source": clean(g.example[0]), "id": clean(g.example[1])},
        "new": g.new,
    }
