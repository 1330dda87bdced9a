"""Spool files: where ``jobwatch run`` keeps what the store could not take.

A wrapper whose store is corrupt, unopenable, locked for too long or on a full
disk still runs its command; the run record and every line it could not store go
to a spool file, one JSON object per line: a ``head`` (which store, which
wrapper), the ``run`` record each time it changes (the last one counts) and
``logs`` batches with their sequence numbers.

The writer holds an exclusive ``flock`` on its file for as long as it lives, so
an importer never takes a spool that is still growing. An import merges the run
(the spool's final state replaces a running or lost one, never a finished one)
and inserts lines or ignores them by ``(run_id, seq)``, all in one transaction;
the file is deleted only after the commit. Importing twice is harmless.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_data_path

from jobwatch import core as models
from jobwatch.core import ACTIVE, Status
from jobwatch.core.paths import APP
from jobwatch.sources.local.db import _RUN_COLS, _RUNS
from jobwatch.sources.local.logsink import LineBatch, statements

if TYPE_CHECKING:
    from jobwatch.sources.local.store import SqliteStore

VERSION = 1
SUFFIX = ".jsonl"


def spool_dirs(store_path: Path) -> list[Path]:
    """Where spools of ``store_path`` go, in order of preference: a folder next to
    the store, then one in the user data directory (when the store's disk is full
    or its folder is not writable)."""
    store_path = Path(store_path).expanduser()
    return [
        store_path.parent / f"{store_path.name}.spool",
        user_data_path(APP, appauthor=False) / "spool",
    ]


def _store_key(store_path: Path) -> str:
    return str(Path(store_path).expanduser().resolve())


class SpoolError(OSError):
    """No spool folder could take the record."""


class Spool:
    """The writing side: appends records, moving to the next folder when one fails
    (a full disk), so that every record written is whole and somewhere."""

    def __init__(self, store_path: Path, run_id: str, head: dict[str, Any]) -> None:
        self.store_path = Path(store_path).expanduser()
        self.run_id = run_id
        self.head = {"t": "head", "v": VERSION, "store": _store_key(store_path), **head}
        self.paths: list[Path] = []
        self._fds: list[int] = []
        self._fd: int | None = None
        self._size = 0
        self._run: bytes | None = None
        self._dirs = spool_dirs(self.store_path)

    @property
    def path(self) -> Path | None:
        """The file being written now (the one to name to the user)."""
        return self.paths[-1] if self.paths else None

    def open(self) -> Path:
        """Create the first file that works; raises :class:`SpoolError` if none does."""
        self._next()
        assert self.path is not None
        return self.path

    def write_run(self, run: models.Run) -> None:
        record = b'{"t":"run","run":' + run.model_dump_json().encode() + b"}\n"
        self._run = record
        self._append(record)

    def write_logs(self, batch: LineBatch) -> None:
        record = {
            "t": "logs",
            "seq": batch.seq,
            "ts": batch.ts,
            "stream": batch.stream,
            "lines": batch.lines,
            "levels": {str(i): level for i, level in batch.levels.items()},
        }
        self._append(_compact(record) + b"\n")

    def close(self, *, delete: bool = False) -> None:
        """Release the lock (and the files, if their content is in the store)."""
        for path, fd in zip(self.paths, self._fds, strict=True):
            if delete:
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._fd = None

    def locked_files(self) -> list[Path]:
        return list(self.paths)

    # -- plumbing ----------------------------------------------------------------

    def _append(self, record: bytes) -> None:
        if self._fd is None:
            self._next()
        try:
            _write_all(self._require_fd(), record)
        except OSError:
            # Keep the file whole (a half record would read as garbage), and carry
            # on in the next folder: the head and the last run record come along.
            with contextlib.suppress(OSError):
                os.ftruncate(self._require_fd(), self._size)
            self._next(record)
            return
        self._size += len(record)

    def _require_fd(self) -> int:
        assert self._fd is not None
        return self._fd

    def _next(self, pending: bytes = b"") -> None:
        """Open a spool file in the next folder that takes the head, the last run
        record and ``pending``."""
        errors: list[str] = []
        while self._dirs:
            folder = self._dirs.pop(0)
            path = folder / f"{self.run_id}.{len(self.paths)}{SUFFIX}"
            fd: int | None = None
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                start = _compact(self.head) + b"\n"
                if self._run is not None and pending != self._run:
                    start += self._run
                _write_all(fd, start + pending)
            except OSError as exc:
                errors.append(f"{folder}: {exc.strerror or exc}")
                if fd is not None:
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        path.unlink()
                continue
            self.paths.append(path)
            self._fds.append(fd)
            self._fd = fd
            self._size = len(start) + len(pending)
            return
        self._fd = None
        raise SpoolError("; ".join(errors) or "no spool folder left")


def _compact(record: dict[str, Any]) -> bytes:
    """One record as compact JSON: ``{"t":"logs"`` is how the import finds them."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- importing -------------------------------------------------------------------


class _Parsed:
    """What a spool file holds: its head, its last run record, where its logs are."""

    def __init__(self, path: Path, store_key: str | None) -> None:
        """``store_key``: read no further than the head unless it names that store."""
        self.path = path
        self.head: dict[str, Any] = {}
        self.run: models.Run | None = None
        self.mtime = path.stat().st_mtime
        with path.open("rb") as f:
            self.head = _record(f.readline()) or {}
            if self.head.get("t") != "head" or (
                store_key is not None and self.head.get("store") != store_key
            ):
                return  # another store's spool (or not a spool): leave it be
            for raw in f:
                if raw.startswith(b'{"t":"logs"'):
                    continue  # read in the second pass, inside the transaction
                record = _record(raw)
                if record is not None and record.get("t") == "run":
                    self.run = models.Run.model_validate(record["run"])

    def batches(self) -> Iterator[LineBatch]:
        with self.path.open("rb") as f:
            for raw in f:
                if not raw.startswith(b'{"t":"logs"'):
                    continue
                record = _record(raw)
                if record is None:
                    continue
                levels = {int(i): str(v) for i, v in (record.get("levels") or {}).items()}
                yield LineBatch(
                    int(record["seq"]),
                    float(record["ts"]),
                    str(record["stream"]),
                    [str(line) for line in record["lines"]],
                    levels,
                )


def _record(raw: bytes) -> dict[str, Any] | None:
    """One record, or ``None`` for a torn last line (a writer killed mid-write)."""
    if not raw.endswith(b"\n"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _replaceable(run: models.Run) -> bool:
    """May a spooled final state replace the stored one? Only a state the wrapper
    could not update: still running, or marked lost meanwhile."""
    lost = run.status is Status.UNKNOWN and run.reason is not None and run.reason.type == "lost"
    return run.status in ACTIVE or lost


async def import_spool(store: SqliteStore, path: Path) -> str | None:
    """Import one spool file the caller holds the lock of; returns the run id, or
    ``None`` when the file is not this store's (or holds no run)."""
    # Next to the store, a spool is the store's even if the folder moved since.
    in_user_dir = path.parent != spool_dirs(store.path)[0]
    parsed = _Parsed(path, _store_key(store.path) if in_user_dir else None)
    spooled = parsed.run
    head = parsed.head
    if spooled is None:
        return None
    final = spooled.status not in ACTIVE
    conn = store._conn

    async def body() -> None:
        row = await store._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (spooled.id,))
        existing = store._parse(row, show_abort=False) if row else None
        if not isinstance(existing, models.Run):
            extra: dict[str, Any] = {"heartbeat_at": None, "abort_requested_at": None}
            if not final:  # its wrapper died while spooling: the reaper decides lost
                extra = {
                    "heartbeat_at": parsed.mtime,
                    "host": head.get("host"),
                    "pid": head.get("pid"),
                    "pid_start": head.get("pid_start"),
                }
            await store._write_run(spooled, await store._bump(), **extra)
        elif final and _replaceable(existing):
            merged = spooled.model_copy(update={"archived": existing.archived})
            await store._write_run(
                merged, await store._bump(), heartbeat_at=None, abort_requested_at=None
            )
        for batch in parsed.batches():
            for sql, params, many in statements(spooled.id, batch, or_ignore=True):
                if many:
                    await conn.executemany(sql, params)
                else:
                    await conn.execute(sql, params)

    await store._transaction(body)
    return spooled.id


async def import_spools(store: SqliteStore) -> list[str]:
    """Import every spool of ``store`` whose writer is gone (its lock is free) and
    delete each once its transaction has committed. Returns the run ids imported.
    A file that fails to import stays for the next try."""
    return await import_each(store.path, lambda path: import_spool(store, path))


async def import_each(key: Path, importer: Callable[[Path], Awaitable[str | None]]) -> list[str]:
    """Every spool named after ``key`` whose writer is gone (its lock is free) given
    to ``importer`` under that lock, and deleted once imported: the walk both
    stores share (each store imports a file its own way)."""
    imported: list[str] = []
    for folder in spool_dirs(key):
        try:
            paths = sorted(folder.glob(f"*{SUFFIX}"))
        except OSError:
            continue
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # another importer took it
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its wrapper is still writing it
                if os.fstat(fd).st_nlink == 0:
                    continue  # imported and deleted while we waited
                try:
                    run_id = await importer(path)
                except Exception:
                    continue
                if run_id is not None:
                    imported.append(run_id)
                    with contextlib.suppress(OSError):
                        path.unlink()
            finally:
                os.close(fd)
    return imported
