"""Histories built for the triage tests (jobs, failure groups, slow runs): runs of
named jobs at known times, written to a real store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from jobwatch.core import Run, RunError, Status

NOW = time.time()
RUNNING = Status.RUNNING
TIMES = "\N{MULTIPLICATION SIGN}"
HOUR = 3600.0


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def run(
    rid: str,
    job: str,
    *,
    hours_ago: float,
    seconds: float | None = 60.0,
    status: Status = Status.SUCCEEDED,
    code: str | None = None,
    message: str | None = None,
    source: str = "local",
) -> Run:
    """A run of ``job`` that started ``hours_ago`` and took ``seconds`` (None: still
    running); failed runs carry ``code`` and ``message``."""
    start = NOW - hours_ago * HOUR
    ended = None if seconds is None or status.is_active else start + seconds
    error = RunError(code=code, message=message) if (code or message) else None
    return Run(
        id=rid,
        source=source,
        job=job,
        label=job,
        status=status,
        status_raw=status.value,
        created_at=at(start),
        started_at=at(start),
        ended_at=at(ended) if ended is not None else None,
        duration_ms=seconds * 1000 if ended is not None and seconds is not None else None,
        error=error,
    )


def steady(job: str, count: int, *, first_hours_ago: float, seconds: float = 60.0) -> list[Run]:
    """``count`` succeeded runs of ``job``, one an hour, the newest last."""
    return [
        run(f"run-{job}-{i:03d}", job, hours_ago=first_hours_ago - i, seconds=seconds)
        for i in range(count)
    ]


def history() -> list[Run]:
    """The cases: ``etl`` turns slow (its last run takes 5x its usual minute),
    ``backup`` fails three times in a row with one repeating failure (seen before
    the last day too), ``report`` fails once with a failure never seen before,
    ``ingest`` has a run going for 10 minutes against a usual minute."""
    runs = steady("etl", 10, first_hours_ago=12)
    runs.append(run("run-etl-slow", "etl", hours_ago=1.5, seconds=300))
    runs += steady("backup", 6, first_hours_ago=60)
    runs.append(
        run(
            "run-backup-old",
            "backup",
            hours_ago=57.5,
            status=Status.FAILED,
            code="exit-1",
            message="connection to db-3.internal:5432 refused after 4 tries",
        )
    )
    for i, hours in enumerate((3.0, 2.0, 1.0)):
        runs.append(
            run(
                f"run-backup-f{i}",
                "backup",
                hours_ago=hours,
                status=Status.FAILED,
                code="exit-1",
                message=f"connection to db-{i}.internal:5432 refused after {i + 2} tries",
            )
        )
    runs += steady("report", 5, first_hours_ago=10)
    runs.append(
        run(
            "run-report-new",
            "report",
            hours_ago=0.5,
            status=Status.FAILED,
            code="exit-2",
            message="template 'weekly.html' missing, token=sk-live-abcdefghijklmnop1234",
        )
    )
    runs += steady("ingest", 8, first_hours_ago=9)
    runs.append(run("run-ingest-now", "ingest", hours_ago=10 / 60, seconds=None, status=RUNNING))
    return runs
