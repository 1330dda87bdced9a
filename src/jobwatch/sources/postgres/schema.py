"""The PostgreSQL store's schema and its forward migrations.

``jobwatch_meta`` holds the schema version. Each entry of :data:`MIGRATIONS`
moves a database from version ``n - 1`` to ``n``, all in one transaction under
an advisory lock, so two processes opening a new database at once migrate it
once. A database whose version is above :data:`SCHEMA_VERSION` was written by a
newer jobwatch and is refused, as a newer SQLite store is.

* ``runs``: the columns the table and the filters need, plus the full record
  (``data``) and who manages it (``host_id``, ``heartbeat_at`` set while a
  wrapper owns it, its ``pid``).
* ``run_changes``: the append-only change feed, one row per revision of a run,
  filled by a statement trigger on ``runs`` that also sends one ``NOTIFY`` per
  statement (payload ``"<run id> <revision>"``, or ``"* <revision>"`` for many
  runs): state changes notify, log lines (another table) never do.
* ``logs``: lines by ``(run_id, seq)``.
* ``hosts`` (version 2): each wrapper host's heartbeat, on the server's clock, so
  hosts with skewed clocks are judged alike.
* ``commands`` (version 2): abort requests; the run's own host claims them with
  ``FOR UPDATE SKIP LOCKED`` and carries them out.
* ``run_counts`` (version 3): runs by status and archived, kept by statement
  triggers, so a monitor over a million runs reads a dozen rows for its status
  line; and indexes in the order of the monitor's two usual sorts (the windowed
  reads of :mod:`.window`).
* ``runs.message`` (version 4): the start of a run's error message, for failure
  groups (:mod:`jobwatch.triage`).
* ``runs_sort_<sort>`` (version 6): the two sort indexes again, carrying the
  columns a far jump's key query reads (an index-only scan), and the same for the
  sorts by last change and by duration.

Revisions come from one sequence, drawn under a transaction-level advisory lock
(:data:`FEED_LOCK`), so they commit in order and a reader at revision R never
misses a smaller one committed later.
"""

from __future__ import annotations

from typing import Any

FEED_LOCK = 0x6A6F6277  # "jobw"
MIGRATE_LOCK = FEED_LOCK + 1
CHANNEL = "jobwatch_runs"
"""The channel writers notify on state changes."""


def commands_channel(host_id: str) -> str:
    """The channel an abort for a run of ``host_id`` is announced on (payload: the
    run id), so a wrapper wakes for its own host's commands only. A digest: a host
    id may be any text, a channel name is an identifier of at most 63 bytes."""
    import hashlib

    return "jobwatch_cmd_" + hashlib.blake2b(host_id.encode(), digest_size=8).hexdigest()


_FEED_FUNCTION = """
CREATE OR REPLACE FUNCTION jobwatch_feed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    one text;
    top bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO run_changes (revision, run_id, status)
            SELECT revision, id, status FROM new_rows;
        SELECT count(*), min(id), max(revision) INTO n, one, top FROM new_rows;
    ELSE
        INSERT INTO run_changes (revision, run_id, status)
            SELECT nr.revision, nr.id, nr.status
            FROM new_rows nr JOIN old_rows o ON o.id = nr.id
            WHERE nr.revision <> o.revision;
        SELECT count(*), min(nr.id), max(nr.revision) INTO n, one, top
            FROM new_rows nr JOIN old_rows o ON o.id = nr.id
            WHERE nr.revision <> o.revision;
    END IF;
    IF n > 0 THEN
        PERFORM pg_notify('jobwatch_runs',
                          (CASE WHEN n = 1 THEN one ELSE '*' END) || ' ' || top);
    END IF;
    RETURN NULL;
END
$$
"""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS jobwatch_meta (key text PRIMARY KEY, value bigint NOT NULL)",
        "CREATE SEQUENCE IF NOT EXISTS jobwatch_revision",
        """CREATE TABLE IF NOT EXISTS runs (
            id text PRIMARY KEY,
            revision bigint NOT NULL,
            source text NOT NULL,
            job text,
            label text,
            status text NOT NULL,
            status_raw text,
            archived boolean NOT NULL DEFAULT false,
            created_at double precision,
            started_at double precision,
            ended_at double precision,
            duration_ms double precision,
            p_total integer,
            p_succeeded integer,
            p_failed integer,
            partial boolean NOT NULL DEFAULT false,
            problem text,
            host_id text,
            heartbeat_at double precision,
            pid integer,
            pid_start text,
            abort_requested_at double precision,
            abort_requested_by text,
            data text NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS runs_revision ON runs (revision)",
        "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC NULLS LAST, id DESC)",
        "CREATE INDEX IF NOT EXISTS runs_managed ON runs (host_id) WHERE heartbeat_at IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS logs (
            run_id text NOT NULL,
            seq bigint NOT NULL,
            ts double precision NOT NULL,
            stream text NOT NULL,
            level text NOT NULL,
            text text NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
        """CREATE TABLE IF NOT EXISTS run_changes (
            revision bigint PRIMARY KEY,
            run_id text NOT NULL,
            status text NOT NULL,
            at double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp())
        )""",
        "CREATE INDEX IF NOT EXISTS run_changes_run ON run_changes (run_id)",
        _FEED_FUNCTION,
        "DROP TRIGGER IF EXISTS runs_feed_insert ON runs",
        "DROP TRIGGER IF EXISTS runs_feed_update ON runs",
        "CREATE TRIGGER runs_feed_insert AFTER INSERT ON runs REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION jobwatch_feed()",
        "CREATE TRIGGER runs_feed_update AFTER UPDATE ON runs "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION jobwatch_feed()",
    ),
    2: (
        """CREATE TABLE IF NOT EXISTS hosts (
            host_id text PRIMARY KEY,
            heartbeat_at double precision NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS commands (
            id bigserial PRIMARY KEY,
            run_id text NOT NULL,
            host_id text,
            kind text NOT NULL,
            requested_by text,
            requested_at double precision NOT NULL,
            claimed_at double precision,
            claimed_by text,
            done_at double precision
        )""",
        "CREATE INDEX IF NOT EXISTS commands_open ON commands (host_id, run_id) "
        "WHERE claimed_at IS NULL",
    ),
}

_COUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION jobwatch_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO run_counts (status, archived, n)
            SELECT status, archived, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
            ON CONFLICT (status, archived) DO UPDATE SET n = run_counts.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE run_counts c SET n = c.n - o.n
            FROM (SELECT status, archived, count(*) AS n FROM old_rows GROUP BY 1, 2) o
            WHERE c.status = o.status AND c.archived = o.archived;
    ELSE
        INSERT INTO run_counts (status, archived, n)
            SELECT status, archived, sum(d) FROM (
                SELECT status, archived, 1 AS d FROM new_rows
                UNION ALL SELECT status, archived, -1 FROM old_rows) t
            GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
            ON CONFLICT (status, archived) DO UPDATE SET n = run_counts.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$
"""

MIGRATIONS[3] = (
    """CREATE TABLE IF NOT EXISTS run_counts (
        status text NOT NULL,
        archived boolean NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (status, archived)
    )""",
    # counted while no writer can change runs, so the triggers take over exactly
    "LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE",
    "DELETE FROM run_counts",
    "INSERT INTO run_counts (status, archived, n) "
    "SELECT status, archived, count(*) FROM runs GROUP BY status, archived",
    _COUNT_FUNCTION,
    "DROP TRIGGER IF EXISTS runs_count_insert ON runs",
    "DROP TRIGGER IF EXISTS runs_count_update ON runs",
    "DROP TRIGGER IF EXISTS runs_count_delete ON runs",
    "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobwatch_count()",
    "CREATE TRIGGER runs_count_update AFTER UPDATE ON runs "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobwatch_count()",
    "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobwatch_count()",
    "CREATE INDEX IF NOT EXISTS runs_win_started ON runs ("
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C"))',
    "CREATE INDEX IF NOT EXISTS runs_win_status ON runs ("
    "((CASE status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'queued' THEN 2 "
    "WHEN 'new' THEN 3 WHEN 'failed' THEN 4 WHEN 'timed_out' THEN 5 WHEN 'unknown' THEN 6 "
    "WHEN 'aborted' THEN 7 WHEN 'succeeded' THEN 8 ELSE 99 END)), "
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C"))',
)

# Stuck runs and late jobs (triage/): the log sink's activity lives in a table of its
# own so that log lines still never touch ``runs`` (an update there notifies every
# monitor); progress moves are stamped by a row trigger; ``schedules`` is what
# `jobwatch run --every` said to expect.
MIGRATIONS[len(MIGRATIONS) + 1] = (
    """CREATE TABLE IF NOT EXISTS run_activity (
        run_id text PRIMARY KEY,
        last_output_at double precision,
        quiet_max_ms double precision
    )""",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS progress_at double precision",
    """CREATE OR REPLACE FUNCTION jobwatch_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.p_total IS DISTINCT FROM NEW.p_total
        OR OLD.p_succeeded IS DISTINCT FROM NEW.p_succeeded
        OR OLD.p_failed IS DISTINCT FROM NEW.p_failed THEN
        NEW.progress_at := extract(epoch FROM clock_timestamp());
    END IF;
    RETURN NEW;
END
$$""",
    "DROP TRIGGER IF EXISTS runs_progress_moved ON runs",
    "CREATE TRIGGER runs_progress_moved BEFORE UPDATE ON runs "
    "FOR EACH ROW EXECUTE FUNCTION jobwatch_progress()",
    """CREATE TABLE IF NOT EXISTS schedules (
        source text NOT NULL,
        job text NOT NULL,
        every_s double precision,
        cron text,
        grace_s double precision NOT NULL DEFAULT 0,
        updated_at double precision NOT NULL,
        PRIMARY KEY (source, job)
    )""",
)

LIVE_VERSION = max(MIGRATIONS)
"""From this version on the store has what stuck runs and late jobs read."""

# Failure groups (jobwatch.triage): the start of each run's error message on the
# fast path, as in the SQLite store (filled on write; older failures from their
# document, raw: the row reader redacts every message).
MIGRATIONS[len(MIGRATIONS) + 1] = (
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS message text",
    "UPDATE runs SET message = substr(data::jsonb #>> '{error,message}', 1, 2000) "
    "WHERE status NOT IN ('new', 'queued', 'running', 'paused', 'succeeded')",
    "CREATE INDEX IF NOT EXISTS runs_job ON runs (source, job)",
)

# Far jumps (window_sql.read_rows): the key of the row at a far offset is read by an
# index-only scan, so the sort indexes carry every column the key query reads
# (PostgreSQL plans an index-only scan of an expression index only when the columns
# under the expressions are in it too). Same order as version 3's, which they replace,
# and the sorts by last change and by duration, which had none.
MIGRATIONS[len(MIGRATIONS) + 1] = (
    "DROP INDEX IF EXISTS runs_win_started",
    "DROP INDEX IF EXISTS runs_win_status",
    "CREATE INDEX IF NOT EXISTS runs_sort_started ON runs ("
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C")) '
    "INCLUDE (archived, started_at, created_at, id, source)",
    "CREATE INDEX IF NOT EXISTS runs_sort_status ON runs ("
    "((CASE status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'queued' THEN 2 "
    "WHEN 'new' THEN 3 WHEN 'failed' THEN 4 WHEN 'timed_out' THEN 5 WHEN 'unknown' THEN 6 "
    "WHEN 'aborted' THEN 7 WHEN 'succeeded' THEN 8 ELSE 99 END)), "
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C")) '
    "INCLUDE (archived, status, started_at, created_at, id, source)",
    "CREATE INDEX IF NOT EXISTS runs_sort_changed ON runs ("
    "(-COALESCE(GREATEST(COALESCE(ended_at, COALESCE(NULLIF(started_at, 0), created_at)), "
    "COALESCE(COALESCE(NULLIF(started_at, 0), created_at), ended_at)), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C")) '
    "INCLUDE (archived, ended_at, started_at, created_at, id, source)",
    "CREATE INDEX IF NOT EXISTS runs_sort_duration ON runs ("
    "(-COALESCE(NULLIF(duration_ms, 0), 0.0)), "
    "(-COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)), "
    '((id) COLLATE "C"), ((source) COLLATE "C")) '
    "INCLUDE (archived, duration_ms, started_at, created_at, id, source)",
)
SORT_INDEX_VERSION = max(MIGRATIONS)
"""From this version on the sort indexes answer a far jump's key query alone."""

SCHEMA_VERSION = max(MIGRATIONS)


async def found_version(conn: Any) -> int | None:
    """The schema version of the database ``conn`` is on; ``None`` when it has no
    jobwatch tables at all (a blank database a writer may set up)."""
    cur = await conn.execute("SELECT to_regclass('jobwatch_meta') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return None
    cur = await conn.execute("SELECT value FROM jobwatch_meta WHERE key = 'schema'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: Any, upto: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``upto`` in one transaction; returns the version
    found. ``conn`` is an autocommit connection (psycopg ``AsyncConnection``)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        found = await found_version(conn) or 0
        for version in range(found + 1, upto + 1):
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO jobwatch_meta (key, value) VALUES ('schema', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (version,),
            )
    return found
