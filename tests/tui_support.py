"""Helpers for the monitor's tests: a seeded store on a fixed clock, and ways to
wait for the app's workers without sleeping."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from jobwatch.core import Progress, Reason, Run, RunError, Status
from jobwatch.sources import Source
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp

NOW = datetime(2027, 1, 15, 12, 0, 0, tzinfo=UTC)
CLOCK = NOW.timestamp()
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def seed_runs() -> list[Run]:
    """A small, fixed history in several vendors' shapes."""
    return [
        Run(
            id="run-000000000001",
            source="local",
            job="backup",
            label="backup --full",
            status=Status.SUCCEEDED,
            status_raw="succeeded",
            created_at=at(300),
            started_at=at(300),
            ended_at=at(290),
            exit_code=0,
        ),
        Run(
            id="run-000000000002",
            source="local",
            job="etl",
            status=Status.FAILED,
            status_raw="failed",
            created_at=at(200),
            started_at=at(200),
            ended_at=at(199),
            exit_code=2,
            error=RunError(code="exit-2", message="disk full"),
        ),
        Run(
            id="7c663870-b99a-4c1e-9d7e-000000000003",
            source="intuned-demo",
            job="nightly-price-scrape",
            type="SCHEDULED",
            status=Status.SUCCEEDED,
            status_raw="COMPLETED",
            created_at=at(120),
            started_at=at(119),
            ended_at=at(100),
            progress=Progress(total=500, succeeded=469, failed=31, pending=0),
            config={
                "sink": {
                    "type": "s3",
                    "bucket": "acme",
                    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                    "secretAccessKey": SECRET,
                },
                "proxy": {"version": "v1", "url": "http://bot:hunter2@proxy.example.com:8080"},
            },
            error=None,
            reason=Reason(type="user-request", message="done"),
        ),
        Run(
            id="run-000000000004",
            source="letta-demo",
            job="agent-42",
            status=Status.TIMED_OUT,
            status_raw="expired",
            created_at=at(60),
            started_at=at(59),
            ended_at=at(30),
            reason=Reason(type="timeout"),
        ),
        Run(
            id="run-000000000005",
            source="local",
            job="report",
            status=Status.RUNNING,
            status_raw="running",
            created_at=at(10),
            started_at=at(10),
        ),
        Run(
            id="run-000000000006",
            source="local",
            job="old-job",
            status=Status.ABORTED,
            status_raw="aborted",
            created_at=at(400),
            started_at=at(400),
            ended_at=at(399),
            archived=True,
        ),
    ]


async def seed_store(path: Path, runs: list[Run] | None = None) -> None:
    async with SqliteStore(path) as store:
        await store.add_many(runs if runs is not None else seed_runs())
        lines = [(CLOCK - 600 + i, "stdout", "info", f"step {i} ok") for i in range(1, 200)]
        lines.insert(120, (CLOCK - 480, "stderr", "error", "ERROR needle: disk full"))
        lines.insert(
            150,
            (
                CLOCK - 450,
                "stdout",
                "info",
                "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m text with needle",
            ),
        )
        await store.append_logs("run-000000000002", lines)


def make_app(*sources: Source, **kw: Any) -> JobwatchApp:
    """The monitor over ``sources`` with a fixed clock and theme; tests drive polls."""
    kw.setdefault("refresh", 3600)
    kw.setdefault("clock", lambda: CLOCK)
    kw.setdefault("theme", "jobwatch-dark")
    return JobwatchApp(list(sources), **kw)


async def settle(app: JobwatchApp, pilot: Any, *groups: str) -> None:
    """Wait for the named worker groups (never the endless poll loop), then idle."""
    await pilot.pause()
    for _ in range(3):
        workers = [w for w in app.workers if w.group in groups and not w.is_finished]
        if workers:
            await app.workers.wait_for_complete(workers)
        await pilot.pause()


async def ready(app: JobwatchApp, pilot: Any) -> None:
    """The first sync is done and the selected run's detail and log are shown."""
    await app.synced.wait()
    await loaded(app, pilot)


async def loaded(app: JobwatchApp, pilot: Any) -> None:
    """Wait (bounded, by events, not by sleeping) until the detail and log panes
    show the run under the cursor."""
    from jobwatch.tui.widgets.runs_table import RunsTable

    table = app.main.query_one(RunsTable)
    for _ in range(200):
        await settle(app, pilot, "detail")
        if app.loaded_key == table.cursor_key:
            await pilot.pause()
            return
    raise AssertionError(f"selection {table.cursor_key} never loaded")


def plain(renderable: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def stop_polling(app: JobwatchApp, pilot: Any) -> None:
    """Cancel the monitor's poll loop, so what changes on screen from now on can only
    come from the app itself (an action's result), never from a later poll."""
    loops = [w for w in app.workers if w.group == "poll"]
    assert loops, "the poll loop is not running"
    for worker in loops:
        worker.cancel()
    for _ in range(100):
        await pilot.pause()
        if all(w.is_finished for w in loops):
            break
    assert all(w.is_finished for w in loops), "the poll loop did not stop"
    polls = app.poller.polls
    await pilot.pause()
    assert app.poller.polls == polls
