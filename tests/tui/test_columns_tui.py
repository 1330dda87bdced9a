"""The runs table at 80, 120 and 200 columns with long names and problems; a
reason that is no problem is not drawn as one; the column chooser saves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.style import Style
from textual.color import Color
from textual.widgets import SelectionList

from jobwatch.config import parse_config
from jobwatch.core import Progress, Reason, Run, RunError, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.columns import ColumnsScreen
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import at, make_app, ready, seed_runs, seed_store

LONG_JOB = "warehouse-nightly-" + "very-long-job-name-" * 4
LONG_ID = "run-7c663870-b99a-4c1e-9d7e-4f6c1a2b3c4d"
LONG_PROBLEM = "context_window_overflow_in_system_prompt"
KEY = ("local", LONG_ID)
CALM = ("intuned-demo", "7c663870-b99a-4c1e-9d7e-000000000003")  # reason user-request


def long_run() -> Run:
    return Run(
        id=LONG_ID,
        source="local",
        job=LONG_JOB,
        status=Status.FAILED,
        status_raw="failed",
        created_at=at(1),
        started_at=at(1),
        ended_at=at(0.5),
        progress=Progress(total=500, succeeded=469, failed=31),
        error=RunError(code=LONG_PROBLEM, message="too long"),
    )


def calm_run(i: int, reason: str) -> Run:
    return Run(
        id=f"run-calm-{i}",
        source="local",
        job="agent",
        status=Status.SUCCEEDED,
        status_raw="completed",
        created_at=at(400 + i),
        started_at=at(400 + i),
        ended_at=at(399 + i),
        reason=Reason(type=reason),
    )


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    runs = [*seed_runs(), long_run(), calm_run(1, "end_turn"), calm_run(2, "max_steps")]
    await seed_store(store_path, runs)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def row_text(table: RunsTable, key: tuple[str, str]) -> str:
    index = table.runs.index_of(key)
    assert index is not None
    table.scroll_to(y=0, animate=False, immediate=True)
    return table.render_line(index + 1).text


def cell_style(table: RunsTable, key: tuple[str, str], text: str) -> Style:
    index = table.runs.index_of(key)
    assert index is not None
    for segment in table.render_line(index + 1):
        if text in segment.text:
            assert segment.style is not None
            return segment.style
    raise AssertionError(f"{text!r} not drawn")


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_columns_at_each_width(store: SqliteStore, width: int) -> None:
    app = make_app(store)
    async with app.run_test(size=(width, 40)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        for column, cells in table._columns:
            assert column.width.max is not None and cells <= column.width.max
        widths = {c.name: w for c, w in table._columns}
        line = row_text(table, KEY)
        assert cell_len(line) <= width
        assert LONG_JOB[:8] in line and LONG_JOB not in line  # cut, never beyond max
        if width >= 200:
            assert LONG_ID in line and LONG_PROBLEM in line and "469/500 ✗31" in line
            assert widths["job"] == 40
        if width >= 120:
            assert "469/500 ✗31" in line  # progress shown, counters whole
            assert "run-000000000002" in row_text(table, ("local", "run-000000000002"))


async def test_a_reason_that_is_no_problem_is_not_drawn_as_one(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(200, 40)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        assert table.select_key(("local", "run-000000000005"))  # the cursor has its own colours
        failed = Color.parse(app.theme_variables["status-failed"]).rich_color
        assert cell_style(table, KEY, LONG_PROBLEM).color == failed
        for key, word in (
            (CALM, "user-request"),
            (("local", "run-calm-1"), "end_turn"),
            (("local", "run-calm-2"), "max_steps"),
        ):
            style = cell_style(table, key, word)
            assert style.color != failed, word
        notice = Color.parse(app.theme_variables["status-paused"]).rich_color
        assert cell_style(table, ("local", "run-calm-2"), "max_steps").color == notice


async def choose(app: JobwatchApp, pilot: object, names: list[str], key: str) -> None:
    await app.run_action("choose_columns")
    await pilot.pause()  # type: ignore[attr-defined]
    assert isinstance(app.screen, ColumnsScreen)
    picker: SelectionList[str] = app.screen.query_one(SelectionList)
    picker.deselect_all()
    for name in names:
        picker.select(name)
    await pilot.press(key)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_the_column_chooser_applies_and_saves(store: SqliteStore, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# mine\nrefresh = 2.0\n\n[sources.x]\nkind = "sqlite"\npath = "a.db"\n')
    app = make_app(store, config_path=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        table = app.main.query_one(RunsTable)
        assert "label" not in [c.name for c, _ in table._columns]
        await choose(app, pilot, ["status", "label", "job"], "escape")  # cancelled
        assert "label" not in table.columns_shown and "columns" not in config.read_text()
        await choose(app, pilot, ["status", "label", "job"], "enter")
        assert not isinstance(app.screen, ColumnsScreen)
        assert [c.name for c, _ in table._columns] == ["status", "job", "label"]
        saved = config.read_text()
        assert saved.startswith('# mine\nrefresh = 2.0\ncolumns = ["status", "job", "label"]\n')
        assert parse_config(saved).refresh == 2.0
    # The next start reads them.
    again = make_app(store, columns=parse_config(saved).columns)
    async with again.run_test(size=(120, 40)) as pilot:
        await ready(again, pilot)
        table = again.main.query_one(RunsTable)
        assert [c.name for c, _ in table._columns] == ["status", "job", "label"]


async def test_the_chooser_is_in_the_palette(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert "Columns" in titles
