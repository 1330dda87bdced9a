"""What the stores answer about liveness and expectations, for ``triage/``.

Sources that can say more than their rows (the SQLite and PostgreSQL stores: when
a run last wrote a line, when its progress last moved, what ``jobwatch run
--every`` said to expect) implement :class:`LiveReads`; the triage code asks
whoever does, and falls back to what the rows say for everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

JobKey = tuple[str, str]
"""``(source, job)``: a job is named per source (two systems may share a name)."""


@dataclass(frozen=True, slots=True)
class Activity:
    """The latest signs of life of one running run (epoch seconds, or None)."""

    source: str
    id: str
    job: str | None
    started_at: float | None
    last_output_at: float | None = None
    progress_at: float | None = None

    @property
    def active_at(self) -> float | None:
        """The newest of its start, its last log line and its last progress move."""
        times = [t for t in (self.started_at, self.last_output_at, self.progress_at) if t]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job expected to start every ``every_s`` seconds or on ``cron``, with
    ``grace_s`` of slack before it counts as late."""

    source: str
    job: str
    every_s: float | None = None
    cron: str | None = None
    grace_s: float = 0.0
    origin: str = "store"
    """``store`` (recorded by ``jobwatch run --every``) or ``config``."""
    since: float | None = None
    """When the expectation was recorded (the store's), standing in for the last
    start of a job that never ran; None: when this process first saw it."""

    @property
    def key(self) -> JobKey:
        return (self.source, self.job)


@runtime_checkable
class LiveReads(Protocol):
    async def activity(self) -> list[Activity]:
        """Every running run with its latest signs of life (an indexed read)."""
        ...

    async def quiet_gaps(self, jobs: Sequence[str], limit: int) -> dict[str, list[float]]:
        """The longest quiet gap (seconds) of each named job's last ``limit`` succeeded
        runs that wrote output, newest first (jobs by name within this source)."""
        ...

    async def last_starts(self, jobs: Sequence[str]) -> dict[str, float]:
        """When each job's newest run started (or was created)."""
        ...

    async def schedules(self) -> list[Schedule]:
        """What ``jobwatch run --every`` recorded."""
        ...


SCHEDULE_COLUMNS = "source, job, every_s, cron, grace_s, updated_at"
"""What both stores read of their ``schedules`` table, in :func:`schedules_from`'s order."""


def gaps_by_job(rows: Iterable[Sequence[Any]]) -> dict[str, list[float]]:
    """``(source, job, gap seconds)`` rows, newest first, as ``quiet_gaps`` answers
    them (the same for both stores; only their SQL differs)."""
    out: dict[str, list[float]] = {}
    for _source, job, gap in rows:
        out.setdefault(job, []).append(max(0.0, float(gap or 0.0)))
    return out


def schedules_from(rows: Iterable[Sequence[Any]]) -> list[Schedule]:
    """Rows of :data:`SCHEDULE_COLUMNS` as the store's recorded schedules."""
    return [Schedule(s, j, e, c, float(g or 0.0), "store", u) for s, j, e, c, g, u in rows]
