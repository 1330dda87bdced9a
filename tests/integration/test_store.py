"""The embedded store on a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobwatch.core import Run, Status
from jobwatch.core.errors import AmbiguousRunId, NewerStoreError, RunNotFound, StoreError
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.local.schema import SCHEMA_VERSION
from jobwatch.sources.protocol import ListQuery


def make(i: int, status: Status = Status.SUCCEEDED, **kw: object) -> Run:
    created = datetime(2024, 1, 1, tzinfo=UTC).replace(minute=i % 60, second=i % 59)
    return Run(id=f"run-{i:012x}", source="local", status=status, created_at=created, **kw)


async def test_revision_counter_gives_incremental_changes(store: SqliteStore) -> None:
    await store.add_many([make(i) for i in range(5)])
    first = await store.changes(None)
    assert sorted(r.id for r in first.runs) == [make(i).id for i in range(5)]
    assert (await store.changes(first.cursor)).runs == []

    await store.add(make(2, Status.FAILED))
    await store.add(make(99))
    delta = await store.changes(first.cursor)
    assert [r.id for r in delta.runs] == [make(2).id, make(99).id]
    assert delta.runs[0].status is Status.FAILED
    assert int(delta.cursor) > int(first.cursor)


async def test_paging_honours_the_limit_inside_one_revision(store: SqliteStore) -> None:
    await store.add_many([make(i) for i in range(10)])  # one revision
    await store.add(make(50))
    await store.add(make(51))
    seen: list[str] = []
    cursor: int | str | None = None
    for _ in range(10):
        page = await store.changes(cursor, limit=3)
        assert len(page.runs) <= 3
        seen += [r.id for r in page.runs]
        cursor = page.cursor
        if not page.more:
            break
    assert seen == [make(i).id for i in (*range(10), 50, 51)]
    assert cursor == await store.revision()
    await store.add(make(3, Status.FAILED))
    assert [r.id for r in (await store.changes(cursor, limit=3)).runs] == [make(3).id]
    with pytest.raises(ValueError):
        await store.changes("7:x")


async def test_logs_by_seq(store: SqliteStore) -> None:
    await store.add(make(1, Status.RUNNING))
    rid = make(1).id
    assert (await store.log_bounds(rid)).count == 0
    await store.append_logs(rid, [(1.0, "stdout", "info", f"line {i}") for i in range(1, 101)])
    await store.append_logs(rid, [(2.0, "stderr", "error", "boom")])
    bounds = await store.log_bounds(rid)
    assert (bounds.first, bounds.last, bounds.count) == (1, 101, 101)
    tail = await store.log_tail(rid, 3)
    assert [ln.text for ln in tail] == ["line 99", "line 100", "boom"]
    after = await store.log_lines(rid, after=98, limit=2)
    assert [ln.seq for ln in after] == [99, 100]
    assert await store.first_error(rid) == 101
    assert await store.log_find(rid, "line 5", start=0) == 5
    assert await store.log_find(rid, "LINE 5", start=100, backwards=True) == 59
    assert await store.log_find(rid, "50%", start=0) is None


async def test_prefix_resolution(store: SqliteStore) -> None:
    await store.add(Run(id="run-aaaa1111", source="local"))
    await store.add(Run(id="run-aaaa2222", source="local"))
    assert await store.resolve("aaaa1") == "run-aaaa1111"
    assert await store.resolve("run-aaaa2222") == "run-aaaa2222"
    with pytest.raises(AmbiguousRunId):
        await store.resolve("aaaa")
    with pytest.raises(RunNotFound):
        await store.resolve("zzzz")


async def test_actions_follow_the_transition_table(store: SqliteStore) -> None:
    await store.add(make(1, Status.RUNNING))
    with pytest.raises(Exception, match="still running"):
        await store.archive(make(1).id)
    result = await store.abort(make(1).id, by="tester")
    assert result.run.status is Status.ABORTED  # nothing owns it: aborted at once
    assert result.run.reason and "tester" in (result.run.reason.message or "")
    archived = await store.archive(make(1).id)
    assert archived.run.archived and archived.run.status is Status.ABORTED
    runs, _ = await store.list_runs(ListQuery())
    assert make(1).id not in [r.id for r in runs]
    runs, _ = await store.list_runs(ListQuery(include_archived=True))
    assert make(1).id in [r.id for r in runs]
    back = await store.unarchive(make(1).id)
    assert not back.run.archived and back.run.status is Status.ABORTED


async def test_abort_of_a_managed_run_is_a_request(store: SqliteStore) -> None:
    import os

    await store.add(make(1, Status.RUNNING), managed_by=os.getpid())
    result = await store.abort(make(1).id, by="ops")
    assert result.run.status is Status.RUNNING
    assert await store.abort_requested(make(1).id) == "ops"
    shown = await store.get(make(1).id)
    assert shown.metadata and shown.metadata["abort_requested_by"] == "ops"


async def test_read_only_refuses_actions(store_path: Path) -> None:
    async with SqliteStore(store_path) as rw:
        await rw.add(make(1, Status.RUNNING))
    async with SqliteStore(store_path, read_only=True) as ro:
        with pytest.raises(Exception, match="read-only"):
            await ro.abort(make(1).id, by="x")
        assert (await ro.get(make(1).id)).status is Status.RUNNING


async def test_malformed_record_is_an_error_not_a_drop(
    store: SqliteStore, store_path: Path
) -> None:
    await store.add_many([make(1), make(2)])
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE run_docs SET data = ? WHERE id = ?", ('{"id": 5}', make(2).id))
    changes = await store.changes(None)
    assert [r.id for r in changes.runs] == [make(1).id]
    assert len(changes.errors) == 1
    assert changes.errors[0].id == make(2).id
    assert "id: Input should be a valid string (and 1 more)" in changes.errors[0].message
    assert changes.errors[0].raw == '{"id": 5}'


async def test_newer_store_is_refused_and_left_untouched(store_path: Path) -> None:
    async with SqliteStore(store_path) as s:
        await s.add(make(1))
    with sqlite3.connect(store_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = store_path.read_bytes()
    with pytest.raises(NewerStoreError, match="newer jobwatch"):
        async with SqliteStore(store_path):
            pass
    assert store_path.read_bytes() == before


async def test_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a jobwatch store"):
        async with SqliteStore(junk):
            pass


async def test_missing_store_is_not_created_for_readers(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        async with SqliteStore(tmp_path / "nope.db", create=False):
            pass
    assert not (tmp_path / "nope.db").exists()


async def test_lost_owner_is_reaped(store: SqliteStore) -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that certainly no longer runs
    await store.add(make(1, Status.RUNNING), managed_by=child.pid)
    assert await store.reap_lost() == [make(1).id]
    lost = await store.get(make(1).id)
    assert lost.status is Status.UNKNOWN
    assert lost.reason and lost.reason.type == "lost"
    assert await store.reap_lost() == []


async def test_silent_owner_is_reaped_after_timeout(store_path: Path) -> None:
    """Only an owner this host cannot check (it runs elsewhere) is judged by its
    heartbeat; a live local owner is never lost, however old its heartbeat."""
    import os
    import sqlite3

    async with SqliteStore(store_path, lost_after=0.0) as s:
        await s.add(make(1, Status.RUNNING), managed_by=os.getpid())
        assert await s.reap_lost() == []
        with sqlite3.connect(store_path) as other:
            other.execute("UPDATE runs SET host = 'another-host' WHERE id = ?", (make(1).id,))
        assert await s.reap_lost() == [make(1).id]


def test_sqlite_store_is_a_source(store_path: Path) -> None:
    from jobwatch.sources import Source

    assert isinstance(SqliteStore(store_path), Source)


async def test_row_changes_match_the_full_model(store: SqliteStore) -> None:
    from jobwatch.core import Progress, RunError, RunRow

    full = make(
        7,
        Status.SUCCEEDED,
        progress=Progress(total=4, succeeded=3, failed=1),
        error=RunError(code="E42"),
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
        ended_at=datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC),
        label="nightly",
    )
    await store.add(full)
    delta = await store.row_changes(None)
    rows, cursor = delta.rows, delta.cursor
    assert rows == [RunRow.from_run(full)]
    assert rows[0].partial and rows[0].problem == "E42" and rows[0].duration_ms == 5000
    idle = await store.row_changes(cursor)
    assert (idle.rows, idle.cursor) == ([], cursor)


async def test_migrations_run_forward_and_keep_runs(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of the current schema opens under a newer one, which migrates it
    forward in place without losing a run; the older code then refuses it."""
    from jobwatch.sources.local import schema

    async with SqliteStore(store_path) as s:
        await s.add(make(3, Status.FAILED, label="old"))
    newer = {
        **schema.MIGRATIONS,
        SCHEMA_VERSION + 1: (
            "ALTER TABLE runs ADD COLUMN note TEXT",
            "UPDATE runs SET note = 'migrated'",
        ),
    }
    monkeypatch.setattr(schema, "MIGRATIONS", newer)
    async with SqliteStore(store_path) as s:
        assert (await s.get(make(3).id)).label == "old"
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert db.execute("SELECT note FROM runs").fetchall() == [("migrated",)]
    monkeypatch.undo()
    with pytest.raises(NewerStoreError):
        async with SqliteStore(store_path):
            pass


async def test_a_cursor_from_a_replaced_store_starts_a_fresh_sync(tmp_path: Path) -> None:
    """A store file swapped for an older backup has a lower revision than the
    reader's cursor; the reader gets everything again instead of waiting forever."""
    async with SqliteStore(tmp_path / "old.db") as old:
        for i in range(10):
            await old.add(make(i))
        cursor = (await old.changes(None)).cursor
    async with SqliteStore(tmp_path / "new.db") as new:
        await new.add_many([make(100), make(101)])
        again = await new.changes(cursor)
        assert sorted(r.id for r in again.runs) == [make(100).id, make(101).id]
        assert int(again.cursor) <= await new.revision()
        delta = await new.row_changes(cursor)
        rows, row_cursor = delta.rows, delta.cursor
        assert sorted(r.id for r in rows) == [make(100).id, make(101).id]
        assert row_cursor == await new.revision()
        assert (await new.changes(again.cursor)).runs == []


async def test_a_write_cancelled_while_it_begins_leaves_no_transaction_open(
    store: SqliteStore,
) -> None:
    """Quitting the demo cancels its writer mid-write. The BEGIN runs on in the
    connection's thread even when the wait for it is cancelled, so without a
    rollback the next write failed with "cannot start a transaction within a
    transaction". Cancelled at each of its first few awaits, a write leaves the
    store writable."""
    for i in range(12):
        write = asyncio.create_task(store.add(Run(id=f"cancelled-{i}", source="local")))
        for _ in range(i % 4):  # let it reach a different await each time
            await asyncio.sleep(0)
        write.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await write
        await store.add(Run(id=f"after-{i}", source="local"))
    ids = {run.id for run in (await store.changes(None)).runs}
    assert {f"after-{i}" for i in range(12)} <= ids
