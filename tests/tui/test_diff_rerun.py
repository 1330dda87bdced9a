"""The monitor's ``D`` (snapshot diff) and ``R`` (rerun), on real wrapped commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import jobwatch_env, runs_json, wait_for
from jobwatch.core import Action, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.screens.diff import DiffScreen
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import loaded, make_app, plain, ready, settle

SECRET_A = "sekrit-value-one"
SECRET_B = "sekrit-value-two"


def wrapped(store_path: Path, cwd: Path, secret: str, code: int) -> None:
    env = jobwatch_env(store_path)
    env["APP_PASSWORD"] = secret
    done = subprocess.run(
        [
            *(sys.executable, "-m", "jobwatch", "run", "--job", "nightly"),
            *("--snapshot-env", "APP_PASSWORD", "--snapshot-env", "MODE", "--"),
            *("sh", "-c", f"exit {code}"),
        ],
        env={**env, "MODE": f"m{code}"},
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr


def table(app: JobwatchApp) -> RunsTable:
    return app.screen.query_one(RunsTable)


async def test_diff_screen_shows_the_tree_without_the_secret(
    store_path: Path, tmp_path: Path
) -> None:
    wrapped(store_path, tmp_path, SECRET_A, 0)
    wrapped(store_path, tmp_path, SECRET_B, 3)
    newest = runs_json(store_path)[0]["id"]
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            palette = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Rerun", "Snapshot diff"} <= palette
            assert table(app).select_key(("local", newest))
            await pilot.press("D")
            await settle(app, pilot, "diff")
            screen = app.screen
            assert isinstance(screen, DiffScreen)
            text = "\n".join(screen.lines)
            assert "~ APP_PASSWORD: changed (secret)" in text
            assert '~ MODE: changed: "m0" → "m3"' in text
            drawn = plain(screen.query_one("#diff-body").content, width=78)
            for shown in (text, drawn):
                assert SECRET_A not in shown and SECRET_B not in shown and "***" not in shown
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, DiffScreen)


async def test_rerun_through_the_dialog_shows_the_new_run_at_once(
    store_path: Path, tmp_path: Path
) -> None:
    wrapped(store_path, tmp_path, SECRET_A, 4)
    original = runs_json(store_path)[0]["id"]
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            assert table(app).select_key(("local", original))
            await pilot.press("R")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("enter")  # the default is No
            await pilot.pause()
            assert len(runs_json(store_path)) == 1
            await pilot.press("R")
            await pilot.pause()
            await pilot.press("tab", "enter")
            await settle(app, pilot, "actions")
            new = [k for k in app.runs.rows if k[1] != original]
            assert len(new) == 1, app.runs.rows  # shown before any poll
            runs = wait_for(
                lambda: (
                    (r := runs_json(store_path))
                    and len(r) == 2
                    and r[0]["exit_code"] is not None
                    and r
                )
            )
            assert runs[0]["id"] == new[0][1] and runs[0]["metadata"]["rerun_of"] == original
            assert runs[0]["exit_code"] == 4 and runs[0]["config"]["cwd"] == str(tmp_path)
            for _ in range(50):  # a poll the action woke may be under way: bounded retries
                await app.poll_once()
                await settle(app, pilot, "poll-apply")
                if app.runs.rows[new[0]].status is Status.FAILED:
                    break
            assert app.runs.rows[new[0]].status is Status.FAILED
            assert table(app).select_key(new[0])
            await loaded(app, pilot)
            summary = plain(app.screen.query_one("#detail-summary").content)
            assert "rerun of" in summary and original in summary


async def test_read_only_monitor_refuses_rerun(store_path: Path, tmp_path: Path) -> None:
    wrapped(store_path, tmp_path, SECRET_A, 0)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            await pilot.press("R")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            palette = {c.title for c in app.get_system_commands(app.screen)}
            assert "Rerun" not in palette and "Snapshot diff" in palette
            app.actions.ask(Action.RERUN)  # asked for all the same: refused with the reason
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            notes = [n.message for n in app._notifications]
            assert any("cannot rerun" in m and "read-only mode" in m for m in notes), notes
    assert len(runs_json(store_path)) == 1
