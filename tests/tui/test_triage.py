"""Triage at 80x24: the detail pane puts the problem first and starts at its top;
keys in the detail and log panes do what their pane says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static

from jobwatch.core import Progress, Run, RunError, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import at, make_app, plain, ready, seed_runs, seed_store, settle

BROKEN = ("local", "run-00000000000b")


def broken_run() -> Run:
    """A failed run with every identity field set: the old layout pushed its error
    below the fold at 80x24."""
    return Run(
        id=BROKEN[1],
        source="local",
        job="nightly-warehouse-sync",
        label="nightly-warehouse-sync --full --region eu-west-1",
        type="SCHEDULED",
        owner="ops@example.com",
        status=Status.FAILED,
        status_raw="failed",
        created_at=at(5),
        queued_at=at(5),
        started_at=at(4),
        ended_at=at(1),
        exit_code=3,
        progress=Progress(total=120, succeeded=40, failed=1, pending=79),
        error=RunError(code="exit-3", message="connection reset by warehouse"),
        config={f"key{i}": i for i in range(30)},
    )


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    await seed_store(store_path, [*seed_runs(), broken_run()])
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def summary_lines(pane: DetailPane) -> list[str]:
    """The summary as drawn at the pane's width, one string per screen line."""
    summary = pane.query_one("#detail-summary", Static)
    return plain(summary.content, width=summary.content_region.width).splitlines()


async def test_the_error_of_a_failed_run_is_on_screen_at_80x24(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        assert app.main.query_one(RunsTable).select_key(BROKEN)
        await pilot.press("2")
        await settle(app, pilot, "detail")
        pane = app.main.query_one(DetailPane)
        assert pane.display and pane.shown_key == BROKEN
        visible = pane.scrollable_content_region.height
        assert visible >= 4
        lines = summary_lines(pane)
        on_screen = "\n".join(lines[int(pane.scroll_y) : int(pane.scroll_y) + visible])
        assert "connection reset by warehouse" in on_screen, lines[:visible]
        assert "failed" in lines[0] and "exit-3" in on_screen
        # Identity follows the problem.
        error_at = next(i for i, t in enumerate(lines) if "connection reset" in t)
        assert error_at < next(i for i, t in enumerate(lines) if "nightly-warehouse-sync" in t)


async def test_the_detail_starts_at_its_top_for_every_run(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        assert table.select_key(BROKEN)
        await pilot.press("2")
        await settle(app, pilot, "detail")
        pane = app.main.query_one(DetailPane)
        pane.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert pane.scroll_y > 0
        await pilot.press("1", "down")
        await settle(app, pilot, "detail")
        assert table.cursor_key != BROKEN and pane.shown_key == table.cursor_key
        assert pane.scroll_y == 0


async def test_j_and_k_scroll_the_detail_pane(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        assert table.select_key(BROKEN)
        await settle(app, pilot, "detail")
        await pilot.press("2")
        pane = app.main.query_one(DetailPane)
        assert app.focused is pane and pane.scroll_y == 0
        await pilot.press("j", "j")
        await pilot.pause()
        assert pane.scroll_y == 2
        await pilot.press("k")
        await pilot.pause()
        assert pane.scroll_y == 1
        assert table.cursor_key == BROKEN  # the table's cursor did not move
