"""What the shared layer guarantees every front end: an action's result is on screen
at once, the CLI and the monitor ask the same question, a vendor's "warning" is a
warning, and rows align whatever the script of a job name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.cells import cell_len

from conftest import TEST_TOKEN, jobwatch_env, run_in_pty, serve_cli
from jobwatch.core import Run, Status
from jobwatch.core.levels import LogLevel
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import NOW, loaded, make_app, ready, seed_store, settle, stop_polling

RUNNING = "run-run000000001"
FAILED = "run-fail00000001"


def two_runs() -> list[Run]:
    return [
        Run(
            id=RUNNING,
            source="local",
            job="nightly",
            status=Status.RUNNING,
            status_raw="running",
            created_at=NOW - timedelta(minutes=5),
            started_at=NOW - timedelta(minutes=5),
        ),
        Run(
            id=FAILED,
            source="local",
            job="sync",
            status=Status.FAILED,
            status_raw="failed",
            created_at=NOW - timedelta(minutes=50),
            started_at=NOW - timedelta(minutes=50),
            ended_at=NOW - timedelta(minutes=49),
        ),
    ]


async def act(app: JobwatchApp, pilot: Any, key: tuple[str, str], keys: str) -> None:
    """Select ``key``, press ``keys`` (``a``, ``A`` or ``u``) and say yes if asked."""
    table = app.main.query_one(RunsTable)
    assert table.select_key(key)
    await loaded(app, pilot)
    await pilot.press(keys)
    await pilot.pause()
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")
    await settle(app, pilot, "actions")


async def check_actions_show_at_once(app: JobwatchApp, pilot: Any, source: str) -> None:
    await ready(app, pilot)
    await stop_polling(app, pilot)  # from here on, only the actions change the rows
    running, failed = (source, RUNNING), (source, FAILED)
    await act(app, pilot, running, "a")
    assert app.runs.rows[running].status is Status.ABORTED
    await act(app, pilot, failed, "A")
    assert app.runs.rows[failed].archived and app.runs.index_of(failed) is None
    await pilot.press("full_stop")  # show archived runs
    await act(app, pilot, failed, "u")
    assert not app.runs.rows[failed].archived
    assert app.runs.rows[failed].status is Status.FAILED  # archiving kept the outcome


async def test_local_store_actions_are_on_screen_at_once(store_path: Path) -> None:
    await seed_store(store_path, two_runs())
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test() as pilot:
            await check_actions_show_at_once(app, pilot, "local")


async def test_served_store_actions_are_on_screen_at_once(store_path: Path) -> None:
    await seed_store(store_path, two_runs())
    with serve_cli(store_path) as served:
        remote = HttpSource(served.url, name="remote", token=TEST_TOKEN)
        try:
            app = make_app(remote)
            async with app.run_test() as pilot:
                await check_actions_show_at_once(app, pilot, "local")
        finally:
            await remote.close()


async def monitor_question(app: JobwatchApp, pilot: Any, key: tuple[str, str]) -> str:
    """The dialog the monitor opens for ``a`` on ``key``, as plain text (then No)."""
    table = app.main.query_one(RunsTable)
    assert table.select_key(key)
    await loaded(app, pilot)
    await pilot.press("a")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)
    text = f"{screen._title}\n{screen._body.plain}"
    await pilot.press("n")
    await pilot.pause()
    return text


def cli_question(args: list[str], env: dict[str, str]) -> str:
    code, shown = run_in_pty(["abort", *args], env, answer="n")
    assert code == 1 and "nothing done" in shown, shown
    return shown


def same_question(monitor: str, cli: str) -> None:
    title, _, body = monitor.partition("\n")
    assert f"{title} [y/N]" in cli, cli
    assert body.strip() in cli, (body, cli)  # every line, in the same order


async def test_cli_and_monitor_ask_the_same_question(store_path: Path) -> None:
    await seed_store(store_path, two_runs())
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(app, pilot)
            monitor = await monitor_question(app, pilot, ("local", RUNNING))
    assert "SIGTERM" in monitor and "Default is No." in monitor
    cli = cli_question([RUNNING, "--store", str(store_path)], jobwatch_env(store_path))
    same_question(monitor, cli)
    async with SqliteStore(store_path, create=False) as store:  # No means nothing done
        assert (await store.get(RUNNING)).status is Status.RUNNING


# -- cells, not characters ---------------------------------------------------------------

WIDE = ["夜間バックアップ処理", "deploy 🚀🚀 prod", "plain-job"]


def wide_runs() -> list[Run]:
    return [
        Run(
            id=f"run-wide{i:08d}",
            source="local",
            job=job,
            status=Status.SUCCEEDED,
            created_at=NOW - timedelta(minutes=10 * (i + 1)),
            started_at=NOW - timedelta(minutes=10 * (i + 1)),
            ended_at=NOW - timedelta(minutes=10 * (i + 1) - 2),
        )
        for i, job in enumerate(WIDE)
    ]


def column_starts(lines: list[str], marker: str) -> set[int]:
    """Where (in cells) ``marker`` starts on each line that has it."""
    return {cell_len(line[: line.index(marker)]) for line in lines if marker in line}


def test_wide_job_names_align_in_list_on_a_terminal(store_path: Path) -> None:
    import asyncio

    asyncio.run(seed_store(store_path, wide_runs()))
    code, shown = run_in_pty(["list", "--store", str(store_path)], jobwatch_env(store_path))
    assert code == 0, shown
    lines = [line for line in shown.splitlines() if "run-wide" in line]
    assert len(lines) == 3 and any("夜間" in line for line in lines), shown
    # Every run lasted two minutes: the DURATION cell starts at the same cell on
    # every row only if the JOB cells before it were padded by cells.
    assert len(column_starts(lines, "2m00s")) == 1, lines
    assert column_starts(lines, "2m00s") == column_starts(shown.splitlines(), "DURATION")


async def test_wide_job_names_align_in_the_monitor(store_path: Path) -> None:
    await seed_store(store_path, wide_runs())
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(100, 30)) as pilot:
            await ready(app, pilot)
            table = app.main.query_one(RunsTable)
            lines = [table.render_line(y).text for y in range(1, 4)]
            width = table.size.width
    assert any("夜間" in line for line in lines) and any("🚀" in line for line in lines)
    assert {cell_len(line) for line in lines} == {width}
    assert len(column_starts(lines, "2m00s")) == 1, lines


# -- levels ------------------------------------------------------------------------------


async def test_a_vendor_warning_is_drawn_as_a_warning(store_path: Path) -> None:
    """Vendors say "warning", "WARN", "fatal": the log pane styles them by level."""
    await seed_store(store_path, two_runs())
    async with SqliteStore(store_path) as store:
        await store.append_logs(
            RUNNING,
            [
                (NOW.timestamp(), "stdout", "warning", "slow page"),
                (NOW.timestamp(), "stdout", "FATAL", "gave up"),
                (NOW.timestamp(), "stdout", "info", "fine"),
            ],
        )
    async with SqliteStore(store_path, create=False) as store:
        lines = await store.log_lines(RUNNING)
        assert [line.level for line in lines] == [LogLevel.WARN, LogLevel.ERROR, LogLevel.INFO]
        app = make_app(store)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(app, pilot)
            assert app.main.query_one(RunsTable).select_key(("local", RUNNING))
            await loaded(app, pilot)
            log = app.main.query_one(LogView)
            warn = log.get_component_rich_style("log-view--warn", partial=True)
            error = log.get_component_rich_style("log-view--error", partial=True)
            styles = {
                seg.text: seg.style
                for y in range(log.size.height)
                for seg in log.render_line(y)
                if seg.text.strip()
            }
    assert warn.color is not None and error.color is not None and warn.color != error.color
    assert styles["slow page"] is not None and styles["slow page"].color == warn.color
    assert styles["gave up"] is not None and styles["gave up"].color == error.color
    assert styles["fine"] is None or styles["fine"].color not in (warn.color, error.color)
