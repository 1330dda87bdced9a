"""``jobwatch run -- CMD``: turn any command into a watched run.

The wrapper starts the command first, whatever state the store is in, tees its
output to its own terminal as it reads it, and stores every line. It exits with
the command's own exit code, so cron and CI see no change.

The output goes through :mod:`jobwatch.apps.pipeline` (pipe readers, a bounded
backlog, one writer thread). If the store cannot be opened or stops taking
writes, the run goes to a spool file (see :mod:`jobwatch.sources.local.spool`)
and the command goes on untouched; the run comes back complete when a later
``jobwatch run`` imports the spool.

Abort (from the store or a signal to the wrapper) stops the command's process
group; the outcome recorded is what really happened: a command that had already
finished keeps its own exit code, and the late request is only noted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import os
import shlex
import signal
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobwatch.apps.capture import classify
from jobwatch.apps.pipeline import EOF, Backlog, Say, Writer, describe, read_pipe
from jobwatch.apps.snapshot import build_snapshot
from jobwatch.core import Reason, Run, RunError, Status, utcnow
from jobwatch.core.fingerprints import FP_META, fingerprints
from jobwatch.core.redact import clean, redact
from jobwatch.sources.local import SqliteStore, procs
from jobwatch.sources.local.logsink import LOCK_WAIT_S
from jobwatch.sources.local.spool import import_spool, import_spools
from jobwatch.sources.postgres.dsn import is_dsn

if TYPE_CHECKING:
    from jobwatch.sources.local.logsink import StoreSink
    from jobwatch.sources.postgres.sink import PgSink
    from jobwatch.sources.postgres.store import PostgresStore

    Store = SqliteStore | PostgresStore

__all__ = ["Wrapper", "classify", "new_run_id", "run_command"]

HEARTBEAT_EVERY_S = 2.0
POLL_ABORT_EVERY_S = 0.5
COMMANDS_FALLBACK_S = 5.0
"""On PostgreSQL the wrapper LISTENs for its host's commands; it still looks this
often, in case a notification was lost (a writer older than the channel)."""
LATE_ABORT = "abort requested after it had finished"


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def _still_locked(path: Path, wait: float) -> str | None:
    """Why the store is unusable if another process keeps its write lock for
    ``wait`` seconds, else ``None`` (also when it is no database: opening it says
    what is wrong). Asked first on a connection of its own, because a store
    connection that waits for the lock cannot be stopped before its own, longer,
    timeout, and the wrapper could not exit until then."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=wait, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return f"the store {path} stayed locked by another process for {wait:g} s"
    except sqlite3.Error:
        pass
    return None


# -- the wrapper -------------------------------------------------------------------


class Wrapper:
    """Runs one command as a watched run in the store at ``store_path`` (a file,
    or a PostgreSQL DSN: the same writes through the same interface)."""

    def __init__(
        self,
        store_path: Path | str,
        argv: Sequence[str],
        *,
        job: str | None = None,
        label: str | None = None,
        grace: float = 10.0,
        lock_wait: float = LOCK_WAIT_S,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        run_id: str | None = None,
        rerun_of: str | None = None,
        snapshot_env: Sequence[str] = (),
        snapshot_files: Sequence[str] = (),
        every: tuple[float, float] | None = None,
    ) -> None:
        self.dsn = str(store_path) if is_dsn(str(store_path)) else None
        if self.dsn is not None:
            from jobwatch.sources.postgres.dsn import describe
            from jobwatch.sources.postgres.spool import spool_key

            self.store_path = spool_key(self.dsn)  # what its spools are named after
            self.store_name = describe(self.dsn)
        else:
            self.store_path = Path(store_path).expanduser()
            self.store_name = str(self.store_path)
        self.lock_wait = lock_wait
        self.argv = list(argv)
        self.job = job or Path(self.argv[0]).name
        # The default label is the command line, redacted: the run document never
        # holds the argv in clear (a rerun reads it from the store's own table).
        self.label = label or clean(shlex.join(self.argv))
        self.grace = grace
        self.run_id = run_id or new_run_id()
        self.rerun_of = rerun_of
        self.cwd = os.getcwd()
        self.snapshot_env = tuple(snapshot_env)
        self.snapshot_files = tuple(snapshot_files)
        self._rerun_spec: dict[str, Any] = {
            "argv": self.argv,
            "cwd": self.cwd,
            "host": procs.HOST,
            "job": job,
            "label": label,
            "grace": grace,
            "snapshot_env": list(self.snapshot_env),
            "snapshot_files": list(self.snapshot_files),
        }
        self._snapshot_raw: dict[str, Any] = {}
        self._config: dict[str, Any] | None = None
        self.every = every
        """``(every_s, grace_s)`` from ``--every``/``--late-grace``: recorded in the
        store's ``schedules`` so a missed start shows as late."""
        self.say = Say(stderr_fd)
        self._fds = (stdout_fd, stderr_fd)
        self._abort_by: str | None = None
        self._abort_at: str | None = None
        self._abort_event = asyncio.Event()
        self._interrupted: int | None = None
        self._signalled = False
        """True once an abort signal reached a live process of the command's group."""
        self._group: tuple[int, str | None] | None = None
        """The command's process group and its leader's start token."""
        self._spawn_error: OSError | None = None
        self._ended: datetime | None = None

    def request_abort(self, by: str) -> None:
        """From a signal handler or the store poll: start stopping the command."""
        if self._abort_by is None:
            self._abort_by = by
            self._abort_at = utcnow().isoformat()
        self._abort_event.set()

    def interrupt(self, sig: int, by: str) -> None:
        """The wrapper itself got ``sig``: abort, and exit as a shell would."""
        if self._interrupted is None:
            self._interrupted = sig
        self.request_abort(by)

    def _snapshot(self) -> dict[str, Any]:
        """The configuration snapshot, redacted (what the run document holds)."""
        self._snapshot_raw = build_snapshot(
            self.argv,
            cwd=self.cwd,
            env_names=self.snapshot_env,
            files=self.snapshot_files,
            warn=self.say,
        )
        shown: dict[str, Any] = redact(self._snapshot_raw)
        return {**shown, "grace_s": self.grace}

    async def _fingerprinted(self, store: Store, run: Run) -> Run:
        """The run with salted fingerprints of its snapshot's hidden values (a local
        store only: its key stays in that store; see core/fingerprints.py)."""
        if not isinstance(store, SqliteStore) or run.config is None:
            return run
        try:
            key = await asyncio.wait_for(store.fingerprint_key(), self.lock_wait)
        except Exception:
            return run  # no fingerprints: the diff says "not comparable"
        shown = {k: v for k, v in run.config.items() if k != "grace_s"}
        meta = dict(run.metadata or {})
        meta[FP_META] = fingerprints(self._snapshot_raw, shown, key)
        return run.evolve(metadata=meta)

    async def _keep_command(self, store: Store) -> None:
        """What a rerun needs, in the local store's own table only."""
        if not isinstance(store, SqliteStore):
            return  # the shared store keeps no command lines (see sources/local/commands)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                store.keep_command(self.run_id, self._rerun_spec), self.lock_wait
            )

    def _run_record(self, started: Any) -> Run:
        meta: dict[str, Any] = {"wrapper_pid": os.getpid(), "host": procs.HOST}
        if self.rerun_of is not None:
            meta["rerun_of"] = self.rerun_of
        if self._group is not None:
            # What identifies the command's group, even after the wrapper is gone.
            pgid, token = self._group
            meta.update(pid=pgid, pgid=pgid, pid_start=token)
        return Run(
            id=self.run_id,
            source="local",
            job=self.job,
            label=self.label,
            type="command",
            status=Status.RUNNING,
            status_raw="running",
            created_at=started,
            started_at=started,
            updated_at=started,
            owner=f"{getpass.getuser()}@{procs.HOST}",
            config=self._config,
            metadata=meta,
        )

    async def run(self) -> int:
        # Before the command starts, so the files are read as it will find them.
        # Reading them never stops it: a bad file is a warning and a note.
        try:
            self._config = self._snapshot()
        except Exception as exc:  # a bug: the command still runs
            self.say(f"jobwatch: warning: no configuration snapshot: {exc!r}")
            self._config = {"argv": redact(self.argv), "cwd": self.cwd, "grace_s": self.grace}
        started = utcnow()
        proc: asyncio.subprocess.Process | None = None
        pipes = [os.pipe(), os.pipe()]
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=None,
                stdout=pipes[0][1],
                stderr=pipes[1][1],
                start_new_session=True,  # its own group: abort stops it and its children
            )
        except OSError as exc:
            self._spawn_error = exc
            self.say(f"jobwatch: cannot start {self.argv[0]}: {exc.strerror or exc}")
        else:
            self._group = (proc.pid, procs.start_token(proc.pid))
        finally:
            for _, write_end in pipes:
                os.close(write_end)

        out = Backlog()
        head = {
            "run_id": self.run_id,
            "host": procs.HOST,
            "pid": os.getpid(),
            "pid_start": procs.start_token(os.getpid()),
        }
        writer = Writer(
            self.store_path, self.run_id, out, self.say, head, self.lock_wait, sink=self._sink
        )
        run = self._run_record(started)
        writer.run_record = run
        writing = asyncio.ensure_future(asyncio.to_thread(writer.run))
        readers: list[Awaitable[None]] = []
        for (read_end, _), stream, fd in zip(pipes, ("stdout", "stderr"), self._fds, strict=True):
            if proc is None:
                os.close(read_end)
                out.put(EOF)
            else:
                readers.append(asyncio.to_thread(read_pipe, read_end, stream, fd, out))
        reading = asyncio.gather(*readers)
        stopper = asyncio.ensure_future(self._stop_on_abort(proc)) if proc is not None else None
        exited = asyncio.ensure_future(self._exit_of(proc)) if proc is not None else None

        store = await self._open_store(writer)
        added = False
        side: list[asyncio.Future[Any]] = []
        importing: asyncio.Future[list[str]] | None = None
        if store is not None:
            writer.use_store()
            run = await self._fingerprinted(store, run)
            writer.run_record = run
            await self._keep_command(store)
            if proc is not None:  # (a command that never started is recorded at its end)
                record = store.add(run, managed_by=os.getpid())
                added = await self._attempt(record, writer, "record")
                side = [
                    asyncio.ensure_future(self._heartbeat(store)),
                    asyncio.ensure_future(self._poll_abort(store)),
                ]
            if self.every is not None:
                await self._record_schedule(store)
            importing = asyncio.ensure_future(_import_spools(store))
        returncode = await exited if exited is not None else None
        for step in (reading, writing):
            try:
                await step
            except Exception as exc:  # a bug: the exit code still matters more
                self.say.once("bug", f"jobwatch: internal error while storing output: {exc!r}")
        for task in side:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if stopper is not None:
            if self._signalled and self._group and procs.group_alive(*self._group):
                procs.signal_group(self._group[0], signal.SIGKILL)  # leftovers ignoring SIGTERM
            stopper.cancel()
            with contextlib.suppress(BaseException):
                await stopper

        exit_code = self._exit_code(returncode)
        tail = writer.stderr_tail()

        def final(current: Run) -> Run:
            return self._final(current, returncode, exit_code, tail)

        try:
            await self._record_final(store, writer, final, run, added)
        except Exception as exc:  # a bug: the exit code still matters more
            self.say.once("bug", f"jobwatch: internal error while recording the end: {exc!r}")
        if store is not None:
            if importing is not None:
                with contextlib.suppress(Exception):
                    await importing
            with contextlib.suppress(Exception):
                await store.close()
        if writer.spool is not None:
            writer.spool.close()
        if self._signalled and self._interrupted is not None:
            return 128 + self._interrupted
        return exit_code

    async def _exit_of(self, proc: asyncio.subprocess.Process) -> int:
        """The command's return code; its end time is the run's end, however long
        the store takes (to open, to take the lines) after it."""
        returncode = await proc.wait()
        self._ended = utcnow()
        return returncode

    def _exit_code(self, returncode: int | None) -> int:
        if returncode is None:  # it never started: what a shell says
            missing = self._spawn_error is not None and self._spawn_error.errno == errno.ENOENT
            return 127 if missing else 126
        return returncode if returncode >= 0 else 128 - returncode

    def _sink(self) -> StoreSink | PgSink:
        """The writer thread's own connection for log lines."""
        if self.dsn is not None:
            from jobwatch.sources.postgres.sink import PgSink

            return PgSink(self.dsn, self.run_id, lock_wait=self.lock_wait)
        from jobwatch.sources.local.logsink import StoreSink

        return StoreSink(self.store_path, self.run_id, lock_wait=self.lock_wait)

    async def _open_store(self, writer: Writer) -> Store | None:
        """The store, or ``None`` (the run goes to a spool) if it cannot be used."""
        store: Store
        if self.dsn is not None:
            from jobwatch.sources.postgres.store import PostgresStore

            store = PostgresStore(self.dsn)
        else:
            locked = await asyncio.to_thread(_still_locked, self.store_path, self.lock_wait)
            if locked is not None:
                writer.fail(locked)
                return None
            store = SqliteStore(self.store_path)
        try:
            await asyncio.wait_for(store.open(), self.lock_wait)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await store.close()
            reason = describe(exc)
            where = "" if self.store_name in reason else f" {self.store_name}"
            writer.fail(f"cannot open the store{where}: {reason}")
            return None
        with contextlib.suppress(Exception):
            await store.set_lock_wait(self.lock_wait)
        return store

    async def _record_schedule(self, store: Store) -> None:
        """What the next start is expected by; a failure to record it is said and
        does not touch the run (its lines and outcome matter more)."""
        from jobwatch.sources.activity import Schedule

        assert self.every is not None
        every_s, grace_s = self.every
        try:
            await asyncio.wait_for(
                store.set_schedule(Schedule("local", self.job, every_s, None, grace_s)),
                self.lock_wait,
            )
        except Exception as exc:
            self.say(f"jobwatch: cannot record the schedule of {self.job}: {describe(exc)}")

    async def _attempt(self, op: Awaitable[Any], writer: Writer, what: str) -> bool:
        """Run a store write; on failure the run goes to a spool (said once)."""
        try:
            await asyncio.wait_for(op, self.lock_wait)
        except Exception as exc:
            writer.fail(f"cannot {what} {self.run_id} in store {self.store_name}: {describe(exc)}")
            return False
        return True

    def _final(self, current: Run, returncode: int | None, exit_code: int, tail: list[str]) -> Run:
        """The outcome: what really happened to the command."""
        meta = dict(current.metadata or {})
        requested_by = meta.pop("abort_requested_by", None) or self._abort_by
        requested_at = meta.pop("abort_requested_at", None) or self._abort_at
        error: RunError | None = None
        reason: Reason | None = None
        if returncode is None:
            status = Status.FAILED
            why = self._spawn_error.strerror if self._spawn_error else None
            error = RunError(code="exec-failed", message=f"cannot start {self.argv[0]}: {why}")
        elif self._signalled:
            status = Status.ABORTED
            reason = Reason(type="aborted", message=f"aborted by {self._abort_by}")
        else:
            status = Status.SUCCEEDED if returncode == 0 else Status.FAILED
            if returncode != 0:
                if returncode < 0:
                    code = f"signal-{signal.Signals(-returncode).name}"
                else:
                    code = f"exit-{returncode}"
                message = "\n".join(tail) or f"exited with {exit_code}"
                error = RunError(code=code, message=message)
            if requested_by is not None:  # it finished before the abort could land
                meta.update(abort_requested_by=requested_by, abort_requested_at=requested_at)
                reason = Reason(type="abort-late", message=LATE_ABORT)
        return current.evolve(
            status=status,
            status_raw=status.value,
            exit_code=exit_code,
            ended_at=self._ended or utcnow(),
            updated_at=utcnow(),
            error=error,
            reason=reason,
            metadata=meta,
        )

    async def _record_final(
        self,
        store: Store | None,
        writer: Writer,
        final: Callable[[Run], Run],
        run: Run,
        added: bool,
    ) -> None:
        """The final state goes to the store. If the lines went to a spool, it goes
        there too, and the spool into the store at once if the store takes it now."""
        if writer.spool is not None or store is None:
            writer.keep_run(final(run))
            if store is None or await self._import_own(store, writer):
                return
            if not added:
                return
            # The spool stays; the store may still take the outcome on its own.
            with contextlib.suppress(Exception):
                op = store.update(self.run_id, final, release=True, see_abort=True)
                await asyncio.wait_for(op, self.lock_wait)
            return
        if added:
            op = store.update(self.run_id, final, release=True, see_abort=True)
        else:
            op = store.add(final(run))
        if not await self._attempt(op, writer, "record the end of"):
            writer.keep_run(final(run))
            await self._import_own(store, writer)  # in case the trouble was passing

    async def _import_own(self, store: Store, writer: Writer) -> bool:
        """Bring this run's own spool into the store (the wrapper holds the files'
        locks); True when done and the files are gone."""
        spool = writer.spool
        if spool is None:
            return False
        try:
            for path in spool.paths:
                await asyncio.wait_for(_import_spool(store, path), self.lock_wait)
        except Exception:
            return False  # the files stay for the next `jobwatch run`
        spool.close(delete=True)
        writer.spool = None
        return True

    async def _heartbeat(self, store: Store) -> None:
        """Say the wrapper lives; take the run back if a reaper marked it lost while
        the wrapper stalled."""
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            with contextlib.suppress(Exception):
                await store.rearm(self.run_id, os.getpid())

    async def _poll_abort(self, store: Store) -> None:
        """Claim an abort asked for this run: on PostgreSQL when this host's
        commands channel says one was asked (a slow poll as the fallback), on
        SQLite by polling."""
        while True:
            if isinstance(store, SqliteStore):
                await asyncio.sleep(POLL_ABORT_EVERY_S)
            else:
                await store.wait_command(COMMANDS_FALLBACK_S)
            try:
                by = await store.abort_requested(self.run_id)
            except Exception:
                continue
            if by is not None:
                self.request_abort(by)

    async def _stop_on_abort(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after the grace period.
        Nothing is signalled (and the abort does not count) if nothing of the
        command is left to stop: it finished on its own."""
        await self._abort_event.wait()
        assert self._group is not None
        pgid, token = self._group
        if not procs.group_alive(pgid, token):
            return  # nothing left to stop: the outcome is the command's own
        self._signalled = True
        procs.signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            if proc.returncode is not None and not procs.group_alive(pgid, token):
                return
            await asyncio.sleep(0.05)
        procs.signal_group(pgid, signal.SIGKILL)


async def _import_spools(store: Store) -> list[str]:
    if isinstance(store, SqliteStore):
        return await import_spools(store)
    from jobwatch.sources.postgres.spool import import_spools as import_pg

    return await import_pg(store)


async def _import_spool(store: Store, path: Path) -> str | None:
    if isinstance(store, SqliteStore):
        return await import_spool(store, path)
    from jobwatch.sources.postgres.spool import import_spool as import_pg

    return await import_pg(store, path)


async def run_command(
    store_path: Path | str,
    argv: Sequence[str],
    *,
    job: str | None = None,
    label: str | None = None,
    grace: float = 10.0,
    lock_wait: float = LOCK_WAIT_S,
    run_id: str | None = None,
    rerun_of: str | None = None,
    snapshot_env: Sequence[str] = (),
    snapshot_files: Sequence[str] = (),
    every: tuple[float, float] | None = None,
) -> int:
    """Entry point of ``jobwatch run``: wrap ``argv`` and return its exit code."""
    wrapper = Wrapper(
        store_path,
        argv,
        job=job,
        label=label,
        grace=grace,
        lock_wait=lock_wait,
        run_id=run_id,
        rerun_of=rerun_of,
        snapshot_env=snapshot_env,
        snapshot_files=snapshot_files,
        every=every,
    )
    loop = asyncio.get_running_loop()
    for sig, who in (
        (signal.SIGINT, "Ctrl-C on the wrapper"),
        (signal.SIGTERM, "SIGTERM to the wrapper"),
        (signal.SIGHUP, "hang-up of the wrapper's terminal"),
    ):
        loop.add_signal_handler(sig, wrapper.interrupt, sig, f"{getpass.getuser()} ({who})")
    return await wrapper.run()
