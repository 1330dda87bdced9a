"""Writing a run's log lines to PostgreSQL fast: ``COPY`` per transaction.

The same interface as :class:`~jobwatch.sources.local.logsink.StoreSink` (one
plain connection of its own for the wrapper's writer thread, ``write`` raising
on any error so the caller keeps the batches and spools them). Log lines never
touch ``runs``, so they never notify: only state changes push. PostgreSQL text
cannot hold NUL, so a NUL in a line is stored as U+FFFD.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import psycopg

from jobwatch.sources.local.logsink import LineBatch, OutputActivity
from jobwatch.sources.postgres.connect import full_dsn

COPY_LOGS = "COPY logs (run_id, seq, ts, stream, level, text) FROM STDIN"
ACTIVITY = (
    "INSERT INTO run_activity (run_id, last_output_at, quiet_max_ms) VALUES (%s, %s, %s) "
    "ON CONFLICT (run_id) DO UPDATE SET last_output_at = "
    "COALESCE(excluded.last_output_at, run_activity.last_output_at), "
    "quiet_max_ms = excluded.quiet_max_ms"
)
"""Once per transaction, in a table of its own: ``runs`` is not touched (no notify)."""


def rows(run_id: str, batch: LineBatch) -> Iterator[tuple[str, int, float, str, str, str]]:
    for i, text in enumerate(batch.lines):
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
        yield (run_id, batch.seq + i, batch.ts, batch.stream, batch.levels.get(i, "info"), text)


class PgSink:
    """A synchronous connection for one writer thread."""

    def __init__(self, dsn: str, run_id: str, *, lock_wait: float = 30.0) -> None:
        self.run_id = run_id
        self.activity = OutputActivity()
        self._db = psycopg.connect(full_dsn(dsn), autocommit=False)
        try:
            ms = max(1, int(lock_wait * 1000))
            self._db.execute(f"SET statement_timeout = {ms}")
            self._db.execute("SELECT 1 FROM logs LIMIT 0")  # a jobwatch database
            self._db.commit()
        except BaseException:
            self._db.close()
            raise

    def write(self, batches: Iterable[LineBatch]) -> None:
        """Store ``batches`` in one transaction; on any error nothing is stored."""
        batches = list(batches)
        db = self._db
        try:
            with db.cursor() as cur, cur.copy(COPY_LOGS) as copy:
                for batch in batches:
                    for row in rows(self.run_id, batch):
                        copy.write_row(row)
            last, quiet = self.activity.seen(batches)
            db.execute(ACTIVITY, (self.run_id, last, quiet))
            db.commit()
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                db.rollback()
            raise

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._db.close()
