"""``jobwatch run -- CMD``: turn any command into a watched run.

The wrapper records the run, tees the command's output to its own terminal while
storing it line by line, heartbeats so a dead wrapper shows up as *lost*, and stops
the command's whole process group when someone asks for an abort (or presses
Ctrl-C). It exits with the command's own exit code, so cron and CI see no change.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from jobwatch.core import Reason, Run, RunError, Status, utcnow
from jobwatch.sources.local import SqliteStore, procs

FLUSH_EVERY_S = 0.5
HEARTBEAT_EVERY_S = 5.0
MAX_LINE_BYTES = 64 * 1024
TAIL_LINES = 5
"""How many last stderr lines become the error message of a failed run."""

_ERROR = re.compile(r"\b(error|errors|fatal|critical|exception|traceback|panic)\b", re.I)
_WARN = re.compile(r"\b(warn|warning|deprecated)\b", re.I)
_DEBUG = re.compile(r"\b(debug|trace)\b", re.I)


def classify(text: str) -> str:
    """A log level guessed from the words of a line: cheap and good enough to jump
    to the first error of a plain command's output."""
    if _ERROR.search(text):
        return "error"
    if _WARN.search(text):
        return "warn"
    if _DEBUG.search(text):
        return "debug"
    return "info"


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


@dataclass
class _Output:
    """Lines waiting to be flushed, plus the stderr tail kept for the error message."""

    pending: list[tuple[float, str, str, str]] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)

    def add(self, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        self.pending.append((time.time(), stream, classify(text), text))
        if stream == "stderr":
            self.stderr_tail.append(text)
            del self.stderr_tail[:-TAIL_LINES]

    def take(self) -> list[tuple[float, str, str, str]]:
        lines, self.pending = self.pending, []
        return lines


async def _pump(reader: asyncio.StreamReader, stream: str, out: _Output, tee: BinaryIO) -> None:
    """Copy one pipe to the wrapper's own stream and split it into stored lines.

    Reads chunks rather than ``readline`` so an endless line cannot blow the buffer:
    lines longer than :data:`MAX_LINE_BYTES` are stored in pieces.
    """
    partial = b""
    while chunk := await reader.read(65536):
        with contextlib.suppress(OSError, ValueError):
            tee.write(chunk)
            tee.flush()
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for line in lines:
            out.add(stream, line)
        while len(partial) > MAX_LINE_BYTES:
            out.add(stream, partial[:MAX_LINE_BYTES])
            partial = partial[MAX_LINE_BYTES:]
    if partial:
        out.add(stream, partial)


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal the whole process group; False once nobody is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """Any non-zombie process left in group ``pgid``? (zombies only await a reaper)"""
    if not _signal_group(pgid, 0):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


class Wrapper:
    """Runs one command as a watched run in ``store``."""

    def __init__(
        self,
        store: SqliteStore,
        argv: Sequence[str],
        *,
        job: str | None = None,
        label: str | None = None,
        grace: float = 10.0,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> None:
        self.store = store
        self.argv = list(argv)
        self.job = job or Path(self.argv[0]).name
        self.label = label or shlex.join(self.argv)
        self.grace = grace
        self.run_id = new_run_id()
        self.out = _Output()
        self._stdout = stdout or sys.stdout.buffer
        self._stderr = stderr or sys.stderr.buffer
        self._abort_by: str | None = None
        self._abort_event = asyncio.Event()

    def request_abort(self, by: str) -> None:
        """Called from a signal handler or the store poll: start stopping the command."""
        if self._abort_by is None:
            self._abort_by = by
        self._abort_event.set()

    async def run(self) -> int:
        now = utcnow()
        run = Run(
            id=self.run_id,
            source=self.store.name,
            job=self.job,
            label=self.label,
            type="command",
            status=Status.RUNNING,
            status_raw="running",
            created_at=now,
            started_at=now,
            updated_at=now,
            owner=f"{getpass.getuser()}@{procs.HOST}",
            config={"argv": self.argv, "cwd": os.getcwd(), "grace_s": self.grace},
            metadata={"wrapper_pid": os.getpid(), "host": procs.HOST},
        )
        await self.store.add(run, managed_by=os.getpid())
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=None,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own group: abort stops it and its children
            )
        except OSError as exc:
            await self._finish(Status.FAILED, 127, RunError(code="exec-failed", message=str(exc)))
            print(f"jobwatch: cannot start {self.argv[0]}: {exc}", file=sys.stderr)
            return 127
        try:  # the process group to look for; never worth losing the command over
            await self.store.update(
                self.run_id,
                lambda run: run.evolve(metadata={**(run.metadata or {}), "pid": proc.pid}),
            )
        except Exception as exc:
            print(f"jobwatch: cannot record pid {proc.pid}: {exc}", file=sys.stderr)
        return await self._supervise(proc)

    async def _supervise(self, proc: asyncio.subprocess.Process) -> int:
        assert proc.stdout is not None and proc.stderr is not None
        pgid = proc.pid
        pumps = asyncio.gather(
            _pump(proc.stdout, "stdout", self.out, self._stdout),
            _pump(proc.stderr, "stderr", self.out, self._stderr),
        )
        ticker = asyncio.create_task(self._tick())
        stopper = asyncio.create_task(self._stop_on_abort(proc, pgid))
        try:
            await pumps
            returncode = await proc.wait()
        finally:
            ticker.cancel()
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
        if self._abort_by is not None and _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)  # leftovers that ignored SIGTERM
        await self._flush()
        return await self._record_exit(returncode)

    async def _record_exit(self, returncode: int) -> int:
        exit_code = returncode if returncode >= 0 else 128 - returncode
        if self._abort_by is not None:
            reason = Reason(type="aborted", message=f"aborted by {self._abort_by}")
            await self._finish(Status.ABORTED, exit_code, None, reason)
        elif returncode == 0:
            await self._finish(Status.SUCCEEDED, 0, None)
        else:
            if returncode < 0:
                code = f"signal-{signal.Signals(-returncode).name}"
            else:
                code = f"exit-{returncode}"
            message = "\n".join(self.out.stderr_tail) or f"exited with {exit_code}"
            await self._finish(Status.FAILED, exit_code, RunError(code=code, message=message))
        return exit_code

    async def _finish(
        self,
        status: Status,
        exit_code: int,
        error: RunError | None,
        reason: Reason | None = None,
    ) -> None:
        now = utcnow()
        await self.store.update(
            self.run_id,
            lambda run: run.evolve(
                status=status,
                status_raw=status.value,
                exit_code=exit_code,
                ended_at=now,
                updated_at=now,
                error=error,
                reason=reason,
            ),
            release=True,
        )

    async def _flush(self) -> None:
        lines = self.out.take()
        if not lines:
            return
        try:
            await self.store.append_logs(self.run_id, lines)
        except Exception as exc:  # the command matters more than its log
            self.out.pending[:0] = lines
            del self.out.pending[:-100_000]  # bounded while the store is unavailable
            print(f"jobwatch: cannot write log lines yet: {exc}", file=sys.stderr)

    async def _tick(self) -> None:
        """Flush output, heartbeat, and look for an abort request, all on one beat."""
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._flush()
            try:
                if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
                    await self.store.heartbeat([self.run_id])
                    last_beat = time.monotonic()
                by = await self.store.abort_requested(self.run_id)
            except Exception as exc:
                print(f"jobwatch: store unavailable: {exc}", file=sys.stderr)
                continue
            if by is not None:
                self.request_abort(by)

    async def _stop_on_abort(self, proc: asyncio.subprocess.Process, pgid: int) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after the grace period."""
        await self._abort_event.wait()
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            if proc.returncode is not None and not _group_alive(pgid):
                return
            await asyncio.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)


async def run_command(
    store_path: Path,
    argv: Sequence[str],
    *,
    job: str | None = None,
    label: str | None = None,
    grace: float = 10.0,
) -> int:
    """Entry point of ``jobwatch run``: wrap ``argv`` and return its exit code."""
    async with SqliteStore(store_path) as store:
        wrapper = Wrapper(store, argv, job=job, label=label, grace=grace)
        loop = asyncio.get_running_loop()
        for sig, who in (
            (signal.SIGINT, "Ctrl-C on the wrapper"),
            (signal.SIGTERM, "SIGTERM to the wrapper"),
            (signal.SIGHUP, "hang-up of the wrapper's terminal"),
        ):
            loop.add_signal_handler(sig, wrapper.request_abort, f"{getpass.getuser()} ({who})")
        return await wrapper.run()
