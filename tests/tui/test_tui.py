"""The monitor, driven with Pilot on a real store file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import run_cli, spawn_cli, wait_for
from jobwatch.core import Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.widgets.detail import ConfigTree
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import CLOCK, SECRET, make_app, plain, ready, seed_store, settle

FAILED = ("local", "run-000000000002")
RUNNING = ("local", "run-000000000005")


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def shown(app: JobwatchApp) -> list[str]:
    return [app.runs.row_at(i).id for i in range(len(app.runs))]


def table(app: JobwatchApp) -> RunsTable:
    return app.screen.query_one(RunsTable)


async def test_first_sync_hides_archived_and_counts(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert shown(app) == [
            "run-000000000005",
            "run-000000000004",
            "7c663870-b99a-4c1e-9d7e-000000000003",
            "run-000000000002",
            "run-000000000001",
        ]
        assert app.runs.counts[Status.FAILED] == 1 and app.runs.archived_count == 1
        assert table(app).cursor_key == RUNNING
        await pilot.press("full_stop")
        assert "run-000000000006" in shown(app)


async def test_rows_read_before_the_start_are_shown_and_selected(store: SqliteStore) -> None:
    """``jobwatch`` reads the first screen of rows before Textual starts (so its
    first frame shows them); the table then selects the first run as usual."""
    app = make_app(store)
    await app.preload()
    assert len(app.runs) == 5 and not app.synced.is_set()  # newest rows only, so far
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert table(app).cursor_key == RUNNING and app.loaded_key == RUNNING
        assert len(app.runs) == 5 and app.runs.archived_count == 1


async def test_live_update_of_a_changed_run(store: SqliteStore, store_path: Path) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        async with SqliteStore(store_path) as writer:
            await writer.update(
                RUNNING[1], lambda r: r.evolve(status=Status.FAILED, status_raw="failed")
            )
        await app.poll_once()
        await pilot.pause()
        assert app.runs.rows[RUNNING].status is Status.FAILED
        assert RUNNING in table(app)._flash  # briefly highlighted
        assert app.bells == 1
        assert any("run-000000000005" in n.message for n in app._notifications)
        # The cursor sits on that run, so it counts as seen once re-selected.
        assert RUNNING in app.runs.unseen or table(app).cursor_key == RUNNING
        await pilot.press("j", "k")
        assert RUNNING not in app.runs.unseen


async def test_selection_kept_across_refresh_and_resort(
    store: SqliteStore, store_path: Path
) -> None:
    from jobwatch.core import Run
    from tui_support import at

    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("j", "j", "j")
        assert table(app).cursor_key == FAILED
        async with SqliteStore(store_path) as writer:
            await writer.add(
                Run(
                    id="run-00000000000a",
                    source="local",
                    job="newest",
                    status=Status.QUEUED,
                    created_at=at(1),
                )
            )
        await app.poll_once()
        await pilot.pause()
        assert shown(app)[0] == "run-00000000000a"
        assert table(app).cursor_key == FAILED
        assert table(app).cursor_index == 4
        await pilot.press("s", "s")  # by last change, then by status
        assert app.runs.sort == "status"
        assert table(app).cursor_key == FAILED
        await pilot.press("S")
        assert table(app).cursor_key == FAILED
        assert app.runs.key_at(table(app).cursor_index) == FAILED


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("status:failed", ["run-000000000002"]),
        ("!source:local", ["run-000000000004", "7c663870-b99a-4c1e-9d7e-000000000003"]),
        ("job:backup,report", ["run-000000000005", "run-000000000001"]),
        ("disk", []),  # free text looks at the table's fields, not the error message
        ("exit-2", ["run-000000000002"]),
    ],
)
async def test_filter_grammar_typed_in(store: SqliteStore, typed: str, expected: list[str]) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("slash", *typed, "enter")
        assert shown(app) == expected
        assert app.focused is table(app)
        await pilot.press("escape")
        assert len(shown(app)) == 5


async def test_faults_toggle(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("f")
        assert shown(app) == ["run-000000000004", "run-000000000002"]
        await pilot.press("f")
        assert len(shown(app)) == 5


async def test_archive_of_a_running_run_is_refused(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert table(app).cursor_key == RUNNING
        await pilot.press("A")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        messages = [n.message for n in app._notifications]
        assert any("cannot archive run-000000000005: it is still running" in m for m in messages)
        assert app.runs.rows[RUNNING].archived is False


async def test_archive_through_the_dialog_and_undo(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        table(app).select_key(FAILED)
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is not None and app.screen.focused.id == "no"
        await pilot.press("enter")  # the default is No
        await pilot.pause()
        assert app.runs.rows[FAILED].archived is False
        await pilot.press("A")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot, "actions")
        assert app.runs.rows[FAILED].archived is True
        assert "run-000000000002" not in shown(app)
        await pilot.press("full_stop")
        table(app).select_key(FAILED)
        await pilot.press("u")
        await settle(app, pilot, "actions")
        assert app.runs.rows[FAILED].archived is False
        assert app.runs.rows[FAILED].status is Status.FAILED


async def test_read_only_disables_actions(store: SqliteStore) -> None:
    app = make_app(store, read_only=True)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.runs.rows[RUNNING].status is Status.RUNNING
        assert "READ-ONLY" in str(app.main.query_one("#status").content)


async def test_abort_of_a_real_process_through_the_dialog(store_path: Path) -> None:
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sleep", "60")
    try:

        def running() -> str | None:
            if not store_path.exists():
                return None
            result = run_cli(store_path, "list", "--status", "running")
            return result.stdout.split("\t")[1] if result.stdout.strip() else None

        run_id = wait_for(running)
        async with SqliteStore(store_path, create=False) as store:
            app = JobwatchApp([store], refresh=3600)
            async with app.run_test() as pilot:
                await ready(app, pilot)
                assert table(app).select_key(("local", run_id))
                await pilot.press("a")
                await pilot.pause()
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("tab", "enter")  # move from No to the abort button
                await settle(app, pilot, "actions")
                assert wrapper.wait(timeout=20) == 143
                await app.poll_once()
                assert app.runs.rows[("local", run_id)].status is Status.ABORTED
    finally:
        wrapper.kill()
        wrapper.wait()


async def test_detail_and_raw_json_are_redacted(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        table(app).select_key(("intuned-demo", "7c663870-b99a-4c1e-9d7e-000000000003"))
        await settle(app, pilot, "detail")
        summary = plain(app.screen.query_one("#detail-summary").content)
        raw = plain(app.screen.query_one("#detail-raw").content, width=200)
        assert "COMPLETED" in summary and "469/500 ✗31 partial" in summary
        assert "nightly-price-scrape" in raw and '"bucket": "acme"' in raw
        tree = app.screen.query_one(ConfigTree)
        labels = []
        stack = [tree.root]
        while stack:
            node = stack.pop()
            labels.append(str(node.label))
            stack.extend(node.children)
        everything = summary + raw + "\n".join(labels)
        for secret in (SECRET, "AKIAIOSFODNN7EXAMPLE", "hunter2"):
            assert secret not in everything
        assert 'secretAccessKey = "***"' in "\n".join(labels)


async def test_log_follow_search_and_first_error(store: SqliteStore, store_path: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        table(app).select_key(FAILED)
        await settle(app, pilot, "detail")
        log = app.screen.query_one(LogView)
        assert log.count == 201 and log.following
        assert log.scroll_y == log.max_scroll_y
        async with SqliteStore(store_path) as writer:
            await writer.append_logs(FAILED[1], [(CLOCK, "stdout", "info", "late line")])
        await app.poll_once()
        await pilot.pause()
        assert log.count == 202 and log.scroll_y == log.max_scroll_y  # still following

        await pilot.press("3", "slash", *"needle", "enter")
        await settle(app, pilot, "log-find")
        assert log.term == "needle" and log.match_seq == 121
        assert not log.following
        await pilot.press("n")
        await settle(app, pilot, "log-find")
        assert log.match_seq == 151
        await pilot.press("N")
        await settle(app, pilot, "log-find")
        assert log.match_seq == 121

        await pilot.press("G")
        assert log.following
        await pilot.press("e")
        await settle(app, pilot, "log-find")
        assert log.match_seq == 121 and log.top_seq <= 121 < log.top_seq + log.size.height


async def test_escape_sequences_in_a_log_line_are_inert(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        table(app).select_key(FAILED)
        await settle(app, pilot, "detail")
        log = app.screen.query_one(LogView)
        log.jump_to(151)
        await settle(app, pilot, "log-window")
        texts = [log.render_line(y).text for y in range(log.size.height)]
        line = next(t for t in texts if "needle" in t and "red" in t)
        assert "red text with needle" in line
        assert all("\x1b" not in t and "\x07" not in t for t in texts)
        assert "pwned" not in "".join(texts)


async def test_timestamps_wrap_and_save(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        table(app).select_key(FAILED)
        await settle(app, pilot, "detail")
        await pilot.press("3", "t", "w")
        log = app.screen.query_one(LogView)
        assert log.timestamps and log.wrap
        await pilot.press("ctrl+s")
        await settle(app, pilot, "log-save")
        saved = (tmp_path / "jobwatch-run-000000000002.log").read_text().splitlines()
        assert len(saved) == 201
        assert "\x1b" not in "".join(saved) and saved[0].endswith("stdout step 1 ok")


async def test_copy_id_uses_the_clipboard(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("y")
        assert app.clipboard == "run-000000000005"


async def test_marks_and_bulk_abort_explains_refusals(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        await pilot.press("space", "space")  # running + timed out
        assert len(app.runs.marked) == 2
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = plain(app.screen.query_one("#confirm-body").content)
        assert "run-000000000005" in body
        assert "cannot abort run-000000000004: it has already timed out" in body
        await pilot.press("escape")
        await pilot.pause()
        assert app.runs.rows[RUNNING].status is Status.RUNNING


async def test_help_and_palette_list_every_action(store: SqliteStore) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for wanted in (
            "Abort",
            "Archive",
            "Unarchive",
            "Faults",
            "Filter",
            "Sort",
            "Copy id",
            "First error",
            "Search",
            "Wrap",
            "Save",
            "Mark",
        ):
            assert wanted in titles
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


async def test_a_failing_source_goes_stale_and_the_rest_keeps_working(
    store: SqliteStore, tmp_path: Path
) -> None:
    broken_path = tmp_path / "broken.db"
    broken_path.write_bytes(b"not a database" * 100)
    broken = SqliteStore(broken_path, name="broken")
    app = JobwatchApp([store, broken], refresh=3600, clock=lambda: CLOCK)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert len(shown(app)) == 5
        feed = app.feeds[1]
        assert not feed.health.ok and feed.health.stale
        assert "2 sources, 1 stale" in plain(app.screen.query_one("#status").content)


async def test_outside_text_in_toasts_is_not_markup(store: SqliteStore, store_path: Path) -> None:
    app = make_app(store)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        async with SqliteStore(store_path) as writer:
            await writer.update(
                RUNNING[1],
                lambda r: r.evolve(
                    status=Status.FAILED,
                    job="[b]x[/b] \x1b[31mred",
                    error={"code": "[link=http://evil]click[/link]"},
                ),
            )
        await app.poll_once()
        await pilot.pause()
        toast = list(app._notifications)[-1]
        assert "[link=http://evil]click[/link]" in toast.message
        assert "[b]x[/b] red" in toast.title and "\x1b" not in toast.title + toast.message
        assert toast.markup is False


async def test_a_run_id_with_markup_and_escapes_is_shown_as_text(store_path: Path) -> None:
    """Run ids come from outside. In the pane titles, toasts and the log file name
    one must stay plain text: no markup (``[@click=…]`` would be an action), no
    terminal sequences, no path separators."""
    from jobwatch.core import Run
    from tui_support import at

    weird = "[b]x[/b]\x1b]0;pwned\x07/../y"
    await seed_store(
        store_path, [Run(id=weird, source="local", status=Status.FAILED, created_at=at(1))]
    )
    async with SqliteStore(store_path, create=False) as opened:
        app = make_app(opened)
        async with app.run_test(size=(160, 48)) as pilot:
            await ready(app, pilot)
            log = app.screen.query_one(LogView)
            detail_title = str(app.screen.query_one("#detail").border_title)
            for title in (str(log.border_title), detail_title):
                assert "\\[b]x" in title  # literal brackets (escaped), not read as markup
                assert "\x1b" not in title and "\x07" not in title
            await pilot.press("y")
            assert all("\x1b" not in n.message for n in app._notifications)
            assert "/" not in log.save_name() and "\x1b" not in log.save_name()
