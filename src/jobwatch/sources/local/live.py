"""The store's answers for stuck runs and late jobs (:mod:`jobwatch.sources.activity`).

Each is one indexed query, asked by the triage code at most once per poll: the
running runs (``runs_status``), a few jobs' recent successes, a few jobs' newest
start. A store older than :data:`~.schema.LIVE_VERSION` read as it is (read-only)
answers nothing rather than failing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from jobwatch.sources.activity import (
    SCHEDULE_COLUMNS,
    Activity,
    Schedule,
    gaps_by_job,
    schedules_from,
)
from jobwatch.sources.local.db import Database
from jobwatch.sources.local.schema import LIVE_VERSION


def _jobs(jobs: Sequence[str]) -> str:
    """``job IN (…)`` for ``jobs``."""
    return f"job IN ({', '.join('?' for _ in jobs)})"


class LiveMixin(Database):
    async def activity(self) -> list[Activity]:
        if self.schema_version < LIVE_VERSION:
            return []
        rows = await self._fetchall(
            "SELECT source, id, job, started_at, last_output_at, progress_at FROM runs "
            "WHERE status = 'running'"
        )
        return [Activity(*row) for row in rows]

    async def quiet_gaps(self, jobs: Sequence[str], limit: int) -> dict[str, list[float]]:
        if self.schema_version < LIVE_VERSION or not jobs:
            return {}
        clause, params = _jobs(jobs), list(jobs)
        rows = await self._fetchall(
            "SELECT source, job, MAX(COALESCE(quiet_max_ms, 0) / 1000.0, "
            "ended_at - last_output_at) FROM ("
            "SELECT source, job, quiet_max_ms, ended_at, last_output_at, ROW_NUMBER() OVER "
            "(PARTITION BY job ORDER BY ended_at DESC) AS n FROM runs "
            f"WHERE status = 'succeeded' AND last_output_at IS NOT NULL AND ({clause})"
            ") WHERE n <= ? ORDER BY ended_at DESC",
            [*params, limit],
        )
        return gaps_by_job(rows)

    async def last_starts(self, jobs: Sequence[str]) -> dict[str, float]:
        if not jobs:
            return {}
        clause, params = _jobs(jobs), list(jobs)
        rows = await self._fetchall(
            "SELECT job, MAX(COALESCE(NULLIF(started_at, 0), created_at)) FROM runs "
            f"WHERE {clause} GROUP BY job",
            params,
        )
        return {j: float(t) for j, t in rows if t is not None}

    async def schedules(self) -> list[Schedule]:
        if self.schema_version < LIVE_VERSION:
            return []
        rows = await self._fetchall(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY source, job"
        )
        return schedules_from(rows)

    async def set_schedule(self, schedule: Schedule) -> None:
        """Record (or replace) what ``jobwatch run --every`` expects of a job."""
        self._refuse_if_read_only("record a schedule")

        async def body() -> None:
            await self._conn.execute(
                "INSERT OR REPLACE INTO schedules (source, job, every_s, cron, grace_s, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    schedule.source,
                    schedule.job,
                    schedule.every_s,
                    schedule.cron,
                    schedule.grace_s,
                    time.time(),
                ),
            )

        await self._transaction(body)
