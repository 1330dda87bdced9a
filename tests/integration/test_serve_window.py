"""Windowed reads over ``jobwatch serve`` (``/api/v1/window/…``): a client holds a
window of a big store on another machine, page for page what the store itself
answers, over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_serve_paced import config

from conftest import TEST_TOKEN, LoopbackServer, serve_cli
from jobwatch.core import Run, RunError, RunRow, Status
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import ListQuery, WindowTerm, WindowView
from jobwatch.tui.table_model.window import WINDOW_ROWS, WindowedRunSet
from jobwatch.tui.widgets.runs_table import RunsTable
from standins.modzy import API_KEY, ModzyStandIn
from standins.server import serving
from tui_support import make_app, ready, settle

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
COUNT = 400
SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


def runs() -> list[Run]:
    """Starts a fraction of a millisecond apart (the client's copy of a row has
    whole milliseconds: a page from it would skip or repeat such rows), ties on
    status and job, archived rows, a secret in a label."""
    out = []
    for i in range(COUNT):
        status = (Status.SUCCEEDED, Status.FAILED, Status.RUNNING, Status.SUCCEEDED)[i % 4]
        when = T0 - timedelta(seconds=i // 3, microseconds=(i % 3) * 300)
        out.append(
            Run(
                id=f"run-{i:05d}",
                source="local",
                job=("etl", "Backup", "sync")[i % 3],
                label=f"deploy token={SECRET}" if i == 5 else None,
                status=status,
                created_at=when,
                started_at=None if i % 11 == 0 else when,
                ended_at=None if status is Status.RUNNING else when + timedelta(seconds=i % 7),
                duration_ms=None if status is Status.RUNNING else 1000.0 * (i % 7),
                archived=i % 37 == 36,
                error=RunError(code="exit-1", message="step 3 failed")
                if status is Status.FAILED
                else None,
            )
        )
    return out


@pytest.fixture
async def served(store_path: Path) -> AsyncIterator[tuple[SqliteStore, HttpSource]]:
    async with SqliteStore(store_path) as writer:
        await writer.add_many(runs())
    server = LoopbackServer(store_path).start()
    try:
        async with (
            SqliteStore(store_path, create=False) as store,
            HttpSource(server.url, token=TEST_TOKEN) as client,
        ):
            yield store, client
    finally:
        server.stop()


VIEWS = [
    WindowView(),
    WindowView(sort="status"),
    WindowView(sort="job", show_archived=True),
    WindowView(sort="duration"),
    WindowView(sort="changed", faults_only=True),
    WindowView(sort="problem", terms=(WindowTerm("job", "backup,sync"),)),
    WindowView(terms=(WindowTerm(None, "etl"), WindowTerm("status", "failed", True))),
]


def keys(rows: list[RunRow]) -> list[tuple[str, str]]:
    return [r.key for r in rows]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: f"{v.sort}-{len(v.terms)}")
async def test_every_page_is_the_stores_own(
    served: tuple[SqliteStore, HttpSource], view: WindowView
) -> None:
    store, client = served
    assert client.capabilities.window
    total = await store.window_count(view)
    assert await client.window_count(view) == total > 0
    whole = await store.window_rows(view, limit=COUNT)
    assert keys(await client.window_rows(view, limit=COUNT)) == keys(whole)
    assert keys(await client.window_rows(view, offset=7, limit=50)) == keys(whole[7:57])
    assert keys(await client.window_rows(view, limit=20, from_end=True)) == keys(whole[-20:])
    # Paged by the client's own copies of the rows, whole milliseconds and all:
    # each page starts right after (or ends right before) the row it was given.
    mine = await client.window_rows(view, limit=COUNT)
    for at in (0, 1, 2, len(mine) // 2, len(mine) - 2):
        after = await client.window_rows(view, limit=30, after=mine[at])
        assert keys(after) == keys(whole[at + 1 : at + 31]), at
        before = await client.window_rows(view, limit=30, before=mine[at])
        assert keys(before) == keys(whole[max(0, at - 30) : at]), at
        assert await client.window_count(view, before=mine[at]) == at


async def test_counts_head_and_triage_are_the_stores(
    served: tuple[SqliteStore, HttpSource],
) -> None:
    store, client = served
    assert await client.status_counts() == await store.status_counts()
    assert await client.head_cursor() == await store.head_cursor()
    since = (T0 - timedelta(seconds=60)).timestamp()
    mine = await client.triage_rows(per_job=20, since=since)
    theirs = await store.triage_rows(per_job=20, since=since)
    assert mine is not None
    assert sorted(keys(mine.rows)) == sorted(keys(theirs.rows))
    assert sorted(mine.before) == sorted(theirs.before)
    # text leaves the server redacted, as in every other answer
    page = await client.window_rows(WindowView(show_archived=True), limit=COUNT)
    label = next(r.label for r in page if r.id == "run-00005")
    assert label is not None and SECRET not in label and "token=" in label


async def test_bad_windowed_input_is_a_400(served: tuple[SqliteStore, HttpSource]) -> None:
    _, client = served
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=client.url + "/api/v1", headers=headers) as http:
        for params in (
            {"view": "not json"},
            {"view": '{"sort": "nonsense"}'},
            {"view": '{"terms": [["owner", "x", false, null]]}'},
            {"view": "{}", "after": '{"format": "rows/1"}'},
            {"view": "{}", "limit": "0"},
        ):
            answer = await http.get("/window/rows", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"] == "bad_request"


async def test_a_server_without_a_store_says_so_and_the_client_syncs(tmp_path: Path) -> None:
    """A served vendor source answers no windows: the client says it has none
    after its first ask, so a monitor syncs everything as before."""
    modzy = ModzyStandIn()
    for status in ("COMPLETED", "IN_PROGRESS"):
        modzy.add_job(status)
    with serving(modzy.app) as upstream:
        args = ("--config", str(config(tmp_path, upstream.url)), "--source", "modzy")
        env = {"JW_MODZY_KEY": API_KEY}
        with serve_cli(tmp_path / "unused.db", *args, store=False, env=env) as server:
            async with HttpSource(server.url, token=TEST_TOKEN) as client:
                assert client.capabilities.window  # until it asks
                assert (await client.status_counts()).total == 0
                assert not client.capabilities.window
                assert await client.triage_rows(per_job=5, since=0.0) is None


async def bigger_than_a_window(store_path: Path) -> int:
    """A store of more runs than a window holds, one a second back from ``T0``."""
    count = WINDOW_ROWS + 500
    async with SqliteStore(store_path) as writer:
        await writer.add_many(
            [
                Run(
                    id=f"run-{i:06d}",
                    source="local",
                    job="etl",
                    status=Status.SUCCEEDED,
                    created_at=T0 - timedelta(seconds=i),
                    started_at=T0 - timedelta(seconds=i),
                )
                for i in range(count)
            ]
        )
    return count


async def test_the_monitor_holds_a_window_of_a_served_store(tmp_path: Path) -> None:
    """Over ``--source http://…`` a big store is a window too: the table's height
    is the whole history, the rows held stay bounded, End reaches the oldest."""
    store_path = tmp_path / "big.db"
    count = await bigger_than_a_window(store_path)
    server = LoopbackServer(store_path).start()
    try:
        async with HttpSource(server.url, token=TEST_TOKEN) as client:
            app = make_app(client, window_from=100)
            await app.preload()
            assert isinstance(app.runs, WindowedRunSet)
            async with app.run_test(size=(120, 30)) as pilot:
                await ready(app, pilot)
                table = app.main.query_one(RunsTable)
                assert len(app.runs) == count
                assert table.cursor_key == ("local", "run-000000")
                await pilot.press("end")
                for _ in range(50):  # bounded: each round waits for the window's worker
                    await settle(app, pilot, "window", "detail")
                    if table.cursor_key == ("local", f"run-{count - 1:06d}"):
                        break
                assert table.cursor_key == ("local", f"run-{count - 1:06d}")
                assert app.runs.held() <= WINDOW_ROWS
    finally:
        server.stop()


def test_the_serve_cli_answers_windows_over_a_store_file(tmp_path: Path) -> None:
    """``jobwatch serve --store FILE`` as a user starts it (a process of its own)."""
    import asyncio

    store_path = tmp_path / "runs.db"

    async def fill() -> None:
        async with SqliteStore(store_path) as writer:
            await writer.add_many(runs()[:50])

    asyncio.run(fill())
    os.chmod(store_path, 0o600)
    with serve_cli(store_path) as server:
        headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as http:
            counts = http.get("/window/counts").json()
            assert sum(counts["by_status"].values()) + counts["archived"] == 50
            page = http.get("/window/rows", params={"view": "{}", "limit": 5}).json()
            assert page["format"] == "rows/1" and page["count"] == 5


class PgLoopback(LoopbackServer):
    """The real API app over a real PostgreSQL store."""

    def __init__(self, dsn: str) -> None:
        super().__init__(Path("unused"))
        self.dsn = dsn

    @contextlib.asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        from jobwatch.server.app import create_app

        async with PostgresStore(self.dsn, mode="read") as store:
            yield create_app(store, token=self.token)


async def test_pages_over_a_served_postgres_store_are_its_own(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as writer:
        await writer.add_many(runs())
    server = PgLoopback(pg_dsn).start()
    try:
        async with (
            PostgresStore(pg_dsn, mode="read") as store,
            HttpSource(server.url, token=TEST_TOKEN) as client,
        ):
            for view in (WindowView(), WindowView(sort="status", show_archived=True)):
                whole = await store.window_rows(view, limit=COUNT)
                mine = await client.window_rows(view, limit=COUNT)
                assert keys(mine) == keys(whole)
                for at in (0, 1, 2, len(mine) // 2):
                    after = await client.window_rows(view, limit=30, after=mine[at])
                    assert keys(after) == keys(whole[at + 1 : at + 31]), at
                    assert await client.window_count(view, before=mine[at]) == at
    finally:
        server.stop()


async def test_a_listing_is_filtered_by_the_servers_store(store_path: Path) -> None:
    """``jobwatch list`` over serve asks the store behind it (one request) instead
    of syncing every run to show fifty (36 s at 100k runs, measured)."""
    async with SqliteStore(store_path) as writer:
        await writer.add_many(runs())
    server = LoopbackServer(store_path).start()
    try:
        async with (
            SqliteStore(store_path, create=False) as store,
            HttpSource(server.url, token=TEST_TOKEN) as client,
        ):
            for query in (
                ListQuery(limit=5),
                ListQuery(statuses=("failed", "running"), limit=7),
                ListQuery(jobs=("etl",), include_archived=True, limit=200),
                ListQuery(run_sources=("local",), limit=3),
            ):
                server.faults.reset_hits()
                mine, _ = await client.list_runs(query)
                theirs, _ = await store.list_runs(query)
                assert [r.id for r in mine] == [r.id for r in theirs], query
                assert server.faults.paths == ["/api/v1/list"], query  # not a sync
            secret = await client.list_runs(ListQuery(limit=COUNT, include_archived=True))
            assert SECRET not in repr(secret)
    finally:
        server.stop()


async def test_a_listing_from_a_server_that_cannot_filter_is_synced(tmp_path: Path) -> None:
    modzy = ModzyStandIn()
    for status in ("COMPLETED", "FAILED", "IN_PROGRESS"):
        modzy.add_job(status)
    with serving(modzy.app) as upstream:
        args = ("--config", str(config(tmp_path, upstream.url)), "--source", "modzy")
        env = {"JW_MODZY_KEY": API_KEY}
        with serve_cli(tmp_path / "unused.db", *args, store=False, env=env) as server:
            async with HttpSource(server.url, token=TEST_TOKEN) as client:
                found, _ = await client.list_runs(ListQuery(limit=2))
                assert len(found) == 2 and not client._list_api


async def test_a_server_gone_while_scrolling_is_one_toast_not_a_pile(tmp_path: Path) -> None:
    """Every page the window wants fails while the server is down; the same words
    again are no news: one toast stays, not one per key press."""
    store_path = tmp_path / "big.db"
    await bigger_than_a_window(store_path)
    server = LoopbackServer(store_path).start()
    try:
        client = HttpSource(server.url, token=TEST_TOKEN, attempts=1, connect_retries=0)
        async with client:
            app = make_app(client, window_from=100)
            await app.preload()
            async with app.run_test(size=(120, 30)) as pilot:
                await ready(app, pilot)
                server.stop()
                for key in ("end", "home", "end", "home", "end"):
                    await pilot.press(key)
                    await settle(app, pilot, "window")
                said = [n for n in app._notifications if "cannot read the table" in n.message]
                assert len(said) == 1, [n.message for n in app._notifications]
    finally:
        server.stop()


async def test_a_windowed_monitor_starts_in_three_requests(tmp_path: Path) -> None:
    """Counts (with the head revision), the view's height and its first page: the
    head and a second count each cost a round trip before the first paint."""
    store_path = tmp_path / "big.db"
    await bigger_than_a_window(store_path)
    server = LoopbackServer(store_path).start()
    try:
        async with HttpSource(server.url, token=TEST_TOKEN) as client:
            app = make_app(client, window_from=100)
            server.faults.reset_hits()
            await app.preload()
            assert isinstance(app.runs, WindowedRunSet) and len(app.runs.rows)
            asked = [p.removeprefix("/api/v1") for p in server.faults.paths]
            assert asked == ["/window/counts", "/window/count", "/window/rows"], asked
            async with SqliteStore(store_path, create=False) as store:
                assert app.feeds[0].cursor == await store.head_cursor()
    finally:
        server.stop()


async def test_a_remote_window_follows_runs_that_change_on_the_server(tmp_path: Path) -> None:
    """Over time: a run started on the server's host shows on top at the next poll,
    one that fails there is failed here, and the counts follow; the window stays
    bounded and nothing is read whole."""
    store_path = tmp_path / "big.db"
    count = await bigger_than_a_window(store_path)
    server = LoopbackServer(store_path).start()
    try:
        async with HttpSource(server.url, token=TEST_TOKEN) as client:
            app = make_app(client, window_from=100)
            await app.preload()
            async with app.run_test(size=(120, 30)) as pilot:
                await ready(app, pilot)
                table = app.main.query_one(RunsTable)
                async with SqliteStore(store_path, create=False, mode="write") as writer:
                    fresh = Run(
                        id="run-new",
                        source="local",
                        job="etl",
                        status=Status.RUNNING,
                        created_at=T0 + timedelta(seconds=5),
                        started_at=T0 + timedelta(seconds=5),
                    )
                    await writer.add(fresh)
                    await app.poll_once()
                    await settle(app, pilot, "window")
                    assert len(app.runs) == count + 1
                    assert table.cursor_key == ("local", "run-new")  # the cursor follows the top
                    await writer.update(
                        "run-new",
                        lambda run: run.evolve(
                            status=Status.FAILED,
                            ended_at=T0 + timedelta(seconds=9),
                            error=RunError(code="exit-2", message="disk full"),
                        ),
                    )
                    await app.poll_once()
                    await settle(app, pilot, "window")
                row = app.runs.rows[("local", "run-new")]
                assert row.status is Status.FAILED and row.message == "disk full"
                assert app.runs.counts[Status.FAILED] == 1
                assert app.runs.held() <= WINDOW_ROWS
    finally:
        server.stop()


class NoTriageServer(LoopbackServer):
    """The real app over a real store that answers windows but has no triage fill
    (as a source that windows through another may): its own stand-in, nothing else."""

    @contextlib.asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        from jobwatch.server.app import create_app

        async with SqliteStore(self.store_path) as store:

            async def none(*, per_job: int, since: float) -> None:
                return None

            store.triage_rows = none  # type: ignore[assignment,method-assign]
            yield create_app(store, token=self.token)


async def test_a_server_without_a_triage_fill_keeps_its_windows(store_path: Path) -> None:
    """A server without a triage fill says so for that read: the client keeps its windows."""
    async with SqliteStore(store_path) as writer:
        await writer.add_many(runs()[:50])
    server = NoTriageServer(store_path).start()
    try:
        async with HttpSource(server.url, token=TEST_TOKEN) as client:
            assert await client.triage_rows(per_job=5, since=0.0) is None
            assert client.capabilities.window
            assert len(await client.window_rows(WindowView(), limit=10)) == 10
    finally:
        server.stop()
