"""The monitor over a store bigger than its window, driven with Pilot: it scrolls
the whole history while holding a bounded number of rows, on a SQLite store and
on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobwatch.core import Run, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.table_model.window import WINDOW_ROWS, WindowedRunSet
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import NOW, make_app, ready, settle

COUNT = WINDOW_ROWS + 1500


Store = SqliteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
async def big(request: pytest.FixtureRequest, store_path: Path) -> AsyncIterator[Store]:
    runs = [
        Run(
            id=f"run-{i:06d}",
            source="local",
            job="nightly" if i % 2 else "hourly",
            status=Status.FAILED if i % 7 == 0 else Status.SUCCEEDED,
            created_at=NOW - timedelta(minutes=i),
            started_at=NOW - timedelta(minutes=i),
        )
        for i in range(COUNT)
    ]
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        async with PostgresStore(dsn) as pg_writer:
            await pg_writer.add_many(runs)
        async with PostgresStore(dsn, mode="write") as pg_opened:
            yield pg_opened
        return
    async with SqliteStore(store_path) as writer:
        await writer.add_many(runs)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


async def window_settled(app: JobwatchApp, pilot: object) -> None:
    for _ in range(50):  # bounded: each round waits for the window's worker
        await settle(app, pilot, "window", "detail")
        runs = app.runs
        assert isinstance(runs, WindowedRunSet)
        if not (runs.need_reload or runs.need_resync or runs.need_extend or app._window_busy):
            return
    raise AssertionError("the window never settled")


async def test_end_scrolls_to_the_oldest_run_holding_a_window(big: Store, store_path: Path) -> None:
    app = make_app(big, window_from=0)
    await app.preload()
    assert isinstance(app.runs, WindowedRunSet)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        assert len(app.runs) == COUNT  # the table's height is the whole history
        assert table.virtual_size.height == COUNT + 1
        assert app.runs.held() <= WINDOW_ROWS
        assert table.cursor_key == ("local", "run-000000")
        await pilot.press("end")
        await window_settled(app, pilot)
        assert table.cursor_key == ("local", f"run-{COUNT - 1:06d}")
        assert app.runs.held() <= WINDOW_ROWS
        await pilot.press("home")
        await window_settled(app, pilot)
        assert table.cursor_key == ("local", "run-000000")
        # status counts come from the store's aggregate, not from the rows held
        assert app.runs.counts[Status.FAILED] == len(range(0, COUNT, 7))
        await pilot.press("slash")
        await pilot.press(*"status:failed")
        await pilot.press("enter")
        await window_settled(app, pilot)
        assert len(app.runs) == len(range(0, COUNT, 7))
        assert table.cursor_key is not None and app.runs.rows[table.cursor_key].status is (
            Status.FAILED
        )


async def test_a_marked_run_scrolled_out_of_the_window_is_still_acted_on(
    big: Store,
) -> None:
    """A mark at the top, then End: the row is gone from the window, and archiving
    must still reach it (it used to be dropped without a word)."""
    app = make_app(big, window_from=0)
    await app.preload()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        await pilot.press("space")  # marks run-000000, the top row
        await pilot.press("end")
        await window_settled(app, pilot)
        assert ("local", "run-000000") not in app.runs.rows
        assert app._marks_flag() == ["1 marked, 1 hidden"]
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot, "actions")
        await window_settled(app, pilot)
        assert not app.runs.marked, [n.message for n in app._notifications]
    run = await big.get("run-000000")
    assert run is not None and run.archived


async def test_a_small_store_keeps_every_row(big: Store) -> None:
    app = make_app(big)  # the default threshold is far above this store
    await app.preload()
    assert type(app.runs) is RunSet
