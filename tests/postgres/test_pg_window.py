"""What the PostgreSQL store adds for windowed reads (schema version 3): counts kept
by triggers through every kind of write, the migration from version 2, and the
indexes the monitor's two usual sorts are read by. The queries themselves are
checked against the Python order in tests/integration/test_store_window.py, on
both store kinds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from jobwatch.core import Run, RunRow, Status, utcnow
from jobwatch.core.errors import NewerStoreError
from jobwatch.sources.postgres import schema
from jobwatch.sources.postgres import window as pg_window
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import WindowView
from jobwatch.sources.window_sql import JUMP_FROM

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
        assert {"runs_sort_started", "runs_sort_status"} <= names
        assert not {"runs_win_started", "runs_win_status"} & names
        await store.add(make_run(5, Status.RUNNING))  # the triggers count from here on
        assert (await store.status_counts()).by_status == {"failed": 1, "running": 2}


def test_the_migration_indexes_are_the_window_sorts() -> None:
    """The frozen SQL of migration 6 indexes exactly the expressions the queries sort
    by, in version 3's order, and includes every column under them and ``archived``."""

    def columns(statements: tuple[str, ...]) -> list[tuple[str, str]]:
        found = []
        for s in statements:
            if s.startswith("CREATE INDEX"):
                keys, _, include = " ".join(s.split(" ON runs (", 1)[1].split()).partition(
                    ") INCLUDE ("
                )
                if not include:  # version 3's: no INCLUDE, the key list closes the statement
                    keys = keys.removesuffix(")")
                found.append((keys, include.removesuffix(")")))
        return found

    frozen = columns(schema.MIGRATIONS[schema.SORT_INDEX_VERSION])
    built = [", ".join(f"({e})" for e in pg_window.SORT_SQL[s]) for s in pg_window.INDEXED]
    assert [keys for keys, _ in frozen] == built
    assert [keys for keys, _ in columns(schema.MIGRATIONS[3])] == built[:2]
    under = {"status": {"status"}, "changed": {"ended_at"}, "duration": {"duration_ms"}}
    for (keys, include), sort in zip(frozen, pg_window.INDEXED, strict=True):
        wanted = {"archived", "started_at", "created_at", "id", "source", *under.get(sort, ())}
        assert set(include.split(", ")) == wanted, keys


async def test_a_database_of_schema_5_gets_the_jump_indexes(pg_server: Any) -> None:
    """A version 5 database opened by this code gets version 6's indexes (version 3's
    go), a far jump on it is right, and a newer schema is still refused."""
    dsn = pg_server.new_database(blank=True)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await schema.migrate(conn, upto=schema.SORT_INDEX_VERSION - 1)
        for i in range(300):
            await conn.execute(
                "INSERT INTO runs (id, revision, source, status, archived, created_at, data) "
                "VALUES (%s, nextval('jobwatch_revision'), 'local', %s, %s, %s, %s)",
                (f"r{i:04d}", ("failed", "succeeded")[i % 2], i % 5 == 0, 1e9 + i // 3, "{}"),
            )
    finally:
        await conn.close()
    async with PostgresStore(dsn, mode="write") as store:
        assert store.schema_version == schema.SCHEMA_VERSION == schema.SORT_INDEX_VERSION
        found = dict(await store._fetch("SELECT indexname, indexdef FROM pg_indexes"))
        assert not {"runs_win_started", "runs_win_status"} & set(found)
        assert "INCLUDE (archived, started_at" in found["runs_sort_started"]
        assert "INCLUDE (archived, status, started_at" in found["runs_sort_status"]
        assert {f"runs_sort_{sort}" for sort in pg_window.INDEXED} <= set(found)
        for sort in pg_window.INDEXED:
            ids = await store._fetch(
                f"SELECT id FROM runs WHERE NOT archived ORDER BY "
                f"{', '.join(pg_window.SORT_SQL[sort])}"
            )
            want = [("local", i) for (i,) in ids]
            assert len(want) == 240
            for offset in (JUMP_FROM, 239, 240):
                page = await store.window_rows(WindowView(sort=sort), offset=offset, limit=25)
                assert [r.key for r in page] == want[offset : offset + 25]
                tail = await store.window_rows(
                    WindowView(sort=sort), offset=offset, limit=25, from_end=True
                )
                assert [r.key for r in tail] == want[max(0, 215 - offset) : 240 - offset]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobwatch_meta SET value = %s WHERE key = 'schema'", (schema.SCHEMA_VERSION + 1,)
        )
    with pytest.raises(NewerStoreError, match="newer jobwatch"):
        await PostgresStore(dsn).open()


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
        for sort, index in (("started", "runs_sort_started"), ("status", "runs_sort_status")):
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
                assert re.search(rf"Index (Only )?Scan (Backward )?using {index}", text), text
                assert "Sort" not in text.replace("Sort Key", ""), text


async def test_a_far_jump_key_is_an_index_only_scan(pg_dsn: str) -> None:
    """The key query of a far jump, forwards and from the end, at 20,000 runs (the
    table vacuumed, as autovacuum leaves it): an index-only scan of the sort's
    index, no heap fetch planned for the rows it skips, no sort."""
    async with PostgresStore(pg_dsn, mode="write") as store:
        await store._fetch(
            "INSERT INTO runs (id, revision, source, status, created_at, started_at, "
            "archived, data) SELECT 'r' || i, nextval('jobwatch_revision'), 'local', "
            "(ARRAY['succeeded', 'failed', 'running'])[1 + mod(i, 3)], 1e9 + i / 7, "
            "1e9 + i / 7, mod(i, 10) = 0, '{}' FROM generate_series(1, %s) i RETURNING 1",
            (ROWS,),
        )
        async with store._conn() as conn:
            await conn.execute("VACUUM ANALYZE runs")
        sent: list[tuple[str, dict[str, Any]]] = []
        real = store._one

        async def record(sql: str, params: Any = None) -> tuple[Any, ...] | None:
            sent.append((sql, params))
            return await real(sql, params)

        store._one = record  # type: ignore[method-assign]
        for sort in pg_window.INDEXED:
            for from_end in (False, True):
                sent.clear()
                page = await store.window_rows(
                    WindowView(sort=sort), offset=ROWS // 2, limit=50, from_end=from_end
                )
                assert len(page) == 50
                keys = [(q, v) for q, v in sent if "OFFSET %(w" in q]
                assert len(keys) == 1, sent
                plan = await store._fetch(f"EXPLAIN {keys[0][0]}", keys[0][1])
                text = "\n".join(r[0] for r in plan)
                assert (
                    f"Index Only Scan{' Backward' if from_end else ''} using runs_sort_{sort}"
                    in text
                ), text
                assert "Sort" not in text.replace("Sort Key", ""), text
