"""Triage at 80x24: the detail pane puts the problem first and starts at its top;
keys in the detail and log panes do what their pane says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.widgets import Input, Static

from jobwatch.core import Progress, Run, RunError, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui import keys
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import CLOCK, at, make_app, plain, ready, seed_runs, seed_store, settle

BROKEN = ("local", "run-00000000000b")
FAILED = ("local", "run-000000000002")


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


async def test_escape_in_the_log_pane_keeps_the_table_filter(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("slash", *"etl", "enter")
        assert app.runs.filter is not None and app.runs.filter.text == "etl"
        assert app.main.query_one(RunsTable).select_key(FAILED)
        await settle(app, pilot, "detail")
        await pilot.press("3", "slash", *"needle", "enter")
        await settle(app, pilot, "log-find")
        log = app.main.query_one(LogView)
        assert app.focused is log and log.term == "needle"
        await pilot.press("escape")
        await pilot.pause()
        assert app.runs.filter is not None and app.runs.filter.text == "etl"
        assert log.term is None and log.match_seq is None  # the log's search closed
        await pilot.press("escape")  # nothing left to close: still nothing else happens
        await pilot.pause()
        assert app.runs.filter is not None and app.runs.filter.text == "etl"


async def test_slash_says_whether_it_filters_or_searches(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("slash")
        box = app.focused
        assert isinstance(box, Input) and box.id == "filter"
        assert box.placeholder.startswith("filter runs:") and "since:1h" in box.placeholder
        await pilot.press("escape", "3", "slash")
        box = app.focused
        assert isinstance(box, Input) and box.id == "log-search"
        assert box.placeholder.startswith("search log")


async def test_z_zooms_the_focused_pane_and_back(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        log = app.main.query_one(LogView)
        panes = app.main.query_one("#panes")
        height = table.outer_size.height
        await pilot.press("z")
        await pilot.pause()
        assert not panes.display and table.outer_size.height > height + 5
        await pilot.press("3")  # another pane: it is zoomed instead
        await pilot.pause()
        assert app.focused is log and not table.display
        assert log.outer_size.width == 80 and log.outer_size.height > height + 5
        await pilot.press("z")
        await pilot.pause()
        assert table.display and panes.display and app.main.zoomed is None
        await pilot.press("2", "z")
        await pilot.pause()
        detail = app.main.query_one(DetailPane)
        assert app.main.zoomed == "detail" and detail.outer_size.width == 80
        assert not table.display and not app.main.query_one("#logpane").display
        ids = [b.id for b in keys.APP if isinstance(b, Binding)]
        assert "pane.zoom" in ids


async def test_the_first_n_after_a_search_finds_the_matches_on_screen(
    store: SqliteStore, store_path: Path
) -> None:
    async with SqliteStore(store_path) as writer:
        lines = [(CLOCK, "stdout", "info", f"needle {i} on screen") for i in range(3)]
        lines += [(CLOCK, "stdout", "info", f"tail {i}") for i in range(4)]
        await writer.append_logs(FAILED[1], lines)
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        assert app.main.query_one(RunsTable).select_key(FAILED)
        await settle(app, pilot, "detail")
        await pilot.press("3")
        await pilot.pause()
        log = app.main.query_one(LogView)
        first_on_screen = 202  # seq of "needle 0 on screen"
        top = log.top_seq
        assert top <= first_on_screen < top + log.size.height  # the user sees it
        await pilot.press("slash", *"needle", "enter")
        await settle(app, pilot, "log-find")
        assert log.match_seq == first_on_screen
        await pilot.press("n")
        await settle(app, pilot, "log-find")
        assert log.match_seq == first_on_screen + 1
