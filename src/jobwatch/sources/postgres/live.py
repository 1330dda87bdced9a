"""The shared store's answers for stuck runs and late jobs (see
:mod:`jobwatch.sources.local.live`, the same questions over SQLite). Log activity
is in ``run_activity``, not ``runs``: log lines never notify monitors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobwatch.sources.activity import (
    SCHEDULE_COLUMNS,
    Activity,
    Schedule,
    gaps_by_job,
    schedules_from,
)
from jobwatch.sources.postgres.schema import LIVE_VERSION


def _jobs(jobs: Sequence[str]) -> str:
    """``r.job IN (…)`` for ``jobs``."""
    return f"r.job IN ({', '.join('%s' for _ in jobs)})"


class PgLiveMixin:
    schema_version: int
    _fetch: Callable[..., Awaitable[list[tuple[Any, ...]]]]
    _transaction: Callable[..., Awaitable[Any]]
    _refuse_if_read_only: Callable[[str], None]

    async def activity(self) -> list[Activity]:
        if self.schema_version < LIVE_VERSION:
            return []
        rows = await self._fetch(
            "SELECT r.source, r.id, r.job, r.started_at, a.last_output_at, r.progress_at "
            "FROM runs r LEFT JOIN run_activity a ON a.run_id = r.id "
            "WHERE r.status = 'running'"
        )
        return [Activity(*row) for row in rows]

    async def quiet_gaps(self, jobs: Sequence[str], limit: int) -> dict[str, list[float]]:
        if self.schema_version < LIVE_VERSION or not jobs:
            return {}
        clause, params = _jobs(jobs), list(jobs)
        rows = await self._fetch(
            "SELECT source, job, GREATEST(COALESCE(quiet_max_ms, 0) / 1000.0, "
            "ended_at - last_output_at) FROM ("
            "SELECT r.source, r.job, a.quiet_max_ms, r.ended_at, a.last_output_at, "
            "ROW_NUMBER() OVER (PARTITION BY r.job ORDER BY r.ended_at DESC) AS n "
            "FROM runs r JOIN run_activity a ON a.run_id = r.id "
            f"WHERE r.status = 'succeeded' AND a.last_output_at IS NOT NULL AND ({clause})"
            ") AS recent WHERE n <= %s ORDER BY ended_at DESC",
            [*params, limit],
        )
        return gaps_by_job(rows)

    async def last_starts(self, jobs: Sequence[str]) -> dict[str, float]:
        if not jobs:
            return {}
        clause, params = _jobs(jobs), list(jobs)
        rows = await self._fetch(
            "SELECT r.job, MAX(COALESCE(NULLIF(r.started_at, 0), r.created_at)) "
            f"FROM runs r WHERE {clause} GROUP BY r.job",
            params,
        )
        return {j: float(t) for j, t in rows if t is not None}

    async def schedules(self) -> list[Schedule]:
        if self.schema_version < LIVE_VERSION:
            return []
        rows = await self._fetch(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY source, job")
        return schedules_from(rows)

    async def set_schedule(self, schedule: Schedule) -> None:
        self._refuse_if_read_only("record a schedule")

        async def body(conn: Any) -> None:
            await conn.execute(
                "INSERT INTO schedules (source, job, every_s, cron, grace_s, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source, job) DO UPDATE SET "
                "every_s = excluded.every_s, cron = excluded.cron, "
                "grace_s = excluded.grace_s, updated_at = excluded.updated_at",
                (
                    schedule.source,
                    schedule.job,
                    schedule.every_s,
                    schedule.cron,
                    schedule.grace_s,
                    time.time(),
                ),
            )

        await self._transaction(body, feed=False)
