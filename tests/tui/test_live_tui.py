"""The monitor's side of stuck runs, late jobs, hooks and terminal notifications,
over a real store (a run that stopped logging, a job that missed its slot) and
hooks that are real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.drivers.headless_driver import HeadlessDriver

from jobwatch.config.live import Hooks, LiveConfig
from jobwatch.core import Run, RunError, Status
from jobwatch.core.columns import BY_NAME, Cell
from jobwatch.sources.activity import Schedule
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.table_model.window import WindowedRunSet
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.status_line import StatusLine
from tui_support import CLOCK, at, make_app, plain, ready, settle

PY = sys.executable
STUCK = ("local", "run-stuck0000001")
BUSY = ("local", "run-busy00000001")
SECRET = "hunter2-" + "Zq9xV7mW3kP5"


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(store_path) as opened:
        await opened.add_many(
            [
                Run(
                    id=STUCK[1],
                    source="local",
                    job="quiet",
                    status=Status.RUNNING,
                    started_at=at(30),
                ),
                Run(
                    id=BUSY[1], source="local", job="busy", status=Status.RUNNING, started_at=at(30)
                ),
                Run(
                    id="run-done00000001",
                    source="local",
                    job="quiet",
                    status=Status.SUCCEEDED,
                    started_at=at(90),
                    ended_at=at(80),
                ),
            ]
        )
    with sqlite3.connect(store_path) as db:  # what the log sink stores
        db.execute("UPDATE runs SET last_output_at = ? WHERE id = ?", (CLOCK - 20 * 60, STUCK[1]))
        db.execute("UPDATE runs SET last_output_at = ? WHERE id = ?", (CLOCK - 30, BUSY[1]))
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def recorder(out: Path) -> tuple[str, ...]:
    return (PY, "-c", f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())")


async def wait_until(pilot: Any, check: Any, *, rounds: int = 400) -> Any:
    """Bounded: pauses the app between looks (hooks finish in their own processes)."""
    for _ in range(rounds):
        value = check()
        if value:
            return value
        await pilot.pause(0.02)
    raise AssertionError("condition not met")


async def checked(app: JobwatchApp, pilot: Any) -> None:
    """One more poll and the live check after it."""
    before = app.live.checks
    await app.poll_once()
    await settle(app, pilot, "live")
    await wait_until(pilot, lambda: app.live.checks > before)
    await settle(app, pilot, "live", "hooks")


def status_text(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#status", StatusLine).content, width=200)


async def test_a_run_that_stopped_logging_is_marked_shown_and_announced_once(
    store: SqliteStore, tmp_path: Path
) -> None:
    out = tmp_path / "stuck.jsonl"
    live = LiveConfig(stuck_after=600.0, hooks=Hooks(on_stuck=recorder(out)))
    app = make_app(store, live=live)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await checked(app, pilot)
        row = app.runs.rows[STUCK]
        assert row.stuck and not app.runs.rows[BUSY].stuck
        assert BY_NAME["problem"].text(row, Cell(now=CLOCK)) == "stuck 20m"
        assert STUCK in app.runs.unseen
        toasts = [f"{n.title} {n.message}" for n in app._notifications]
        assert any("quiet stuck" in t for t in toasts), toasts
        text = await wait_until(pilot, lambda: out.is_file() and out.read_text())
        (payload,) = [json.loads(line) for line in text.splitlines()]
        assert payload["event"] == "stuck" and payload["run"]["id"] == STUCK[1]
        assert payload["stuck"]["quiet_s"] == 1200 and payload["stuck"]["stuck_after_s"] == 600
        # faults-only keeps it; the detail pane says why
        await pilot.press("f")
        assert [app.runs.row_at(i).key for i in range(len(app.runs))] == [STUCK]
        await pilot.press("f")
        app.main.query_one("RunsTable").select_key(STUCK)  # type: ignore[attr-defined]
        await settle(app, pilot, "detail")
        pane = app.main.query_one(DetailPane)
        summary = plain(pane.query_one("#detail-summary").content, width=78)  # type: ignore[attr-defined]
        assert "no output or progress for 20m (stuck after 10m)" in summary
        # announced once: later checks change nothing
        started = app.live.hooks.started
        app.runs.unseen.clear()
        await checked(app, pilot)
        await checked(app, pilot)
        assert app.live.hooks.started == started == 1 and not app.runs.unseen
        assert app.runs.rows[STUCK].stuck  # still marked


async def test_a_run_that_moves_again_is_no_longer_stuck(
    store: SqliteStore, store_path: Path
) -> None:
    app = make_app(store, live=LiveConfig(stuck_after=600.0))
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await checked(app, pilot)
        assert app.runs.rows[STUCK].stuck
        with sqlite3.connect(store_path) as db:
            db.execute("UPDATE runs SET last_output_at = ? WHERE id = ?", (CLOCK - 5, STUCK[1]))
        await checked(app, pilot)
        assert not app.runs.rows[STUCK].stuck


async def test_a_failed_run_fires_on_failure_redacted_and_a_hanging_hook_is_killed(
    store: SqliteStore, store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "failure.jsonl"
    pid_file = tmp_path / "hang.pid"
    hang = (
        PY,
        "-c",
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
    )
    hooks = Hooks(on_failure=recorder(out), on_stuck=hang, timeout=1.0)
    live = LiveConfig(stuck_after=10**6, hooks=hooks)  # nothing stuck here
    app = make_app(store, live=live)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert app.live.hooks.started == 0  # nothing that was there before is news
        async with SqliteStore(store_path) as writer:
            await writer.add(
                Run(
                    id="run-fail00000001",
                    source="local",
                    job="deploy",
                    status=Status.FAILED,
                    started_at=at(2),
                    ended_at=at(0),
                    config={"api_token": SECRET},
                    error=RunError(code="exit-3", message=f"login failed: password={SECRET}"),
                )
            )
        await checked(app, pilot)
        text = await wait_until(pilot, lambda: out.is_file() and out.read_text())
        (payload,) = [json.loads(line) for line in text.splitlines()]
        assert payload["event"] == "failure" and payload["run"]["id"] == "run-fail00000001"
        assert payload["run"]["error"]["code"] == "exit-3"
        assert SECRET not in text and "password=" in payload["run"]["error"]["message"]
        # A hook that hangs: the monitor keeps polling meanwhile, then it is killed.
        app.live.hooks.fire("stuck", {"run": {"id": "x"}})
        pid = int(await wait_until(pilot, lambda: pid_file.is_file() and pid_file.read_text()))
        polls = app.poller.polls
        for _ in range(3):
            await app.poll_once()
        assert app.poller.polls >= polls + 3
        await wait_until(pilot, lambda: app.live.hook_warning, rounds=1000)
        assert "hook on_stuck timed out after 1s (killed)" in status_text(app)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_job_that_missed_its_slot_is_late_in_the_status_line_once(
    store: SqliteStore,
) -> None:
    await store.set_schedule(Schedule("local", "quiet", every_s=20 * 60, grace_s=5 * 60))
    await store.set_schedule(Schedule("local", "busy", every_s=86_400))
    app = make_app(store, live=LiveConfig(stuck_after=10**6))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await checked(app, pilot)
        late = app.live.report.late
        # both last started 30 min ago: quiet was due 10 min ago, busy is not due
        assert [x.job for x in late] == ["quiet"]
        assert late[0].late_by == pytest.approx(10 * 60)
        assert "1 job late" in status_text(app)
        jobs = {s.job: s.late for s in app.triage.jobs()}  # what the jobs view (J) shows
        assert jobs["quiet"] == "late 10m" and jobs["busy"] is None
        toasts = [n for n in app._notifications if "late" in n.title]
        assert len(toasts) == 1 and toasts[0].title == "quiet late"
        await checked(app, pilot)
        assert len([n for n in app._notifications if "late" in n.title]) == 1


async def test_terminal_notifications_go_through_the_driver(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    # What the app's driver writes to its terminal, from the first frame on.
    monkeypatch.setattr(HeadlessDriver, "write", lambda self, data: written.append(data))
    app = make_app(store, live=LiveConfig(stuck_after=600.0, terminal_notify="osc777"))
    async with app.run_test() as pilot:
        assert isinstance(app._driver, HeadlessDriver)
        await ready(app, pilot)
        await checked(app, pilot)
        await wait_until(pilot, lambda: written)
        (sequence,) = [w for w in written if w.startswith("\x1b]777;")]
        assert (
            sequence == f"\x1b]777;notify;jobwatch: quiet stuck;{STUCK[1]}: no output for 20m\x07"
        )
        assert app.live.terminal_notices == [sequence]


async def test_faults_only_over_a_windowed_store_keeps_the_stuck_run(store: SqliteStore) -> None:
    app = make_app(store, window_from=0, live=LiveConfig(stuck_after=600.0))
    await app.preload()
    assert isinstance(app.runs, WindowedRunSet)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await checked(app, pilot)
        assert app.runs.stuck_ids == {STUCK[1]}
        await pilot.press("f")
        for _ in range(50):  # bounded: each round waits for the window's worker
            await settle(app, pilot, "window", "detail")
            runs = app.runs
            if not (runs.need_reload or runs.need_resync or runs.need_extend or app._window_busy):
                break
        assert len(app.runs) == 1 and app.runs.row_at(0).key == STUCK


async def test_the_first_live_look_waits_for_the_first_screen(store: SqliteStore) -> None:
    """The monitor reads the first screen before Textual starts; the live look
    (every running run's activity, read from the store) comes after it is drawn,
    not in the middle of drawing it."""
    app = make_app(store, live=LiveConfig(stuck_after=600.0))
    drawn_at_look: list[bool] = []
    look = app.live.watch.check

    async def recorded(feeds: Any) -> Any:
        drawn_at_look.append(app._rows_drawn.is_set())
        return await look(feeds)

    app.live.watch.check = recorded  # type: ignore[method-assign]
    await app.preload()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await wait_until(pilot, lambda: app.live.checks >= 1)
        await settle(app, pilot, "live")
    assert drawn_at_look and all(drawn_at_look)
    assert app.runs.rows[STUCK].stuck
