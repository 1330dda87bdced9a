"""A run's log lines, addressed by a per-run sequence number."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobwatch import core as models
from jobwatch.sources.protocol import LogBounds

if TYPE_CHECKING:
    from jobwatch.core import LogLine

from jobwatch.sources.local.db import Database, _from_epoch


class LogsMixin(Database):
    async def append_logs(self, run_id: str, lines: Sequence[tuple[float, str, str, str]]) -> int:
        """Append ``(ts, stream, level, text)`` lines; returns the last seq written."""
        if not lines:
            return 0

        async def body() -> int:
            row = await self._fetchone(
                "SELECT COALESCE(MAX(seq), 0) FROM logs WHERE run_id = ?", (run_id,)
            )
            start = int(row[0]) + 1
            await self._conn.executemany(
                "INSERT INTO logs (run_id, seq, ts, stream, level, text) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, start + i, *line) for i, line in enumerate(lines)],
            )
            return start + len(lines) - 1

        return await self._transaction(body)

    async def log_bounds(self, run_id: str) -> LogBounds:
        # Two sub-queries: each walks one end of the index. A single MIN/MAX
        # query scans the whole run (150 ms at a million lines).
        row = await self._fetchone(
            "SELECT (SELECT MIN(seq) FROM logs WHERE run_id = ?), "
            "(SELECT MAX(seq) FROM logs WHERE run_id = ?)",
            (run_id, run_id),
        )
        if row is None or row[0] is None:
            return LogBounds(0, 0)
        return LogBounds(int(row[0]), int(row[1]))

    def _lines(self, run_id: str, rows: Iterable[Sequence[Any]]) -> list[LogLine]:
        return [
            models.LogLine(
                run_id=run_id, seq=r[0], ts=_from_epoch(r[1]), stream=r[2], level=r[3], text=r[4]
            )
            for r in rows
        ]

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        rows = await self._fetchall(
            "SELECT seq, ts, stream, level, text FROM logs WHERE run_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return self._lines(run_id, rows)

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        """The last ``count`` lines, read backwards from the end of the index."""
        rows = await self._fetchall(
            "SELECT seq, ts, stream, level, text FROM logs WHERE run_id = ? "
            "ORDER BY seq DESC LIMIT ?",
            (run_id, count),
        )
        return self._lines(run_id, reversed(rows))

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        """Seq of the next line (after, or before, ``start``) containing ``needle``."""
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        op, order = ("<", "DESC") if backwards else (">", "ASC")
        row = await self._fetchone(
            f"SELECT seq FROM logs WHERE run_id = ? AND seq {op} ? "
            f"AND text LIKE ? ESCAPE '\\' ORDER BY seq {order} LIMIT 1",
            (run_id, start, pattern),
        )
        return int(row[0]) if row else None

    async def first_error(self, run_id: str) -> int | None:
        row = await self._fetchone(
            "SELECT seq FROM logs WHERE run_id = ? AND level = 'error' ORDER BY seq LIMIT 1",
            (run_id,),
        )
        return int(row[0]) if row else None
