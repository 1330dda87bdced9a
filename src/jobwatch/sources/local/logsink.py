"""Writing a run's log lines fast: many lines per statement, many per transaction.

``executemany`` costs about two microseconds a row in Python's sqlite3 module;
handing SQLite one JSON array per block of lines and letting ``json_each`` expand
it costs a fraction of that, and the whole statement runs without the GIL. The
writer picks the sequence numbers itself, so a batch written twice (once to the
store, once to a spool after an error whose outcome was unclear) is harmless:
an import inserts or ignores by ``(run_id, seq)``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

LOCK_WAIT_S = 30.0
"""How long a write waits for another process's lock, by default, before the
store is treated as unusable for the rest of the run (its lines then go to a
spool)."""


class LineBatch(NamedTuple):
    """Consecutive lines of one stream, read at one time: ``seq`` is the first's."""

    seq: int
    ts: float
    stream: str
    lines: list[str]
    levels: dict[int, str]
    """Levels other than ``info``, by index into ``lines``."""


Statement = tuple[str, Sequence[Any] | Iterable[Sequence[Any]], bool]
"""``(sql, parameters, many)``: run with ``execute``, or ``executemany`` if many."""


def statements(run_id: str, batch: LineBatch, *, or_ignore: bool = False) -> Iterator[Statement]:
    """The SQL that stores ``batch``, for a sync or an async connection alike."""
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    payload = json.dumps(batch.lines, ensure_ascii=False)
    if "\\u0000" not in payload:  # json_each would cut a text at a NUL character
        yield (
            f"{verb} INTO logs (run_id, seq, ts, stream, level, text) "
            "SELECT ?, ? + key, ?, ?, 'info', value FROM json_each(?)",
            (run_id, batch.seq, batch.ts, batch.stream, payload),
            False,
        )
    else:
        rows = (
            (run_id, batch.seq + i, batch.ts, batch.stream, "info", text)
            for i, text in enumerate(batch.lines)
        )
        yield (
            f"{verb} INTO logs (run_id, seq, ts, stream, level, text) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
            True,
        )
    if batch.levels:
        yield (
            "UPDATE logs SET level = ? WHERE run_id = ? AND seq = ?",
            [(level, run_id, batch.seq + i) for i, level in batch.levels.items()],
            True,
        )


class OutputActivity:
    """When a run last wrote and its longest quiet gap so far, kept in memory by the
    writer and stored once per transaction (never per line): what tells a stuck run
    from a slow one (``triage/stuck.py``). Lines of one block share its read time,
    so the gaps are between blocks; the first is measured from the writer's start."""

    def __init__(self, start: float | None = None) -> None:
        self.last = time.time() if start is None else start
        self.quiet_max_ms = 0.0
        self.wrote = False

    def seen(self, batches: Sequence[LineBatch]) -> tuple[float | None, float]:
        """``(last output time or None if no line, longest gap in ms)`` after ``batches``."""
        for batch in batches:
            gap = (batch.ts - self.last) * 1000.0
            if gap > self.quiet_max_ms:
                self.quiet_max_ms = gap
            if batch.ts > self.last or not self.wrote:
                # a first block read before the writer started (the store was slow to
                # open) is still when the run last wrote: the next gap counts from it
                self.last = batch.ts
            self.wrote = True
        return (self.last if self.wrote else None), self.quiet_max_ms


class StoreSink:
    """A plain (synchronous) connection of its own, for one writer thread."""

    def __init__(self, path: Path, run_id: str, *, lock_wait: float = LOCK_WAIT_S) -> None:
        self.run_id = run_id
        self.activity = OutputActivity()
        self._db = sqlite3.connect(
            path, timeout=lock_wait, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("SELECT 1 FROM logs LIMIT 0")  # a store, not any file
        except BaseException:
            self._db.close()
            raise

    def write(self, batches: Iterable[LineBatch]) -> None:
        """Store ``batches`` in one transaction, which also counts as a heartbeat.
        On any error nothing is known to be stored: the caller keeps the batches."""
        batches = list(batches)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for batch in batches:
                for sql, params, many in statements(self.run_id, batch):
                    if many:
                        db.executemany(sql, params)
                    else:
                        db.execute(sql, params)  # type: ignore[arg-type]
            last, quiet = self.activity.seen(batches)
            db.execute(
                "UPDATE runs SET heartbeat_at = CASE WHEN heartbeat_at IS NOT NULL THEN ? END, "
                "last_output_at = COALESCE(?, last_output_at), quiet_max_ms = ? WHERE id = ?",
                (time.time(), last, quiet, self.run_id),
            )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
