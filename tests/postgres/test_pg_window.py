"""What the PostgreSQL store adds for windowed reads (schema version 3): counts kept
by triggers through every kind of write, the migration from version 2, and the
indexes the monitor's two usual sorts are read by. The queries themselves are
checked against the Python order in tests/integration/test_store_window.py, on
both store kinds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from jobwatch.core import Run, RunRow, Status, utcnow
from jobwatch.sources.postgres import schema
from jobwatch.sources.postgres import window as pg_window
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import WindowView

ROWS = 20_000


def make_run(i: int, status: Status = Status.SUCCEEDED, **kw: Any) -> Run:
    when = utcnow() - timedelta(minutes=1000 - i)
    return Run(
        id=f"run-{i:04d}", source="local", job=f"job-{i % 3}", status=status, created_at=when, **kw
    )


def by_scan(rows: list[tuple[Any, ...]]) -> tuple[dict[str, int], int]:
    by_status: dict[str, int] = {}
    archived = 0
    for status, is_archived in rows:
        if is_archived:
            archived += 1
        else:
            by_status[status] = by_status.get(status, 0) + 1
    return by_status, archived


async def test_counts_follow_upserts_updates_lost_marks_and_prune(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn, mode="write") as store:
        assert store.capabilities.window
        statuses = (Status.FAILED, Status.RUNNING)
        await store.add_many([make_run(i, statuses[i % 2]) for i in range(6)])
        await store.add_many([make_run(0, Status.SUCCEEDED), make_run(9, Status.QUEUED)])  # upsert
        await store.archive("run-0002")
        await store.abort("run-0001", "me")  # an unowned run: marked aborted at once
        await store.prune(utcnow().timestamp() - 900 * 60)  # the oldest finished ones
        counts = await store.status_counts()
        scan = await store._fetch("SELECT status, archived FROM runs")
        assert (counts.by_status, counts.archived) == by_scan(scan)
        assert counts.total == len(scan) < 7
        assert await store.window_count(WindowView()) == sum(counts.by_status.values())
        assert await store.window_count(WindowView(show_archived=True)) == counts.total


async def test_a_store_of_schema_2_is_migrated_with_its_counts(pg_server: Any) -> None:
    dsn = pg_server.new_database(blank=True)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await schema.migrate(conn, upto=2)
        for run_id, status, archived in (
            ("a", "failed", False),
            ("b", "failed", True),
            ("c", "running", False),
        ):
            await conn.execute(
                "INSERT INTO runs (id, revision, source, status, archived, data) VALUES "
                "(%s, nextval('jobwatch_revision'), 'local', %s, %s, %s)",
                (run_id, status, archived, make_run(1).model_dump_json()),
            )
    finally:
        await conn.close()
    async with PostgresStore(dsn, mode="write") as store:
        assert store.schema_version == schema.SCHEMA_VERSION
        counts = await store.status_counts()
        assert counts.by_status == {"failed": 1, "running": 1}
        assert counts.archived == 1
        names = {r[0] for r in await store._fetch("SELECT indexname FROM pg_indexes")}
        assert {"runs_win_started", "runs_win_status"} <= names
        await store.add(make_run(5, Status.RUNNING))  # the triggers count from here on
        assert (await store.status_counts()).by_status == {"failed": 1, "running": 2}


def test_the_migration_indexes_are_the_window_sorts() -> None:
    """The frozen SQL of migration 3 indexes exactly the expressions the queries sort by."""
    frozen = [
        " ".join(s.split(" ON runs (", 1)[1].split())[:-1]
        for s in schema.MIGRATIONS[3]
        if s.startswith("CREATE INDEX")
    ]
    built = [", ".join(f"({e})" for e in pg_window.SORT_SQL[s]) for s in pg_window.INDEXED]
    assert frozen == built


async def test_the_usual_sorts_are_read_by_index(pg_dsn: str) -> None:
    """The SQL the store really sends for a first page, a keyset page either way and a
    position, at 20,000 runs: an index scan, no sort of the table."""
    async with PostgresStore(pg_dsn, mode="write") as store:
        await store._fetch(
            "INSERT INTO runs (id, revision, source, status, created_at, started_at, data) "
            "SELECT 'r' || i, nextval('jobwatch_revision'), 'local', "
            "(ARRAY['succeeded', 'failed', 'running'])[1 + mod(i, 3)], 1e9 + i / 7, "
            "1e9 + i / 7, '{}' FROM generate_series(1, %s) i RETURNING 1",
            (ROWS,),
        )
        async with store._conn() as conn:
            await conn.execute("ANALYZE runs")
        sent: list[tuple[str, dict[str, Any]]] = []
        real = store._rows_where

        async def record(clause: str, params: dict[str, Any]) -> tuple[list[RunRow], list[int]]:
            sent.append((clause, params))
            return await real(clause, params)

        store._rows_where = record  # type: ignore[method-assign]
        for sort, index in (("started", "runs_win_started"), ("status", "runs_win_status")):
            view = WindowView(sort=sort)
            sent.clear()
            first = await store.window_rows(view, limit=50)
            anchor = (await store.window_rows(view, offset=ROWS // 2, limit=1))[0]
            await store.window_rows(view, limit=50, after=anchor)
            await store.window_rows(view, limit=50, before=anchor)
            await store.window_rows(view, limit=50, from_end=True)
            assert len(first) == 50 and len(sent) >= 5
            for clause, params in sent:
                if "OFFSET %(w" in clause and params.get(f"w{len(params) - 1}"):
                    continue  # a page by a far offset walks the index too, but is no keyset
                plan = await store._fetch(
                    f"EXPLAIN SELECT id FROM runs {clause}", {**params, "active": []}
                )
                text = "\n".join(r[0] for r in plan)
                assert f"Index Scan using {index}" in text or (
                    f"Index Scan Backward using {index}" in text
                ), text
                assert "Sort" not in text.replace("Sort Key", ""), text
