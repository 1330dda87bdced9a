"""Store schema and its forward migrations.

``PRAGMA user_version`` holds the schema version. Each entry of ``MIGRATIONS`` moves
a store from version ``n - 1`` to ``n``; they only ever run forward, inside the
caller's write transaction, so a crash mid-way leaves the old version intact.

The ``runs`` table is deliberately narrow: just the columns the runs table and the
filters need, so 100k rows load from a few MB. The full normalized record (with
configuration snapshots, often a kilobyte or more) lives in ``run_docs`` and is
read for one run at a time.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0)",
        """CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            source TEXT NOT NULL,
            job TEXT,
            label TEXT,
            status TEXT NOT NULL,
            status_raw TEXT,
            archived INTEGER NOT NULL DEFAULT 0,
            created_at REAL,
            started_at REAL,
            ended_at REAL,
            duration_ms REAL,
            p_total INTEGER,
            p_succeeded INTEGER,
            p_failed INTEGER,
            partial INTEGER NOT NULL DEFAULT 0,
            problem TEXT,
            heartbeat_at REAL,
            host TEXT,
            pid INTEGER,
            pid_start TEXT,
            abort_requested_at REAL,
            abort_requested_by TEXT
        )""",
        "CREATE TABLE IF NOT EXISTS run_docs (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS runs_revision ON runs (revision)",
        "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)",
        "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
        # Only runs a live process owns: what the lost-run check reads every poll.
        "CREATE INDEX IF NOT EXISTS runs_managed ON runs (status) WHERE heartbeat_at IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS logs (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            ts REAL NOT NULL,
            stream TEXT NOT NULL,
            level TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
    ),
    # Local archive flags for runs that live elsewhere (vendor systems without an
    # archive of their own): kept here so they survive restarts and can be undone.
    2: (
        """CREATE TABLE IF NOT EXISTS remote_flags (
            source TEXT NOT NULL,
            run_id TEXT NOT NULL,
            archived_at REAL NOT NULL,
            PRIMARY KEY (source, run_id)
        ) WITHOUT ROWID""",
    ),
}

# Windowed reads at a million runs (sources/local/window.py): status counts kept
# by triggers, so the monitor's status line reads a dozen rows instead of counting
# the history, and indexes in the order of the monitor's two usual sorts.
MIGRATIONS[3] = (
    """CREATE TABLE IF NOT EXISTS run_counts (
        status TEXT NOT NULL,
        archived INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (status, archived)
    ) WITHOUT ROWID""",
    "DELETE FROM run_counts",
    "INSERT INTO run_counts (status, archived, n) "
    "SELECT status, archived, COUNT(*) FROM runs GROUP BY status, archived",
    """CREATE TRIGGER IF NOT EXISTS runs_count_insert AFTER INSERT ON runs BEGIN
        INSERT INTO run_counts (status, archived, n) VALUES (NEW.status, NEW.archived, 1)
        ON CONFLICT (status, archived) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS runs_count_delete AFTER DELETE ON runs BEGIN
        UPDATE run_counts SET n = n - 1 WHERE status = OLD.status AND archived = OLD.archived;
    END""",
    """CREATE TRIGGER IF NOT EXISTS runs_count_update AFTER UPDATE OF status, archived ON runs
    WHEN OLD.status IS NOT NEW.status OR OLD.archived IS NOT NEW.archived BEGIN
        UPDATE run_counts SET n = n - 1 WHERE status = OLD.status AND archived = OLD.archived;
        INSERT INTO run_counts (status, archived, n) VALUES (NEW.status, NEW.archived, 1)
        ON CONFLICT (status, archived) DO UPDATE SET n = n + 1;
    END""",
    "CREATE INDEX IF NOT EXISTS runs_win_started ON runs "
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0), id, source)",
    "CREATE INDEX IF NOT EXISTS runs_win_status ON runs ("
    "(CASE status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'queued' THEN 2 "
    "WHEN 'new' THEN 3 WHEN 'failed' THEN 4 WHEN 'timed_out' THEN 5 WHEN 'unknown' THEN 6 "
    "WHEN 'aborted' THEN 7 WHEN 'succeeded' THEN 8 ELSE 99 END), "
    "-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0), id, source)",
)

# Reruns and snapshot fingerprints (sources/local/commands.py): the command line of
# each `jobwatch run`, kept only here (never in a run document, never served), and
# the store's random key for the salted fingerprints of snapshot secrets.
MIGRATIONS[4] = (
    """CREATE TABLE IF NOT EXISTS run_commands (
        run_id TEXT PRIMARY KEY,
        spec TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS store_keys (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID""",
)

# Stuck runs and late jobs (triage/stuck.py, triage/schedules.py): when a run last
# wrote a log line and its longest quiet gap (the log sink, once per block), when its
# progress counters last moved (a trigger, so no writer has to remember), and what
# `jobwatch run --every` said to expect.
MIGRATIONS[len(MIGRATIONS) + 1] = (
    "ALTER TABLE runs ADD COLUMN last_output_at REAL",
    "ALTER TABLE runs ADD COLUMN quiet_max_ms REAL",
    "ALTER TABLE runs ADD COLUMN progress_at REAL",
    """CREATE TRIGGER IF NOT EXISTS runs_progress_moved
    AFTER UPDATE OF p_total, p_succeeded, p_failed ON runs
    WHEN OLD.p_total IS NOT NEW.p_total OR OLD.p_succeeded IS NOT NEW.p_succeeded
        OR OLD.p_failed IS NOT NEW.p_failed BEGIN
        UPDATE runs SET progress_at = (julianday('now') - 2440587.5) * 86400.0
        WHERE id = NEW.id;
    END""",
    # `jobwatch run` starts the command first: its first lines may be stored before
    # its run is, and the log sink's update then finds no row. A running run that
    # arrives takes its last line's time from the log (one range read of its lines).
    """CREATE TRIGGER IF NOT EXISTS runs_output_known AFTER INSERT ON runs
    WHEN NEW.status = 'running' AND NEW.last_output_at IS NULL BEGIN
        UPDATE runs SET last_output_at = (SELECT MAX(ts) FROM logs WHERE run_id = NEW.id)
        WHERE id = NEW.id;
    END""",
    """CREATE TABLE IF NOT EXISTS schedules (
        source TEXT NOT NULL,
        job TEXT NOT NULL,
        every_s REAL,
        cron TEXT,
        grace_s REAL NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (source, job)
    ) WITHOUT ROWID""",
)

LIVE_VERSION = max(MIGRATIONS)
"""From this version on the store has what stuck runs and late jobs read."""

# Failure groups (jobwatch.triage): the start of each run's error message, so the
# fast path carries what tells failures apart without reading documents. Filled on
# write; older failures get theirs from the document here (raw text: the row
# reader redacts it, as it does every message).
MIGRATIONS[len(MIGRATIONS) + 1] = (
    "ALTER TABLE runs ADD COLUMN message TEXT",
    "UPDATE runs SET message = (SELECT substr(json_extract(d.data, '$.error.message'), 1, 2000) "
    "FROM run_docs d WHERE d.id = runs.id) "
    "WHERE status NOT IN ('new', 'queued', 'running', 'paused', 'succeeded')",
    # the triage fill reads each job's newest finished runs (ROW_NUMBER per job)
    "CREATE INDEX IF NOT EXISTS runs_job ON runs (source, job)",
)

# Far jumps (window_sql.read_rows): the key of the row at a far offset is read from
# the sort's index alone, so the index ends in ``archived``: the not-archived test of
# every row the offset skips is then made in the index, without a seek of the table
# (1M runs, offset 500k: 1.3-1.8 s before, 50 ms). Same order as version 3's, which
# they replace, and two more sorts.
MIGRATIONS[len(MIGRATIONS) + 1] = (
    "DROP INDEX IF EXISTS runs_win_started",
    "DROP INDEX IF EXISTS runs_win_status",
    "CREATE INDEX IF NOT EXISTS runs_sort_started ON runs "
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0), id, source, archived)",
    "CREATE INDEX IF NOT EXISTS runs_sort_status ON runs ("
    "(CASE status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'queued' THEN 2 "
    "WHEN 'new' THEN 3 WHEN 'failed' THEN 4 WHEN 'timed_out' THEN 5 WHEN 'unknown' THEN 6 "
    "WHEN 'aborted' THEN 7 WHEN 'succeeded' THEN 8 ELSE 99 END), "
    "-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0), id, source, archived)",
    # the sorts by last change and by duration had none: a page of them, a jump
    # or the last page sorted the whole table (3-11 s at 1M runs; about 90 ms now)
    "CREATE INDEX IF NOT EXISTS runs_sort_changed ON runs ("
    "-COALESCE(MAX(COALESCE(ended_at, COALESCE(NULLIF(started_at, 0), created_at)), "
    "COALESCE(COALESCE(NULLIF(started_at, 0), created_at), ended_at)), 0.0), "
    "id, source, archived)",
    "CREATE INDEX IF NOT EXISTS runs_sort_duration ON runs ("
    "-COALESCE(NULLIF(duration_ms, 0), 0.0), "
    "-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0), id, source, archived)",
)
SORT_INDEX_VERSION = max(MIGRATIONS)
"""From this version on the sort indexes answer a far jump's key query alone."""

SCHEMA_VERSION = max(MIGRATIONS)


async def _execute(db: aiosqlite.Connection, statement: str) -> None:
    """Every statement here may run twice (a store set back to an older version
    still has the newer tables): SQLite has no ``ADD COLUMN IF NOT EXISTS``, so a
    column that is there already counts as added."""
    try:
        await db.execute(statement)
    except sqlite3.OperationalError as exc:
        if not (statement.startswith("ALTER TABLE") and "duplicate column" in str(exc)):
            raise


async def migrate(
    db: aiosqlite.Connection, migrations: dict[int, tuple[str, ...]] = MIGRATIONS
) -> int:
    """Bring the store up to the newest version in ``migrations``; returns the
    version it found.

    Runs inside a write transaction, so a second process opening the same new
    store waits and then finds nothing left to do.
    """
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    found = int(row[0]) if row else 0
    for version in range(found + 1, max(migrations) + 1):
        for statement in migrations[version]:
            await _execute(db, statement)
        await db.execute(f"PRAGMA user_version = {version}")
    return found
