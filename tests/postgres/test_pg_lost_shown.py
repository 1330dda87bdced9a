"""A store that writes nothing (``--read-only``, a SELECT-only role) shows a silent
host's running runs as lost, on every read, without touching the database; the
run shows running again once its host heartbeats (the verdict is only shown).

A killed host is set up without processes: a writer store with a host id of its
own adds a managed run (its host row beats on the server's clock), then the host
row is aged past ``lost_after`` on the server, as if the host had died then."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict
from test_pg_store import make_run

from conftest import run_cli, wait_for_async
from jobwatch.core import RunRow, Status
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import ListQuery, WindowTerm, WindowView

DEAD = "host-dead"
RUN = "run-0002"


async def killed_host(dsn: str) -> PostgresStore:
    """A writer on host ``DEAD`` with one managed running run (``RUN``) and one
    finished run, its host then silent for an hour; returns that writer (open)."""
    writer = PostgresStore(dsn, mode="write")
    writer.host = DEAD
    await writer.open()
    await writer.add(make_run(1))
    await writer.add(make_run(2, Status.RUNNING), managed_by=1)
    await age_host(writer)
    return writer


async def age_host(store: PostgresStore) -> None:
    async with store._conn() as conn:
        await conn.execute(
            "UPDATE hosts SET heartbeat_at = heartbeat_at - 3600 WHERE host_id = %s", (DEAD,)
        )


async def stored(store: PostgresStore) -> tuple[Any, ...]:
    """``RUN`` as stored: status, revision, feed entries, whether it is managed."""
    row = await store._one(
        "SELECT status, revision, (SELECT COUNT(*) FROM run_changes WHERE run_id = %(id)s), "
        "heartbeat_at IS NOT NULL FROM runs WHERE id = %(id)s",
        {"id": RUN},
    )
    assert row is not None
    return tuple(row)


def status_of(rows: list[RunRow], run_id: str = RUN) -> Status:
    return {r.id: r.status for r in rows}[run_id]


async def test_a_read_only_store_shows_a_silent_hosts_run_lost_and_writes_nothing(
    pg_dsn: str,
) -> None:
    writer = await killed_host(pg_dsn)
    try:
        before = await stored(writer)
        assert before[0] == "running" and before[3]
        async with PostgresStore(pg_dsn, mode="read") as reader:
            run = await reader.get(RUN)
            assert run.status is Status.UNKNOWN and run.reason is not None
            assert f"no heartbeat from its host {DEAD}" in (run.reason.message or "")
            changes = await reader.changes(None)
            assert {r.id: r.status for r in changes.runs}[RUN] is Status.UNKNOWN
            assert status_of((await reader.row_changes(None)).rows) is Status.UNKNOWN
            assert status_of((await reader.row_changes(None, 10)).rows) is Status.UNKNOWN
            records = await reader.row_records(None, 10)
            at = records.fields.index("status")
            assert {r[1]: r[at] for r in records.records}[RUN] == "unknown"
            assert status_of(await reader.first_rows(5)) is Status.UNKNOWN
            assert status_of((await reader.triage_rows(per_job=5, since=0.0)).rows) is (
                Status.UNKNOWN
            )
            assert status_of(await reader.window_rows(WindowView())) is Status.UNKNOWN
            listed, _ = await reader.list_runs(ListQuery())
            assert {r.id: r.status for r in listed}[RUN] is Status.UNKNOWN
            counts = await reader.status_counts()
            assert counts.by_status.get("running", 0) == 0
            assert counts.by_status["unknown"] == 1
            assert await reader.reap_lost() == [RUN]  # shown, not written
        assert await stored(writer) == before  # status, revision and feed untouched
        # A writer still marks it lost, once.
        async with PostgresStore(pg_dsn, mode="write") as other:
            assert await other.reap_lost() == [RUN]
            assert await other.reap_lost() == []
        after = await stored(writer)
        assert after[0] == "unknown" and after[2] == before[2] + 1 and not after[3]
    finally:
        await writer.close()


async def test_the_shown_verdict_follows_the_host_at_each_poll(pg_dsn: str) -> None:
    """Lost while the host is silent, running again once it beats, lost again when
    it falls silent: each change reaches the very next poll, once, although no
    revision moves."""
    writer = await killed_host(pg_dsn)
    try:
        before = await stored(writer)
        async with PostgresStore(pg_dsn, mode="read") as reader:
            first = await reader.changes(None)
            assert {r.id: r.status for r in first.runs}[RUN] is Status.UNKNOWN
            rows = await reader.row_changes(None)
            await writer.heartbeat()  # the host is back
            again = await reader.changes(first.cursor)
            assert [(r.id, r.status) for r in again.runs] == [(RUN, Status.RUNNING)]
            assert again.cursor == first.cursor
            assert (await reader.changes(again.cursor)).runs == []
            assert (await reader.get(RUN)).status is Status.RUNNING
            await age_host(writer)  # silent again
            delta = await reader.row_changes(rows.cursor)
            assert [(r.id, r.status) for r in delta.rows] == [(RUN, Status.UNKNOWN)]
            assert delta.cursor == rows.cursor
            assert (await reader.row_changes(delta.cursor)).rows == []
            await writer.heartbeat()
            records = await reader.row_records(rows.cursor, 100)
            at = records.fields.index("status")
            assert [(r[1], r[at]) for r in records.records] == [(RUN, "running")]
        assert await stored(writer) == before
    finally:
        await writer.close()


async def test_read_only_list_on_the_command_line_shows_it_lost(pg_dsn: str) -> None:
    writer = await killed_host(pg_dsn)
    try:
        before = await stored(writer)
        parts = conninfo_to_dict(pg_dsn)
        url = (
            f"postgresql://{parts['user']}@/{parts['dbname']}"
            f"?host={quote(str(parts['host']), safe='')}&port={parts['port']}"
        )
        listed = run_cli(pg_dsn, "list", "--read-only", "--store", url, "--json")  # type: ignore[arg-type]
        assert listed.returncode == 0, listed.stderr
        shown = {r["id"]: r for r in json.loads(listed.stdout)}
        assert shown[RUN]["status"] == "unknown"
        assert "no heartbeat from its host" in shown[RUN]["reason"]["message"]
        only = run_cli(pg_dsn, "list", "--read-only", "--status", "running", "--json")  # type: ignore[arg-type]
        assert only.returncode == 0, only.stderr
        assert json.loads(only.stdout) == []
        lost = run_cli(pg_dsn, "list", "--read-only", "--status", "unknown", "--json")  # type: ignore[arg-type]
        assert [r["id"] for r in json.loads(lost.stdout)] == [RUN]
        assert await stored(writer) == before
    finally:
        await writer.close()


async def test_a_select_only_role_opened_writable_shows_lost_and_writes_nothing(
    pg_server: Any, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    writer = await killed_host(pg_dsn)
    role = "ro_" + pg_dsn.rsplit("dbname=", 1)[1]
    async with writer._conn() as conn:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        before = await stored(writer)
        async with writer._conn() as conn:
            await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
            await conn.execute(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        dsn = pg_dsn.replace("user=postgres", f"user={role}")
        caplog.set_level(logging.WARNING, logger="jobwatch.sources.postgres.store")
        async with PostgresStore(dsn, mode="write") as store:
            assert await store.reap_lost() == [RUN]  # refused, so shown
            assert (await store.get(RUN)).status is Status.UNKNOWN
            assert status_of((await store.row_changes(None)).rows) is Status.UNKNOWN
            assert await store.reap_lost() == [RUN]
            listed, _ = await store.list_runs(ListQuery(statuses=("unknown",)))
            assert [r.id for r in listed] == [RUN]
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 1, warned  # one clear line, not one per read
        assert "permission denied" in warned[0] and "shown, not marked" in warned[0]
        assert await stored(writer) == before
    finally:
        async with writer._conn() as conn:  # its grants live in the test's database
            await conn.execute(f"DROP OWNED BY {role}")
        await writer.close()
        pg_server.admin(f"DROP ROLE {role}")


async def test_windowed_filters_of_a_read_only_store_see_the_shown_status(pg_dsn: str) -> None:
    writer = await killed_host(pg_dsn)
    try:
        await writer.add_many([make_run(3, Status.FAILED), make_run(4, Status.RUNNING)])
        async with PostgresStore(pg_dsn, mode="read") as reader:

            async def ids(view: WindowView) -> list[str]:
                rows = await reader.window_rows(view)
                assert await reader.window_count(view) == len(rows)
                return sorted(r.id for r in rows)

            def term(value: str, field: str | None = "status", negate: bool = False) -> Any:
                return WindowView(terms=(WindowTerm(field, value, negate),))

            assert await ids(term("unknown")) == [RUN]
            assert await ids(term("running")) == ["run-0004"]
            assert await ids(term("unknown", negate=True)) == ["run-0001", "run-0003", "run-0004"]
            assert await ids(term("unknown", None)) == [RUN]  # free text matches the status
            everyone = ["run-0001", RUN, "run-0003", "run-0004"]
            assert await ids(term("ünknown", None)) == []  # not ASCII: another SQL shape
            assert await ids(term("ünknown", None, negate=True)) == everyone
            assert await ids(term("ü", negate=True)) == everyone  # a status prefix, not ASCII
            assert await ids(WindowView(faults_only=True)) == [RUN, "run-0003"]
            assert await ids(WindowView(faults_only=True, terms=term("run-0002", None).terms)) == [
                RUN
            ]
            # Paging by keyset from a shown-lost row reaches every row once, in
            # every sort (the sorts order by what is stored).
            for sort in ("status", "started", "changed", "duration", "problem"):
                view = WindowView(sort=sort)
                whole = [r.id for r in await reader.window_rows(view)]
                paged: list[str] = []
                last: RunRow | None = None
                for _ in range(10):
                    page = await reader.window_rows(view, limit=1, after=last)
                    if not page:
                        break
                    paged.append(page[0].id)
                    last = page[0]
                assert paged == whole, sort
                at = whole.index(RUN)
                shown = (await reader.window_rows(view, offset=at, limit=1))[0]
                assert shown.status is Status.UNKNOWN
                assert await reader.window_count(view, before=shown) == at, sort
    finally:
        await writer.close()


async def test_a_read_only_monitor_sees_the_host_fall_silent_and_come_back(pg_dsn: str) -> None:
    """The poller of a read-only monitor: no revision moves and no notification
    comes when a host falls silent, yet its next poll shows the run lost, and the
    one after the host beats again shows it running."""
    writer = PostgresStore(pg_dsn, mode="write")
    writer.host = DEAD
    await writer.open()
    try:
        await writer.add(make_run(2, Status.RUNNING), managed_by=1)
        reader = PostgresStore(pg_dsn, mode="read")
        reader.pace = 0.2  # the slow fallback poll, quick for the test
        rows: dict[str, RunRow] = {}

        def take(_feed: Any, delta: list[RunRow], _first: bool) -> None:
            rows.update((r.id, r) for r in delta)

        poller = Poller([reader], on_rows=take, refresh=0.1)
        stop = asyncio.Event()
        await poller.open(strict=True)
        task = asyncio.create_task(poller.run(stop=stop))

        async def shows(status: Status) -> bool:
            row = rows.get(RUN)
            return row is not None and row.status is status

        try:
            await wait_for_async(lambda: shows(Status.RUNNING), timeout=30)
            await age_host(writer)
            await wait_for_async(lambda: shows(Status.UNKNOWN), timeout=30)
            assert rows[RUN].problem == "lost"
            await writer.heartbeat()
            await wait_for_async(lambda: shows(Status.RUNNING), timeout=30)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await poller.close()
        assert (await stored(writer))[0] == "running"
    finally:
        await writer.close()
