"""The output's way from the command's pipes to the store, or to a spool.

One reader thread per pipe reads, tees the raw bytes to the wrapper's own stream
at once and cuts complete lines into blocks; a backlog bounded in bytes sits
between the readers and the one writer thread. When the store falls behind the
backlog fills, the readers stop reading and the command blocks on its own
writes: memory stays bounded. The writer stores blocks in big transactions on a
connection of its own and, from the first failure on, in a spool file instead;
it is never cancelled and always drains the backlog, so the command never hangs
on a broken store.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from jobwatch.apps.capture import Splitter, to_lines
from jobwatch.core import Run
from jobwatch.core.redact import clean
from jobwatch.sources.local.logsink import LineBatch, StoreSink
from jobwatch.sources.local.spool import Spool, SpoolError

READ_BYTES = 64 * 1024
BACKLOG_BYTES = 4 * 1024 * 1024
"""Output read but not yet stored, at most: the wrapper's memory bound."""
BACKLOG_BLOCKS = 50_000
"""…and at most this many blocks (each read is one: a command that flushes every
line makes many small ones)."""
TAIL_LINES = 5
"""How many last stderr lines become the error message of a failed run."""

EOF = None
_WAKE = ("", 0.0, b"")
"""Queued to wake the writer when the store failed elsewhere (no line in it)."""
Item = tuple[str, float, bytes] | None


class LineSink(Protocol):
    """Where the writer thread stores lines: the SQLite file's or PostgreSQL's sink."""

    def write(self, batches: Iterable[LineBatch]) -> None: ...

    def close(self) -> None: ...


class Backlog:
    """Blocks between the pipe readers and the writer, bounded in bytes: a full
    backlog blocks the readers, so the pipes fill and the command waits."""

    def __init__(self, max_bytes: int = BACKLOG_BYTES, max_items: int = BACKLOG_BLOCKS) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._items: deque[Item] = deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Item) -> None:
        size = len(item[2]) if item is not None else 0
        with self._cond:
            while self._items and (
                self._bytes + size > self.max_bytes or len(self._items) >= self.max_items
            ):
                self._cond.wait()
            self._items.append(item)
            self._bytes += size
            self._cond.notify_all()

    def nudge(self, item: Item) -> None:
        """Queue ``item`` without waiting (from the event loop, which must not block)."""
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def take(self) -> list[Item]:
        """Everything queued (waiting for at least one item)."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()
        return items


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # a non-blocking terminal: wait until it drains
            select.select([], [fd], [], 1.0)


class Say:
    """The wrapper's own messages: straight to fd 2, never raising (its stderr may
    be a file on the very disk that is full), each kind of trouble told once."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self._told: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            _write_all(self.fd, (clean(text) + "\n").encode("utf-8", errors="replace"))

    def once(self, kind: str, text: str) -> None:
        with self._lock:
            if kind in self._told:
                return
            self._told.add(kind)
        self(text)


def describe(exc: BaseException) -> str:
    """An exception in words for the one message on stderr."""
    if isinstance(exc, TimeoutError):
        return "still locked by another process"
    return str(exc) or type(exc).__name__


# -- reading the pipes -------------------------------------------------------------


def read_pipe(fd: int, stream: str, tee_fd: int, out: Backlog) -> None:
    """Copy one pipe to the wrapper's own stream as it comes, and queue its lines.

    ``put`` blocks while the backlog is full: the pipe is then not read, and the
    command blocks on its next write. The raw bytes are teed unchanged.
    """
    splitter = Splitter()
    tee = True
    try:
        while True:
            try:
                chunk = os.read(fd, READ_BYTES)
            except OSError:
                break
            if not chunk:
                break
            if tee:
                try:
                    _write_all(tee_fd, chunk)
                except (OSError, ValueError):
                    tee = False  # the terminal went away (or its disk is full)
            now = time.time()
            for block in splitter.feed(chunk):
                out.put((stream, now, block))
        for block in splitter.close():
            out.put((stream, time.time(), block))
    finally:
        out.put(EOF)
        with contextlib.suppress(OSError):
            os.close(fd)


# -- storing them ------------------------------------------------------------------


class Writer:
    """The one thread that stores output: in the store while it takes writes, in
    a spool from the first failure on, and (if no spool folder works either)
    nowhere, but the backlog is always drained so the command never hangs on it."""

    def __init__(
        self,
        store_path: Path,
        run_id: str,
        out: Backlog,
        say: Say,
        head: dict[str, Any],
        lock_wait: float,
        sink: Callable[[], LineSink] | None = None,
    ) -> None:
        self.store_path = store_path
        self._make_sink = sink or (lambda: StoreSink(store_path, run_id, lock_wait=lock_wait))
        self.lock_wait = lock_wait
        self.run_id = run_id
        self.out = out
        self.say = say
        self.head = head
        self.run_record: Run | None = None
        """The latest run record: what a spool starts with. Set by the main thread."""
        self.spool: Spool | None = None
        self.seq = 1
        self._ready = threading.Event()
        self._failure: str | None = None
        self._sink: LineSink | None = None
        self._gave_up = False
        self._stderr_blocks: deque[bytes] = deque(maxlen=TAIL_LINES)

    # called from the main thread

    def use_store(self) -> None:
        """The store is open (its schema exists): start writing to it."""
        self._ready.set()

    def fail(self, why: str) -> None:
        """The store failed for the main thread: spool from now on."""
        if self._failure is None:
            self._failure = why
        self._ready.set()
        self.out.nudge(_WAKE)

    def stderr_tail(self) -> list[str]:
        lines: list[str] = []
        for block in self._stderr_blocks:
            lines += to_lines(block)[0]
        return lines[-TAIL_LINES:]

    def keep_run(self, run: Run) -> None:
        """Put ``run`` in the spool (after the thread has ended), opening one if the
        store failed only now."""
        self.run_record = run
        if self.spool is None:
            if not self._gave_up:  # a new spool starts with the run record
                self._open_spool(self._failure or "the store failed")
            return
        try:
            self.spool.write_run(run)
        except SpoolError as exc:
            self._give_up(describe(exc))

    # the thread

    def run(self) -> None:
        self._ready.wait()
        if self._failure is None:
            try:
                self._sink = self._make_sink()
            except Exception as exc:  # any store kind's error: spool instead
                self._failure = f"cannot write to store {self.store_path}: {describe(exc)}"
        if self._failure is not None:
            self._switch(self._failure)
        ends = 0
        while ends < 2:
            got = self.out.take()
            items = [item for item in got if item is not None and item is not _WAKE]
            ends += sum(1 for item in got if item is None)
            if self._failure is not None and self._sink is not None:
                self._switch(self._failure)
            if not items:
                continue
            try:
                self._write(items)
            except Exception as exc:  # a bug: drop these lines, never stop draining
                self._advance(items)
                self.say.once("bug", f"jobwatch: internal error while storing output: {exc!r}")
        if self._sink is not None:
            self._sink.close()

    def _batches(self, items: list[tuple[str, float, bytes]]) -> Iterator[LineBatch]:
        seq = self.seq
        for stream, ts, block in items:
            lines, levels = to_lines(block)
            yield LineBatch(seq, ts, stream, lines, levels)
            seq += len(lines)

    def _write(self, items: list[tuple[str, float, bytes]]) -> None:
        if self._sink is not None:
            try:
                self._sink.write(self._batches(items))
            except Exception as exc:
                self._failure = f"cannot write to store {self.store_path}: {describe(exc)}"
                self._switch(self._failure)
            else:
                self._advance(items)
                return
        if self.spool is not None:
            try:
                for batch in self._batches(items):
                    self.spool.write_logs(batch)
            except SpoolError as exc:
                self._give_up(describe(exc))
        self._advance(items)

    def _advance(self, items: list[tuple[str, float, bytes]]) -> None:
        for stream, _ts, block in items:
            self.seq += block.count(b"\n") + 1
            if stream == "stderr":
                self._stderr_blocks.append(block)

    def _switch(self, why: str) -> None:
        """From the store to a spool, for the rest of the run."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self.spool is None and not self._gave_up:
            self._open_spool(why)

    def _open_spool(self, why: str) -> None:
        spool = Spool(self.store_path, self.run_id, self.head)
        try:
            path = spool.open()
            if self.run_record is not None:
                spool.write_run(self.run_record)
        except SpoolError as exc:
            self._gave_up = True
            self.say.once(
                "lost",
                f"jobwatch: {why}; no spool folder takes the output either ({describe(exc)}): "
                "the command goes on, its output is only passed through",
            )
            return
        self.spool = spool
        self.say.once(
            "spool",
            f"jobwatch: {why}; the command goes on and {self.run_id} is kept in {path} "
            "until a later `jobwatch run` imports it",
        )

    def _give_up(self, why: str) -> None:
        self._gave_up = True
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        self.say.once(
            "lost", f"jobwatch: the spool failed too ({why}): later output is only passed through"
        )
