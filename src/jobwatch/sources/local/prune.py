"""``jobwatch prune`` on a SQLite store: finished runs older than a cut-off go,
with their documents and log lines, in one transaction; an active run never
does, however old. A dry run only reads."""

from __future__ import annotations

from jobwatch.sources.local.db import _ACTIVE
from jobwatch.sources.local.store import SqliteStore

_MARKS = ", ".join("?" for _ in _ACTIVE)
_OLD = f"SELECT id FROM runs WHERE status NOT IN ({_MARKS}) AND COALESCE(ended_at, created_at) < ?"


async def prune_sqlite(
    store: SqliteStore, before: float, *, dry_run: bool = False
) -> tuple[list[str], int]:
    """Ids of the runs pruned (or that would be) and their number of log lines."""
    params = (*_ACTIVE, before)
    ids = [str(r[0]) for r in await store._fetchall(_OLD + " ORDER BY created_at, id", params)]
    if dry_run or not ids:
        row = await store._fetchone(f"SELECT COUNT(*) FROM logs WHERE run_id IN ({_OLD})", params)
        return ids, int(row[0]) if row else 0

    async def body() -> tuple[list[str], int]:
        conn = store._conn
        gone = [str(r[0]) for r in await conn.execute_fetchall(_OLD, params)]
        cur = await conn.execute(f"DELETE FROM logs WHERE run_id IN ({_OLD})", params)
        lines = cur.rowcount
        await conn.execute(f"DELETE FROM run_docs WHERE id IN ({_OLD})", params)
        if store.schema_version >= 4:  # a pruned run can no longer be rerun
            await conn.execute(f"DELETE FROM run_commands WHERE run_id IN ({_OLD})", params)
        await conn.execute(f"DELETE FROM runs WHERE id IN ({_OLD})", params)
        return gone, lines

    return await store._transaction(body)
