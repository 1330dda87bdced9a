"""Spools of a PostgreSQL store: what ``jobwatch run`` could not write while the
server was down, imported by the next ``jobwatch run`` on that machine.

The files are the SQLite store's spool files (:mod:`jobwatch.sources.local.spool`),
kept in the user data directory under a name made from the DSN (the DSN holds no
password: it is refused), so a spool is only ever imported into the database it
was meant for. The import merges the run as the SQLite one does and inserts the
lines or ignores them by ``(run_id, seq)``, in one transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_data_path

from jobwatch import core as models
from jobwatch.core import ACTIVE
from jobwatch.core.paths import APP
from jobwatch.sources.local.spool import _Parsed, _replaceable, _store_key, import_each
from jobwatch.sources.postgres.sink import rows

if TYPE_CHECKING:
    from jobwatch.sources.postgres.store import Conn, PostgresStore


def spool_key(dsn: str) -> Path:
    """The path spools of ``dsn`` are named after (never a file itself)."""
    digest = hashlib.sha256(dsn.strip().encode()).hexdigest()[:16]
    return user_data_path(APP, appauthor=False) / "postgres" / f"{digest}.pg"


async def import_spool(store: PostgresStore, path: Path) -> str | None:
    """Import one spool file the caller holds the lock of; returns the run id."""
    key = spool_key(store.dsn)
    parsed = _Parsed(path, _store_key(key))
    spooled = parsed.run
    if spooled is None:
        return None
    final = spooled.status not in ACTIVE

    async def body(conn: Conn) -> None:
        cur = await conn.execute(
            "SELECT id, revision, data, abort_requested_at, abort_requested_by "
            "FROM runs WHERE id = %s FOR UPDATE",
            (spooled.id,),
        )
        row = await cur.fetchone()
        existing = store._parse(row, show_abort=False) if row else None
        if not isinstance(existing, models.Run):
            extra: dict[str, Any] = {"heartbeat_at": None, "abort_requested_at": None}
            if not final:  # its wrapper died while spooling: the reaper decides
                extra = {"heartbeat_at": parsed.mtime, "host_id": store.host}
            await store._write_runs(conn, [spooled], **extra)
        elif final and _replaceable(existing):
            merged = spooled.model_copy(update={"archived": existing.archived})
            await store._write_runs(conn, [merged], heartbeat_at=None, abort_requested_at=None)
        async with conn.cursor() as c:
            for batch in parsed.batches():
                await c.executemany(
                    "INSERT INTO logs (run_id, seq, ts, stream, level, text) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    list(rows(spooled.id, batch)),
                )

    await store._transaction(body)
    return spooled.id


async def import_spools(store: PostgresStore) -> list[str]:
    """Import every spool of ``store`` whose writer is gone (its lock is free),
    deleting each after its commit; a file that fails stays for the next try."""
    return await import_each(spool_key(store.dsn), lambda path: import_spool(store, path))
