"""The store's connection: opening, schema migrations, locking and transactions.

Every write bumps a monotonic revision counter inside its transaction, so a reader
asks for "everything changed since revision R" with one indexed query. Many
processes (``jobwatch run`` wrappers, the demo, the TUI's abort key) write at
once: writes take the lock up front (``BEGIN IMMEDIATE``) and wait for it, so
"database is locked" never reaches the user and no write is lost.

Reading never changes a file. A store is opened in one of three modes:

* ``"read"`` (``read_only=True``: ``--read-only`` or ``read_only`` in the config,
  ``serve --read-only``): a ``mode=ro`` connection, nothing else. No schema
  creation or migration, no journal-mode switch; the lost-run reaper only *shows*
  runs as lost (:attr:`Database.writable` is false) and every write is refused.
* ``"write"`` (``create=False``: every verb and the monitor on a selected store):
  the same read-only connection, so ``list``/``show``/``logs``/``watch`` and a
  monitor that only watches never touch the file; the first write (an abort, an
  archive) reopens it read-write, migrating it if it is older. One mode for the
  reading verbs and the acting ones because both are built by the same selection
  and only the action knows that it writes; a separate upgrade step would have to
  be remembered at every call site that acts.
* ``"create"`` (the default: ``jobwatch run``, the demo, a writable ``serve``):
  read-write from the start; a missing file is created ``0600`` (in folders made
  ``0700``), a blank one (0 bytes, or SQLite with no tables) becomes a store.

Whatever the mode, the file is looked at first (:func:`inspect_file`, which
reads without locking or writing): a file that is not a jobwatch store (not
SQLite, no ``meta``/``runs`` tables, a negative schema version) or a store from a
newer jobwatch is refused in one line before any connection that could change it.

A read-only connection to a WAL store needs the ``-shm``: where the folder is
writable SQLite makes an empty ``-wal``/``-shm`` pair (the store's bytes stay as
they were); where it is not and no ``-wal`` exists, the store is read
``immutable`` (measured: ``mode=ro`` then fails with SQLITE_READONLY_DIRECTORY,
``nolock=1`` cannot open it at all, and with a ``-wal`` left behind ``mode=ro``
works while ``immutable`` would miss what only the log holds).

A run a read-only open shows as lost keeps its revision, so the next poll of
*this* store object sends it once more (see :class:`jobwatch.sources.lost.ShownLost`); a second
reader sharing the object (``serve --read-only``'s clients) may only see it when
a writer records it, or on a fresh sync.

SQLite gives a store's ``-wal``/``-shm`` files the store's own mode, so a store
made here keeps all three private. Readers stat the path on each read (cheap)
and notice a store deleted or replaced under them (:meth:`Database._follow_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from jobwatch.core import ACTIVE
from jobwatch.core.errors import (
    NewerStoreError,
    StoreError,
    StorePathError,
    StoreReplaced,
    TransitionRefused,
)
from jobwatch.sources.local import schema
from jobwatch.sources.lost import ShownLost
from jobwatch.sources.protocol import SourceBase

if TYPE_CHECKING:
    import aiosqlite

T = TypeVar("T")
Mode = Literal["read", "write", "create"]

LOST_AFTER_S = 30.0
"""A managed run whose owner has not reported for this long is shown as lost."""
REAP_EVERY_S = 2.0
_LOCK_WAIT_S = 120.0
_ACTIVE = tuple(s.value for s in ACTIVE)
_RUN_COLS = "id, revision, data, abort_requested_at, abort_requested_by"
_RUNS = "runs JOIN run_docs USING (id)"
"""Where full records are read from: the narrow table plus its documents."""
_MAGIC = b"SQLite format 3\x00"
_OPEN_TRIES = 3


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _uri(path: Path, query: str) -> str:
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


def _companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def not_a_store(path: Path, why: str) -> StoreError:
    return StoreError(f"{path} is not a jobwatch store ({why})")


def inspect_file(path: Path) -> int | None:
    """The schema version of the jobwatch store at ``path``, or ``None`` for a blank
    file (0 bytes, or SQLite without a single table) that a writer may make a store.

    Anything else raises :class:`StoreError` in one line. Reads without changing a
    byte or creating a file: with no ``-wal`` beside it (nothing in a write-ahead
    log to miss) the file is read ``immutable``, which takes no lock and needs no
    ``-shm``; with one, a plain ``mode=ro`` read, which finds the ``-shm`` there.
    """
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except IsADirectoryError:
        raise StorePathError(f"{path} is a directory, not a store file") from None
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror or exc}") from None
    if not head:
        return None
    if not head.startswith(_MAGIC):
        raise not_a_store(path, "not an SQLite database")
    wal = _companion(path, "-wal").exists()
    try:
        with contextlib.closing(
            sqlite3.connect(_uri(path, "mode=ro" if wal else "mode=ro&immutable=1"), uri=True)
        ) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise not_a_store(path, str(exc)) from None
        raise StoreError(f"cannot read store {path}: {exc}") from None
    if not tables and version == 0:
        return None
    if version < 0:
        raise not_a_store(path, f"schema version {version}")
    if not {"meta", "runs"} <= tables:
        raise not_a_store(path, "it has no meta and runs tables")
    known = max(schema.MIGRATIONS)
    if version > known:
        raise NewerStoreError(
            f"store {path} was written by a newer jobwatch (schema {version}, "
            f"this version reads up to {known}); upgrade jobwatch to use it"
        )
    if version == 0:
        raise not_a_store(path, "schema version 0")
    return version


def exposure_warning(path: str | Path) -> str | None:
    """The warning for an existing store that other local users can read (it holds
    every run's logs and configuration in clear); ``None`` when it is private.
    Only a warning: jobwatch never changes the mode of a file it did not create."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode) or not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    try:  # a file that is no store is refused in one line, without this warning
        if inspect_file(path) is None:
            return None
    except StoreError:
        return None
    return f"store {path} is readable by other users; chmod 600 {path}"


def _make_private(path: Path) -> None:
    """Create the store file ``0600`` (and any missing folder ``0700``) before SQLite
    opens it; SQLite then gives its ``-wal``/``-shm`` the same mode."""
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            made.mkdir(mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _cannot_make_shm(exc: BaseException) -> bool:
    """Whether a read-only open failed because SQLite may not create the ``-shm``
    (``SQLITE_READONLY_DIRECTORY`` and kin), not for any other reason."""
    name = str(getattr(exc.__cause__, "sqlite_errorname", ""))
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))


def _ident(st: os.stat_result, immutable: bool) -> tuple[int, ...]:
    """What tells this file from a replacement; an ``immutable`` read sees no later
    write, so for it any change of size or time counts too."""
    if immutable:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return (st.st_dev, st.st_ino)


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


class Database(SourceBase):
    """One SQLite file and its connection; the concerns (runs, logs, the reaper,
    flags) are mixins over it, composed in :class:`~jobwatch.sources.local.store.SqliteStore`.

    ``mode`` is ``"read"``, ``"write"`` or ``"create"`` (see the module); without
    it, ``read_only`` means ``"read"``, else ``create`` means ``"create"`` and
    ``create=False`` means ``"write"``, so existing call sites keep working.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "local",
        mode: Mode | None = None,
        create: bool = True,
        read_only: bool = False,
        lost_after: float = LOST_AFTER_S,
    ) -> None:
        if mode is None:
            mode = "read" if read_only else "create" if create else "write"
        if mode not in ("read", "write", "create"):
            raise ValueError(f"store mode must be read, write or create, not {mode!r}")
        self._blank_path = not str(path).strip()
        self.path = Path(path).expanduser()
        self.name = name
        self.mode: Mode = mode
        self.read_only = read_only or mode == "read"
        self.lost_after = lost_after
        self._db: aiosqlite.Connection | None = None
        self._side: aiosqlite.Connection | None = None
        """A second read-only connection for long reads (see :meth:`_fetchall_aside`)."""
        self._writable = False
        self.schema_version = 0
        """Of the open file: a read-only open of an older store reads it as it is."""
        self._write_lock = asyncio.Lock()
        self._follow_lock = asyncio.Lock()
        self._last_reap = 0.0
        self._file: tuple[int, ...] | None = None
        """The identity of the file last opened (kept after a close, to tell a
        reopened store from a replaced one)."""
        self._dropped = False
        """Closed by :meth:`_follow_file` because the file went away or changed."""
        self._deleted = False
        self._replaced: str | None = None
        """A replacement not yet reported to a poller."""
        self._shown = ShownLost()
        """Runs a read-only open shows as lost (and those the next poll re-sends)."""

    @property
    def writable(self) -> bool:
        """Whether the open connection may write (the reaper writes only then)."""
        return self._writable

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return  # already open: callers may open defensively
        if self._blank_path:
            raise StorePathError("the store path is empty")
        if self.path.is_dir():
            raise StorePathError(f"{self.path} is a directory, not a store file")
        if not self.path.exists():
            if self._dropped:
                raise StoreError(f"store {self.path} was deleted")
            if self.mode != "create":
                raise StoreError(
                    f"no store at {self.path} (create one with `jobwatch run -- CMD` "
                    "or `jobwatch demo`, or pass --store)"
                )
        if self.mode == "create":
            db, ident = await self._connect_writer(create=True)
        else:
            db, ident = await self._connect_reader()
        self._db, self._writable, self._file = db, self.mode == "create", ident
        self._dropped = False

    async def _connect_reader(self) -> tuple[aiosqlite.Connection, tuple[int, ...]]:
        """A connection that cannot write: ``mode=ro``, or ``immutable`` when the
        folder is read-only and the store has no ``-wal`` (then SQLite cannot make
        the ``-shm`` a WAL read needs, and there is no log it would miss)."""
        for _ in range(_OPEN_TRIES):
            before = self._stat()
            version = await asyncio.to_thread(inspect_file, self.path)
            if version is None:
                raise not_a_store(self.path, "an empty file" if not before.st_size else "no tables")
            self.schema_version = version
            immutable = False
            try:
                db = await self._connect("mode=ro")
            except StoreError as exc:
                if _companion(self.path, "-wal").exists() or not _cannot_make_shm(exc):
                    raise
                immutable = True
                db = await self._connect("mode=ro&immutable=1")
            if _ident(self._stat(), immutable) == _ident(before, immutable):
                return db, _ident(before, immutable)
            await db.close()  # swapped while it was being opened: look again
        raise StoreError(f"store {self.path} keeps changing while it is opened")

    async def _connect(self, query: str) -> aiosqlite.Connection:
        """A read-only connection, checked by reading through it."""
        try:
            import aiosqlite  # here: the PostgreSQL store shares this module, not SQLite

            db = await aiosqlite.connect(
                _uri(self.path, query), uri=True, isolation_level=None, timeout=_LOCK_WAIT_S
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(_LOCK_WAIT_S * 1000)}")
            await db.execute("PRAGMA query_only = ON")
            await db.execute_fetchall("SELECT value FROM meta WHERE key = 'revision'")
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc
        return db

    async def _connect_writer(
        self, *, create: bool
    ) -> tuple[aiosqlite.Connection, tuple[int, ...]]:
        """A read-write connection to a store (``create``: or to a blank file, which
        becomes one), migrated to the current schema."""
        if create and not self.path.exists():
            try:
                _make_private(self.path)
            except OSError as exc:
                raise StoreError(f"cannot create store {self.path}: {exc.strerror or exc}") from exc
        before = self._stat()
        # Not looked at again when this process has it open already (a "write" store
        # taking its first write): the look opens and closes the file, and closing
        # any descriptor of a file drops every POSIX lock the process holds on it —
        # the open connection's shared lock too, so the next writer elsewhere to
        # close would take itself for the last one and delete the -wal and -shm
        # under this connection (reads then went stale or failed with a disk I/O
        # error after the monitor's first abort, archive or rerun).
        held = self._db is not None and self._file is not None and before.st_ino == self._file[1]
        if not held and await asyncio.to_thread(inspect_file, self.path) is None and not create:
            raise not_a_store(self.path, "an empty file")
        try:
            import aiosqlite  # here: the PostgreSQL store shares this module, not SQLite

            db = await aiosqlite.connect(
                _uri(self.path, "mode=rw"), uri=True, isolation_level=None, timeout=_LOCK_WAIT_S
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(_LOCK_WAIT_S * 1000)}")
            await self._retry(lambda: db.execute("PRAGMA journal_mode = WAL"))
            await db.execute("PRAGMA synchronous = NORMAL")
            await self._immediate(db, lambda: schema.migrate(db, schema.MIGRATIONS))
            self.schema_version = max(schema.MIGRATIONS)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot write store {self.path}: {exc}") from exc
            raise
        return db, _ident(before, False)

    async def _ensure_writable(self) -> None:
        """Reopen a ``"write"`` store read-write for its first write."""
        if self._writable:
            return
        if self.mode == "read" or self.read_only:
            raise StoreError(f"store {self.path} is open read-only")
        db, ident = await self._connect_writer(create=False)
        old, self._db, self._writable, self._file = self._db, db, True, ident
        # From here the reaper writes what it finds; what it only showed is re-sent.
        self._shown.forget()
        self._last_reap = 0.0
        if old is not None:
            await old.close()

    async def set_lock_wait(self, seconds: float) -> None:
        """Wait at most ``seconds`` (per attempt) for another process's lock: a
        cancelled wait goes on in the connection's thread until then, and the
        ``jobwatch run`` wrapper must not hang on a store someone keeps locked."""
        await self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    def _stat(self) -> os.stat_result:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"store {self.path} was deleted") from None
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc.strerror or exc}") from None

    async def _follow_file(self, *, poll: bool = False) -> None:
        """Notice the store being deleted or replaced: one ``stat`` per read.

        A replaced file is reopened at once (reads go to the file that is there
        now); a poll (``poll``) is then told once, with :class:`StoreReplaced`, so
        it drops what it knew of the old file and syncs afresh. A deleted file is
        an error on every read until a file is there again."""
        if self._db is None and not self._dropped:
            return  # never opened: the read says "store is not open"
        async with self._follow_lock:  # one reopen, however many reads notice
            await self._follow(poll)

    async def _follow(self, poll: bool) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            await self._drop()
            self._deleted = True  # whatever appears here next is another file
            raise StoreError(f"store {self.path} was deleted") from None
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc.strerror or exc}") from None
        ident = self._file
        if self._db is None or ident is None or _ident(st, len(ident) > 2) != ident:
            await self._drop()
            await self.open()
            # A new inode, or any file after a deletion (its inode may be reused).
            if self._deleted or (ident is not None and self._file and self._file[:2] != ident[:2]):
                self._replaced = f"store {self.path} was replaced; reopened"
            self._deleted = False
        if poll and self._replaced:
            message, self._replaced = self._replaced, None
            self._shown.clear()
            raise StoreReplaced(message)

    async def _drop(self) -> None:
        await self.close()
        self._dropped = True

    async def close(self) -> None:
        self._dropped = False
        if self._side is not None:
            side, self._side = self._side, None
            with contextlib.suppress(sqlite3.Error):
                await side.close()
        if self._db is not None:
            db, self._db = self._db, None
            self._writable = False
            await db.close()

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

    async def _immediate(self, db: aiosqlite.Connection, body: Callable[[], Awaitable[T]]) -> T:
        """One write transaction on ``db`` that takes the write lock up front."""

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

        return await self._retry(attempt)

    async def _transaction(self, body: Callable[[], Awaitable[T]]) -> T:
        """One write transaction (opening a ``"write"`` store read-write first)."""
        async with self._write_lock:
            await self._ensure_writable()
            return await self._immediate(self._conn, body)

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

    async def _fetchall_aside(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """:meth:`_fetchall` on a second read-only connection, for a read that takes
        seconds (the triage fill of a 1M-run store: 4.6 s). Each connection has one
        thread, so on the main one every window page the user scrolls to waited
        behind it; WAL lets the two read side by side. Falls back to the main
        connection where a second one cannot be opened (an immutable store)."""
        conn = self._conn
        if self._side is None:
            try:
                self._side = await self._connect("mode=ro")
            except StoreError:
                return await self._fetchall(sql, params)
        side = self._side

        async def op() -> list[Any]:
            return list(await side.execute_fetchall(sql, params))

        rows = await self._retry(op)
        if self._db is not conn:  # the store was reopened meanwhile: read it again there
            return await self._fetchall(sql, params)
        return rows

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _before_read(self) -> None:
        """Called before reads that show runs; the reaper hooks in here."""

    def _refuse_if_read_only(self, verb: str) -> None:
        if self.read_only:
            raise TransitionRefused(f"cannot {verb}: source {self.name} is read-only")
