"""The PostgreSQL store on a real server: reads, writes, actions, migrations,
DSN checks and a server that is down (tests/pg_support.py starts the server)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from conftest import run_cli
from jobwatch.core import Run, Status, utcnow
from jobwatch.core.errors import (
    AmbiguousRunId,
    NewerStoreError,
    StoreError,
    TransitionRefused,
    UsageError,
)
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres import schema
from jobwatch.sources.postgres.dsn import check_dsn, is_dsn
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import ListQuery


def make_run(i: int, status: Status = Status.SUCCEEDED, **kw: Any) -> Run:
    when = utcnow() - timedelta(minutes=1000 - i)
    return Run(
        id=f"run-{i:04d}", source="local", job=f"job-{i % 3}", status=status, created_at=when, **kw
    )


async def test_reads_writes_and_pages(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        await store.add_many([make_run(i) for i in range(25)])
        first = await store.row_changes(None, 10)
        assert len(first.rows) == 10 and first.more
        rest = await store.row_changes(first.cursor)
        assert len(rest.rows) == 15 and not rest.more
        assert {r.id for r in first.rows + rest.rows} == {f"run-{i:04d}" for i in range(25)}
        idle = await store.changes(rest.cursor)
        assert idle.runs == [] and idle.cursor == rest.cursor
        await store.add(make_run(3, Status.FAILED))
        delta = await store.row_changes(rest.cursor)
        assert [(r.id, r.status) for r in delta.rows] == [("run-0003", Status.FAILED)]
        newest = await store.first_rows(3)
        assert [r.id for r in newest] == ["run-0024", "run-0023", "run-0022"]
        runs, errors = await store.list_runs(ListQuery(statuses=("failed",), limit=5))
        assert [r.id for r in runs] == ["run-0003"] and errors == []
        runs, _ = await store.list_runs(ListQuery(jobs=("job-1",), limit=2))
        assert [r.id for r in runs] == ["run-0022", "run-0019"]
        with pytest.raises(AmbiguousRunId):
            await store.get("run-000")


async def test_prefix_logs_archive_and_unowned_abort(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        await store.add_many([make_run(1), make_run(2, Status.RUNNING)])
        assert (await store.get("0001")).id == "run-0001"
        now = time.time()
        last = await store.append_logs(
            "run-0001", [(now, "stdout", "info", "hello"), (now, "stderr", "error", "Bad\x00thing")]
        )
        assert last == 2
        assert [line.text for line in await store.log_tail("run-0001", 5)] == [
            "hello",
            "Bad\ufffdthing",
        ]
        assert await store.first_error("run-0001") == 2
        assert await store.log_find("run-0001", "BAD", start=0) == 2
        assert (await store.log_bounds("run-0001")).count == 2
        done = await store.archive("run-0001")
        assert done.run.archived
        runs, _ = await store.list_runs(ListQuery())
        assert [r.id for r in runs] == ["run-0002"]
        assert (await store.unarchive("run-0001")).run.archived is False
        with pytest.raises(TransitionRefused):
            await store.archive("run-0002")  # still running
        result = await store.abort("run-0002", "tester")  # nobody owns it: aborted now
        assert result.run.status is Status.ABORTED
        assert (await store.get("run-0002")).status is Status.ABORTED


async def test_change_feed_is_append_only_and_notifies_per_state_change(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        try:
            await conn.execute(f"LISTEN {schema.CHANNEL}")
            await store.add(make_run(1, Status.RUNNING))
            await store.append_logs("run-0001", [(time.time(), "stdout", "info", "x")] * 50)
            await store.add(make_run(1, Status.SUCCEEDED))
            notes = [n.payload async for n in conn.notifies(timeout=2.0, stop_after=3)]
        finally:
            await conn.close()
        feed = await store._fetch("SELECT run_id, status FROM run_changes ORDER BY revision")
    # Two state changes, two notifications (none for the 50 lines), two feed rows.
    assert [p.split()[0] for p in notes] == ["run-0001", "run-0001"]
    assert [int(p.split()[1]) for p in notes] == sorted(int(p.split()[1]) for p in notes)
    assert feed == [("run-0001", "running"), ("run-0001", "succeeded")]


async def test_older_schema_is_migrated(pg_server: Any) -> None:
    dsn = pg_server.new_database(blank=True)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await schema.migrate(conn, upto=1)
        await conn.execute(
            "INSERT INTO runs (id, revision, source, status, data) VALUES "
            "('run-old', nextval('jobwatch_revision'), 'local', 'succeeded', %s)",
            (make_run(7).model_copy(update={"id": "run-old"}).model_dump_json(),),
        )
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="older"):
        await PostgresStore(dsn, mode="read").open()  # read-only never migrates
    async with PostgresStore(dsn, mode="write") as store:
        assert store.schema_version == schema.SCHEMA_VERSION
        assert (await store.get("run-old")).status is Status.SUCCEEDED
        assert await store._fetch("SELECT count(*) FROM commands") == [(0,)]
        version = await store._one("SELECT value FROM jobwatch_meta WHERE key = 'schema'")
        assert version == (schema.SCHEMA_VERSION,)


async def test_newer_schema_is_refused(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE jobwatch_meta SET value = 99 WHERE key = 'schema'")
    with pytest.raises(NewerStoreError, match="newer jobwatch"):
        await PostgresStore(pg_dsn).open()
    result = run_cli(pg_dsn, "list")  # $JOBWATCH_STORE holds the DSN
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "newer jobwatch (schema 99" in result.stderr


async def test_blank_database_is_set_up_only_by_a_writer(pg_server: Any) -> None:
    dsn = pg_server.new_database(blank=True)
    with pytest.raises(StoreError, match="no jobwatch store"):
        await PostgresStore(dsn, mode="write").open()
    async with PostgresStore(dsn, mode="create") as store:
        assert store.schema_version == schema.SCHEMA_VERSION


def test_dsn_shapes_and_passwords_on_argv() -> None:
    assert is_dsn("postgresql://db/jobs") and is_dsn("postgres://db/jobs")
    assert is_dsn("service=jobs") and is_dsn("host=/tmp dbname=jobs")
    assert not is_dsn("runs.db") and not is_dsn("http://h:8787") and not is_dsn("./host=x")
    assert check_dsn("service=jobs") == "service=jobs"
    for secret in ("postgresql://me:hunter2@db/jobs", "host=db password=hunter2"):
        with pytest.raises(UsageError, match="password") as caught:
            check_dsn(secret)
        assert "hunter2" not in str(caught.value)
    assert check_dsn("host=db password=x", argv=False)  # from the environment: allowed
    with pytest.raises(UsageError, match="not a PostgreSQL connection string"):
        check_dsn("host=db dbname")


def test_cli_refuses_a_password_and_a_bad_dsn_in_one_line(tmp_path: Any) -> None:
    for dsn, words in (
        ("postgresql://me:hunter2@127.0.0.1/jobs", "password on the command line"),
        ("host=/nowhere dbname", "not a PostgreSQL connection string"),
    ):
        result = run_cli(tmp_path / "unused.db", "--store", dsn, "list")
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and words in result.stderr
        assert "hunter2" not in result.stderr


async def test_server_down_is_one_line_stale_and_retried(tmp_path: Any) -> None:
    dsn = f"host={tmp_path} port=5999 user=postgres dbname=nothing"
    result = run_cli(tmp_path / "unused.db", "--store", dsn, "list")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot reach postgresql" in result.stderr and "No such file" in result.stderr
    now = [1000.0]
    poller = Poller([PostgresStore(dsn, mode="write")], clock=lambda: now[0], backoff_base=1.0)
    await poller.open()
    feed = poller.feeds[0]
    assert feed.health.stale and "cannot reach postgresql" in (feed.health.error or "")
    first_wait = feed.tracker.wait()
    assert first_wait is not None and first_wait > 0
    assert (await poller.poll_once()).failed == {}  # not due yet: back-off
    now[0] += 120
    report = await poller.poll_once()  # due again: retried, and fails again
    assert "cannot reach postgresql" in report.failed[feed.name]
    assert feed.health.failures == 2
    await poller.close()
