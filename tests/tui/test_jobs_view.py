"""The jobs screen (J) and the failure-groups screen (F) at 80x24 over a real
store with a built history; Enter filters the runs table; a poll updates an open
screen (only what it touched); slow runs are marked in the table and the detail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from jobwatch.core import Status
from jobwatch.core.columns import SLOW_MARK
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.screens.triage import SEP, FailuresScreen, JobsScreen
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.runs_table import RunsTable
from triage_support import NOW, TIMES, history, run
from tui_support import make_app, plain, ready, settle


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(store_path) as seeding:
        await seeding.add_many(history())
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def cell_text(table: DataTable[Any], row_key: str, column: str) -> str:
    value = table.get_cell(row_key, column)
    return str(getattr(value, "plain", value))


def headers(table: DataTable[Any]) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def test_jobs_screen_at_80x24_and_enter_filters(store: SqliteStore) -> None:
    app = make_app(store, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("J")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        table = screen.table
        assert table.row_count == 4
        shown = headers(table)
        assert shown[:4] == ["JOB", "LAST", "OK", "TREND"] and "RECENT" in shown
        assert "P95" not in shown  # dropped first at 80 columns
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        backup = SEP.join(("local", "backup"))
        assert cell_text(table, backup, "trend") == "3 failed in a row"
        assert cell_text(table, backup, "ok") == "0%"
        assert cell_text(table, backup, "last").endswith("failed")
        assert "█" in cell_text(table, SEP.join(("local", "etl")), "recent")
        note = str(screen.query_one("#triage-note", Static).content)
        assert note.startswith("4 jobs · 2 failing now · 1 active")
        table.move_cursor(row=table.get_row_index(backup))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.main
        assert app.runs.filter.text == "job:backup"
        jobs = {app.runs.row_at(i).job for i in range(len(app.runs))}
        assert jobs == {"backup"} and len(app.runs) == 10


async def test_failure_groups_screen_and_enter_filters_to_the_group(store: SqliteStore) -> None:
    app = make_app(store, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("F")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FailuresScreen)
        table = screen.table
        assert table.row_count == 2
        assert headers(table)[:3] == ["NEW", "N", "SIGNATURE"]
        keys = [k.value for k in table.rows]
        first, second = keys
        assert cell_text(table, first, "count") == "3" and cell_text(table, first, "new") == ""
        assert cell_text(table, second, "new") == "NEW"
        assert "refused after <n> tries" in cell_text(table, first, "signature")
        assert "sk-live" not in cell_text(table, second, "signature")
        await pilot.press("enter")  # the cursor is on the first group
        await pilot.pause()
        assert app.screen is app.main
        ids = {app.runs.row_at(i).id for i in range(len(app.runs))}
        assert ids == {"run-backup-f0", "run-backup-f1", "run-backup-f2"}


async def test_an_open_jobs_screen_follows_the_polls(store: SqliteStore, store_path: Path) -> None:
    app = make_app(store, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("J")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        etl = SEP.join(("local", "etl"))
        assert cell_text(screen.table, etl, "trend") == ""
        async with SqliteStore(store_path) as writer:
            for i, hours in enumerate((0.3, 0.2)):
                await writer.add(
                    run(
                        f"run-etl-bad{i}",
                        "etl",
                        hours_ago=hours,
                        status=Status.FAILED,
                        code="exit-9",
                        message=f"disk /dev/sd{i} full",
                    )
                )
        await app.poll_once()
        await pilot.pause()
        assert screen.updates == 1  # one job touched: one row recomputed
        assert cell_text(screen.table, etl, "trend") == "2 failed in a row"
        assert cell_text(screen.table, etl, "last").endswith("failed")
        await pilot.press("escape", "F")
        await pilot.pause()
        groups = app.screen
        assert isinstance(groups, FailuresScreen) and groups.table.row_count == 3


async def test_a_slow_run_is_marked_and_the_detail_says_by_how_much(store: SqliteStore) -> None:
    app = make_app(store, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        slow = ("local", "run-etl-slow")
        lines = {
            k: "".join(seg.text for seg in table.render_line(i + 1))
            for i, k in enumerate(app.runs.order[:20])
        }
        assert table.select_key(slow)
        await settle(app, pilot, "detail")
        pane = app.main.query_one(DetailPane)
        summary = pane.query_one("#detail-summary", Static)
        assert f"5.0{TIMES} this job's median" in plain(summary.content)
        marked = {k for k, line in lines.items() if SLOW_MARK in line}
        assert slow in marked and ("local", "run-ingest-now") in marked
        assert ("local", "run-etl-009") not in marked


async def test_a_windowed_store_fills_the_jobs_view_itself(store: SqliteStore) -> None:
    app = make_app(store, clock=lambda: NOW, window_from=0)
    await app.preload()
    assert app.window is not None  # the history's rows never reach the sink
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await settle(app, pilot, "triage")
        await pilot.press("J")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen) and app.screen.table.row_count == 4


async def test_a_poll_touching_every_job_recomputes_the_rows_on_screen_first(
    store_path: Path,
) -> None:
    """120 jobs at 80x24, a poll that fails each once: the rows on screen (and a
    screen's margin) are recomputed at once, the rest when scrolled to, and the
    headline counts come from the index without a summary each."""
    jobs = [f"job-{n:03d}" for n in range(120)]
    async with SqliteStore(store_path) as seeding:
        await seeding.add_many(
            [run(f"ok-{j}", j, hours_ago=2 + n / 100) for n, j in enumerate(jobs)]
        )
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store, clock=lambda: NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            await pilot.press("J")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, JobsScreen) and screen.table.row_count == len(jobs)
            async with SqliteStore(store_path) as writer:
                await writer.add_many(
                    [
                        run(f"bad-{j}", j, hours_ago=1, status=Status.FAILED, code="exit-1")
                        for j in jobs
                    ]
                )
            await app.poll_once()
            await pilot.pause()
            assert 0 < screen.updates < 80  # not all 120 rows
            assert "120 jobs · 120 failing now" in str(
                screen.query_one("#triage-note", Static).render()
            )
            last = screen.table.ordered_rows[-1].key.value
            assert last is not None
            assert cell_text(screen.table, last, "trend") == ""  # off screen: not yet
            screen.table.move_cursor(row=len(jobs) - 1, animate=False)  # scrolls it into view
            await pilot.pause()
            assert cell_text(screen.table, last, "trend") == "failed"
