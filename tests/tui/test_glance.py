"""Issue 12, the monitor's chrome: toasts and the bell, the keymap and help, the
status line and the sources screen, read-only mode and the demo's flags."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.command import CommandPalette
from textual.widgets import Static
from textual.widgets._toast import Toast

from conftest import run_cli
from jobwatch.apps.demo import FLAVOURS, TICK_S, Demo, DemoView, demo_app
from jobwatch.cli.monitor import monitor_app, monitor_options
from jobwatch.cli.parser import build_parser
from jobwatch.cli.verbs import demo_view
from jobwatch.core import Status
from jobwatch.core.format import GLYPHS
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.keymap import check_keymap, key_problem
from jobwatch.tui.notices import TIMES
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.screens.help import HelpScreen
from jobwatch.tui.screens.sources import SourcesScreen
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import CLOCK, make_app, plain, ready, seed_store, settle

RUNNING = ("local", "run-000000000005")
FAILED = ("local", "run-000000000002")


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


async def fail(store_path: Path, run_id: str, job: str) -> None:
    """Another process turns a run failed."""
    async with SqliteStore(store_path) as writer:
        await writer.update(
            run_id, lambda r: r.evolve(status=Status.FAILED, status_raw="failed", job=job)
        )


async def add_running(store_path: Path, *ids: str) -> None:
    from jobwatch.core import Run

    async with SqliteStore(store_path) as writer:
        for run_id in ids:
            await writer.add(
                Run(id=run_id, source="local", job="x", status=Status.RUNNING, status_raw="r")
            )


def toasts(app: JobwatchApp) -> list[Toast]:
    return list(app.screen.query(Toast))


def toast_rows(app: JobwatchApp) -> int:
    """Screen rows covered by the toasts drawn now."""
    rows: set[int] = set()
    for toast in toasts(app):
        region = toast.region
        rows.update(range(max(0, region.y), min(app.size.height, region.y + region.height)))
    return len(rows)


def status_text(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#status", Static).content, width=400).strip()


# -- item 3: toasts and the bell ----------------------------------------------------


async def test_failures_make_one_summary_toast_updated_in_place(
    store: SqliteStore, store_path: Path
) -> None:
    await add_running(store_path, "run-a", "run-b", "run-c", "run-d")
    app = make_app(store)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(app, pilot)
        for run_id, job in (("run-a", "nightly"), ("run-b", "nightly"), ("run-c", "sync")):
            await fail(store_path, run_id, job)
        await app.poll_once()
        await pilot.pause()
        notes = list(app._notifications)
        assert len(notes) == 1, [n.message for n in notes]
        assert f"{notes[0].title}: {notes[0].message}" == f"3 runs failed: nightly {TIMES}2, sync"
        await fail(store_path, "run-d", "sync")
        await app.poll_once()
        await pilot.pause()
        await pilot.pause()
        notes = list(app._notifications)
        assert len(notes) == 1 and len(toasts(app)) == 1
        assert (
            f"{notes[0].title}: {notes[0].message}"
            == f"4 runs failed: nightly {TIMES}2, sync {TIMES}2"
        )
        assert toast_rows(app) <= 3


async def test_the_bell_rings_at_most_once_per_10_seconds(
    store: SqliteStore, store_path: Path
) -> None:
    await add_running(store_path, "run-a", "run-b", "run-c")
    now = [CLOCK]
    app = make_app(store, clock=lambda: now[0])
    async with app.run_test() as pilot:
        await ready(app, pilot)
        for run_id, at, bells in (("run-a", 0, 1), ("run-b", 4, 1), ("run-c", 10.5, 2)):
            now[0] = CLOCK + at
            await fail(store_path, run_id, "nightly")
            await app.poll_once()
            await pilot.pause()
            assert app.bells == bells, (run_id, at)


async def test_no_toast_over_a_modal_and_the_summary_after_it(
    store: SqliteStore, store_path: Path
) -> None:
    """Toasts were drawn over the abort dialog (hiding its buttons), help and the
    palette. While one is open they wait; the summary shows once it closes."""
    await add_running(store_path, "run-a", "run-b", "run-c")
    app = make_app(store)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(app, pilot)
        app.notify("sorted by job")
        await pilot.pause()
        assert toasts(app)

        await pilot.press("a")  # the cursor is on a running run: the abort dialog
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.pause()
        # Not over the dialog, nor left standing on the dimmed screen beside it.
        assert list(app.main.query(Toast)) == []
        await fail(store_path, "run-a", "nightly")
        await app.poll_once()
        await pilot.pause()
        await pilot.pause()
        assert toasts(app) == [] and list(app._notifications) == []
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        messages = [n.message for n in app._notifications]
        assert "sorted by job" in messages and any("run-a" in m for m in messages)

        for opened in ("help", "palette"):
            if opened == "help":
                await pilot.press("question_mark")
            else:
                app.action_command_palette()
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen | CommandPalette)
            await fail(store_path, "run-b" if opened == "help" else "run-c", "sync")
            await app.poll_once()
            await pilot.pause()
            await pilot.pause()
            assert toasts(app) == [], opened
            await pilot.press("escape")
            await pilot.pause()
            await pilot.pause()
            assert app.screen is app.main
            assert len([t for t in toasts(app) if "failed" in str(t._notification.title)]) == 1


async def test_x_dismisses_toasts_and_marks_every_failure_seen(
    store: SqliteStore, store_path: Path
) -> None:
    await add_running(store_path, "run-a", "run-b")
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await fail(store_path, "run-a", "nightly")
        await fail(store_path, "run-b", "nightly")
        await app.poll_once()
        await pilot.pause()
        assert app.runs.unseen and list(app._notifications)
        assert "2 unseen" in status_text(app)
        await pilot.press("x")
        await pilot.pause()
        assert not app.runs.unseen and list(app._notifications) == []
        assert "unseen" not in status_text(app)


async def test_notify_and_bell_switches_in_the_config(tmp_path: Path, store_path: Path) -> None:
    await seed_store(store_path)
    config = tmp_path / "config.toml"
    config.write_text("notify = false\nbell = false\n")
    args = build_parser().parse_args(["--config", str(config), "--store", str(store_path)])
    options = monitor_options(args)
    assert (options.notify, options.bell) == (False, False)
    app = monitor_app(options)
    assert app.toasts_enabled is False and app.bell_enabled is False
    await add_running(store_path, "run-a")
    await options.sources[0].open()
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            await fail(store_path, "run-a", "nightly")
            await app.poll_once()
            await pilot.pause()
            assert app.runs.unseen == {("local", "run-a")}  # still counted
            assert list(app._notifications) == [] and app.bells == 0
    finally:
        await options.sources[0].close()


async def test_a_demo_minute_at_80x24_toasts_cover_at_most_3_rows(tmp_path: Path) -> None:
    """The demo's own generator, stepped for 60 s of its ticks (no sleeping), with
    the monitor polling after every tick at 80x24: the rows the toasts cover,
    sampled after each tick, average 3 or fewer (they were 12.7 of 24)."""
    path = tmp_path / "demo.db"
    async with SqliteStore(path, mode="create") as store:
        demo = Demo(store, seed=12)
        await demo.seed_history(300)
        for flavour in FLAVOURS:
            await demo.start_live(flavour)
        async with SqliteStore(path, mode="write") as view:
            app = demo_app(view, DemoView(theme="jobwatch-dark", refresh=3600))
            async with app.run_test(size=(80, 24), notifications=True) as pilot:
                await ready(app, pilot)
                covered = []
                for _ in range(int(60 / TICK_S)):
                    await demo.step()
                    await app.poll_once()
                    await pilot.pause()
                    await pilot.pause()
                    covered.append(toast_rows(app))
                failures = len(app.runs.unseen)
            await demo.stop_live()
    mean = sum(covered) / len(covered)
    print(f"\ndemo 60 s at 80x24: {failures} failures, toasts cover {mean:.2f} rows on average")
    assert failures >= 10  # the demo did flood the monitor
    assert max(covered) > 0  # and the failures were shown
    assert mean <= 3


# -- item 9: keys and help ------------------------------------------------------------


async def test_keys_table_remaps_with_warnings_naming_bad_entries(
    tmp_path: Path, store_path: Path
) -> None:
    await seed_store(store_path)
    config = tmp_path / "config.toml"
    config.write_text(
        "[keys]\n"
        '"run.abort" = "ctrl+a"\n'
        '"run.abrot" = "z"\n'
        '"log.save" = "ctrl+nosuchkey"\n'
        '"runs.filter" = "/"\n'
    )
    args = build_parser().parse_args(["--config", str(config), "--store", str(store_path)])
    options = monitor_options(args)
    assert not any("keys" in w for w in options.warnings)  # the table is accepted
    app = monitor_app(options)
    await options.sources[0].open()
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            warnings = [n.message for n in app._notifications]
            assert any("'run.abrot'" in w and "not a binding id" in w for w in warnings)
            assert any("'log.save'" in w and "nosuchkey" in w for w in warnings)
            assert app.main.query_one(RunsTable).cursor_key == RUNNING
            await pilot.press("a")  # no longer abort
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("ctrl+a")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            text = plain(app.screen.query_one(Static).content, width=100)
            abort = next(line for line in text.splitlines() if "[run.abort]" in line)
            assert abort.split()[0] == "^a", abort
    finally:
        await options.sources[0].close()


async def test_help_shows_keys_as_typed_and_the_filter_syntax(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(100, 60)) as pilot:
        await ready(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one(Static).content, width=100)
        first = {
            line.rsplit("[", 1)[1].split("]")[0]: line.split()[0]
            for line in text.splitlines()
            if line.rstrip().endswith("]")
        }
        assert first["runs.filter"] == "/" and first["runs.archived"] == "."
        assert first["app.help"] == "?" and first["app.dismiss"] == "x"
        for name in ("slash", "full_stop", "question_mark"):
            assert name not in text
        for syntax in ("status:failed", "since:1h", "before:2026-12-01", "!"):
            assert syntax in text
        commands = [c.help for c in app.get_system_commands(app.screen)]
        assert any(h.endswith("key /") for h in commands) and not any(
            "slash" in h for h in commands
        )


# -- item 10: the status line and the sources screen -------------------------------------


@pytest.mark.parametrize("columns", [80, 100])
async def test_the_counts_stay_on_the_line_with_a_failing_source(
    store: SqliteStore, tmp_path: Path, columns: int
) -> None:
    """A stale source's message pushed every count off the line at 100 columns."""
    missing = tmp_path / ("a-folder-with-a-long-name-" * 4) / "gone.db"
    broken = SqliteStore(missing, name="far-away-build-server", mode="read")
    app = make_app(store, broken)
    async with app.run_test(size=(columns, 24)) as pilot:
        await ready(app, pilot)
        app.update_status()
        line = app.main.query_one("#status", Static)
        text = status_text(app)
        assert cell_len(text) <= line.content_size.width, text
        for status, n in app.runs.counts.items():
            if n:
                assert GLYPHS[status] in text and str(n) in text, text
        assert text.startswith(GLYPHS[Status.RUNNING]), text  # the counts come first
        assert "2 sources, 1 stale" in text, text


async def test_the_retry_countdown_is_live_on_the_line_and_the_sources_screen(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "(retry in 0s)" stood still for 45 s: the line is redrawn between polls and
    reads the wait from the source's back-off each time."""
    broken = SqliteStore(tmp_path / "gone" / "runs.db", name="remote", mode="read")
    app = make_app(store, broken, refresh=3600)
    async with app.run_test(size=(120, 24)) as pilot:
        await ready(app, pilot)
        feed = app.feeds[1]
        assert feed.health.stale
        now = [time.monotonic()]
        feed.tracker.clock = lambda: now[0]
        feed.tracker.due_at = now[0] + 45  # a back-off of 45 s, as measured
        app.update_status()
        assert "retry in 45s" in status_text(app)
        now[0] += 10
        app.update_status()  # what the 1 s timer does
        assert "retry in 35s" in status_text(app)

        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, SourcesScreen)
        table = plain(app.screen.table(), width=160)
        row = next(line for line in table.splitlines() if line.split()[:1] == ["remote"])
        assert "sqlite" in row and "stale since" in row and "in 35s" in row
        assert "no store at" in row  # the last error, cleaned
        ok = next(line for line in table.splitlines() if line.split()[:1] == ["local"])
        assert " ok " in ok
        now[0] += 5
        app.screen.redraw()
        assert "in 30s" in plain(app.screen.table(), width=160)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Sources" in commands


# -- item 11: read-only and the demo ---------------------------------------------------


async def test_read_only_offers_no_abort_or_archive(store: SqliteStore) -> None:
    writes = {"abort", "archive", "unarchive"}
    for read_only in (False, True):
        app = make_app(store, read_only=read_only)
        async with app.run_test(size=(120, 24)) as pilot:
            await ready(app, pilot)
            await settle(app, pilot)
            footer = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
            palette = {c.title for c in app.get_system_commands(app.screen)}
            if read_only:
                assert not footer & writes, footer
                assert not palette & {"Abort", "Archive", "Unarchive"}, palette
            else:
                assert {"abort", "archive"} <= footer
                assert {"Abort", "Archive", "Unarchive"} <= palette


async def test_demo_honours_theme_read_only_and_refresh(store_path: Path) -> None:
    args = build_parser().parse_args(
        ["demo", "--theme", "jobwatch-light", "--read-only", "--refresh", "2.5"]
    )
    view = demo_view(args)
    assert (view.theme, view.read_only, view.refresh) == ("jobwatch-light", True, 2.5)
    await seed_store(store_path)
    async with SqliteStore(store_path, mode="read") as opened:
        app = demo_app(opened, view)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            assert app.theme == "jobwatch-light" and app.read_only and app.refresh_s == 2.5
            assert "READ-ONLY" in status_text(app)

    done = run_cli(
        store_path.with_name("demo.db"),
        "demo",
        "--headless",
        "--runs",
        "5",
        "--seconds",
        "0.2",
        "--theme",
        "jobwatch-light",
        "--read-only",
        "--refresh",
        "2",
    )
    assert done.returncode == 0, done.stderr


def test_key_names_are_checked_before_textual_ignores_them() -> None:
    good, warnings = check_keymap(
        {"run.abort": "ctrl+a", "runs.filter": "/,f2", "log.save": "ctrl+", "nope": "z"}
    )
    assert good == {"run.abort": "ctrl+a", "runs.filter": "/,f2"}
    assert len(warnings) == 2
    assert "'log.save'" in warnings[0] and "'nope'" in warnings[1]
    for key in ("a", "?", "full_stop", "escape", "shift+tab", "ctrl+s", "f12", "space"):
        assert key_problem(key) is None, key
    for key in ("", "slashh", "hyper+", "cmd+a", "two keys"):
        assert key_problem(key) is not None, key


def test_the_line_drops_the_least_important_part_first() -> None:
    from rich.text import Text

    from jobwatch.tui.widgets.status_line import Part, fit

    parts = [
        Part(0, Text("▶ 5 running  ✗ 2 failed"), Text("▶5 ✗2")),
        Part(1, Text("2 sources, 1 stale (far, retry in 8s)"), Text("2 sources, 1 stale")),
        Part(5, Text("12:00:00 /1s")),
        Part(9, Text("connection refused " * 5)),
    ]
    assert fit(parts, 200).plain.startswith("▶ 5 running")
    assert fit(parts, 80).plain == (
        "▶ 5 running  ✗ 2 failed │ 2 sources, 1 stale (far, retry in 8s) │ 12:00:00 /1s"
    )
    assert fit(parts, 40).plain == "▶5 ✗2 │ 2 sources, 1 stale"
    assert fit(parts, 10).plain == "▶5 ✗2"
