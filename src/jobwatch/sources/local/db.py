"""The store's connection: opening, schema migrations, locking and transactions.

Every write bumps a monotonic revision counter inside its transaction, so a reader
asks for "everything changed since revision R" with one indexed query. Many
processes (``jobwatch run`` wrappers, the demo, the TUI's abort key) write at
once: writes take the lock up front (``BEGIN IMMEDIATE``) and wait for it, so
"database is locked" never reaches the user and no write is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiosqlite

from jobwatch.core import ACTIVE
from jobwatch.core.errors import (
    NewerStoreError,
    StoreError,
    TransitionRefused,
)
from jobwatch.sources.local import schema

if TYPE_CHECKING:
    pass

T = TypeVar("T")

LOST_AFTER_S = 30.0
"""A managed run whose owner has not reported for this long is shown as lost."""
REAP_EVERY_S = 2.0
_LOCK_WAIT_S = 120.0
_ACTIVE = tuple(s.value for s in ACTIVE)
_RUN_COLS = "id, revision, data, abort_requested_at, abort_requested_by"
_RUNS = "runs JOIN run_docs USING (id)"
"""Where full records are read from: the narrow table plus its documents."""


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


_SINCE = "(CASE WHEN (SELECT value FROM meta WHERE key = 'revision') < ? THEN 0 ELSE ? END)"
"""The revision a read starts after: the cursor's, or 0 when the cursor is above
this store's revision because it came from another store (the file was replaced
or restored from a backup) and the reader must sync afresh. Part of the one
query, so an idle poll stays one round trip; SQLite still uses the index."""


def parse_cursor(cursor: int | str | None) -> tuple[int, int | None]:
    """``(revision, rowid)`` from a cursor this store gave out; rowid is set only
    for a page that ended inside one revision. Anything else is a ``ValueError``."""
    if cursor is None or cursor == "":
        return 0, None
    if isinstance(cursor, int):
        return cursor, None
    revision, sep, rowid = cursor.partition(":")
    if not revision.isdigit() or (sep and not rowid.isdigit()):
        raise ValueError(f"not a store cursor: {cursor!r}")
    return int(revision), int(rowid) if sep else None


class Database:
    """One SQLite file and its connection; the concerns (runs, logs, the reaper,
    flags) are mixins over it, composed in :class:`~jobwatch.sources.local.store.SqliteStore`."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "local",
        create: bool = True,
        read_only: bool = False,
        lost_after: float = LOST_AFTER_S,
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = name
        self.read_only = read_only
        self.lost_after = lost_after
        self._create = create
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._last_reap = 0.0

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return  # already open: callers may open defensively
        if not self._create and not self.path.exists():
            raise StoreError(
                f"no store at {self.path} (create one with `jobwatch run -- CMD` "
                "or `jobwatch demo`, or pass --store)"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None, timeout=_LOCK_WAIT_S)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        self._db = db
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(_LOCK_WAIT_S * 1000)}")
            await self._check_version()
            await self._retry(lambda: db.execute("PRAGMA journal_mode = WAL"))
            await db.execute("PRAGMA synchronous = NORMAL")
            await self._transaction(lambda: schema.migrate(db, schema.MIGRATIONS))
        except BaseException:
            await self.close()
            raise

    async def set_lock_wait(self, seconds: float) -> None:
        """Wait at most ``seconds`` (per attempt) for another process's lock: a
        cancelled wait goes on in the connection's thread until then, and the
        ``jobwatch run`` wrapper must not hang on a store someone keeps locked."""
        await self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    async def _check_version(self) -> None:
        """Refuse a store from a newer jobwatch before touching it in any way."""
        try:
            async with self._conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a jobwatch store: {exc}") from exc
        version = int(row[0]) if row else 0
        known = max(schema.MIGRATIONS)
        if version > known:
            raise NewerStoreError(
                f"store {self.path} was written by a newer jobwatch (schema {version}, "
                f"this version reads up to {known}); upgrade jobwatch to use it"
            )

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    # -- plumbing ----------------------------------------------------------------

    async def _retry(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` again while SQLite says another process holds the lock."""
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.01
        while True:
            try:
                return await op()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise StoreError(f"store {self.path}: {exc}") from exc
                await asyncio.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 0.5)

    async def _transaction(self, body: Callable[[], Awaitable[T]]) -> T:
        """One write transaction that takes the write lock up front."""
        db = self._conn

        async def attempt() -> T:
            try:
                await db.execute("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                # Cancelling the wait does not stop the BEGIN in the connection's
                # thread; undo it (queued after it) or the next write finds the
                # connection still inside this transaction.
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
            try:
                result = await body()
                await db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does): a failing
                # ROLLBACK must not hide the error that matters.
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
            return result

        async with self._write_lock:
            return await self._retry(attempt)

    async def _bump(self) -> int:
        async with self._conn.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value"
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async def op() -> list[Any]:
            # One trip to the connection's thread, not three (execute, fetch,
            # close): each trip waits for the GIL while the UI is drawing.
            return list(await self._conn.execute_fetchall(sql, params))

        return await self._retry(op)

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _before_read(self) -> None:
        """Called before reads that show runs; the reaper hooks in here."""

    def _refuse_if_read_only(self, verb: str) -> None:
        if self.read_only:
            raise TransitionRefused(f"cannot {verb}: source {self.name} is read-only")
