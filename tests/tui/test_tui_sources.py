"""The monitor on several sources at once: a local store file and a real
``jobwatch serve`` on 127.0.0.1 that fails, disappears and comes back."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_TOKEN, LoopbackServer, wait_for_async
from jobwatch.cli import build_parser, main, monitor_app, monitor_options
from jobwatch.core import Run, RunRow, Status
from jobwatch.sources.health import Backoff
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.screens.sources import sources_table
from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable, layout
from tui_support import CLOCK, at, loaded, make_app, plain, ready, seed_runs, seed_store, settle

SAME_ID = "run-000000000005"  # running in the local seed, and in the served store too
LOCAL_RUN = ("local", SAME_ID)
SERVED_RUN = ("served", SAME_ID)


def served_runs() -> list[Run]:
    return [
        Run(
            id=SAME_ID,
            source="local",
            job="remote-report",
            status=Status.RUNNING,
            created_at=at(5),
            started_at=at(5),
        ),
        Run(
            id="run-s00000000001",
            source="local",
            job="remote-etl",
            status=Status.FAILED,
            created_at=at(50),
            started_at=at(50),
            ended_at=at(49),
        ),
    ]


async def seed_served(path: Path) -> None:
    async with SqliteStore(path) as store:
        await store.add_many(served_runs())
        await store.append_logs(
            SAME_ID, [(CLOCK - 60 + i, "stdout", "info", f"served line {i}") for i in range(3)]
        )


def status_line(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#status").content, width=400)


def source_row(app: JobwatchApp, name: str) -> str:
    """``name``'s line of the sources screen (``h``): state, last poll, retry, error."""
    text = plain(sources_table(app.feeds, app.poller.clock()), width=400)
    return next(line for line in text.splitlines() if line.split()[:1] == [name])


def table(app: JobwatchApp) -> RunsTable:
    return app.main.query_one(RunsTable)


async def poll_until(app: JobwatchApp, check: Callable[[], bool], timeout: float = 30) -> None:
    """Poll (the app's own poll, as its loop does) until ``check`` holds; a source
    in back-off is retried as soon as it is due."""

    async def polled() -> bool:
        await app.poll_once()
        return check()

    await wait_for_async(polled, timeout=timeout, every=0.02)


async def in_store(path: Path, body: Callable[[SqliteStore], Awaitable[Any]]) -> Any:
    async with SqliteStore(path, create=False) as store:
        return await body(store)


async def test_local_and_served_sources_in_one_monitor(
    loopback_server: LoopbackServer, store_path: Path, tmp_path: Path
) -> None:
    local_path = tmp_path / "local.db"
    await seed_store(local_path)
    await seed_served(store_path)  # the store loopback_server serves
    local = SqliteStore(local_path, name="local", create=False)
    served = HttpSource(
        loopback_server.url, name="served", token=TEST_TOKEN, attempts=1, retry_base=0.01
    )
    app = make_app(local, served)
    for feed in app.feeds:  # retry a failing source within the test's patience
        feed.tracker.backoff = Backoff(base=0.05, cap=0.2)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await ready(app, pilot)

            # Both sources in one table, the same run id twice without a collision.
            keys = set(app.runs.rows)
            assert {LOCAL_RUN, SERVED_RUN, ("served", "run-s00000000001")} <= keys
            assert len(keys) == 6 + 2
            assert {k[0] for k in keys} == {"local", "served"}  # rows carry their source
            assert app.runs.rows[LOCAL_RUN].job == "report"
            assert app.runs.rows[SERVED_RUN].job == "remote-report"
            runs_table = table(app)
            assert "source" in [c.name for c, _ in runs_table._columns]
            assert "SOURCE" in runs_table.render_line(0).text
            lines = [runs_table.render_line(y).text for y in range(1, 10)]
            assert any("served" in t and "remote-report" in t for t in lines)
            assert any("local" in t and "report" in t and "remote" not in t for t in lines)
            assert " ok " in source_row(app, "local") and " ok " in source_row(app, "served")

            # Detail and log come from the source that owns the selected run.
            assert runs_table.select_key(SERVED_RUN)
            await loaded(app, pilot)
            detail = plain(app.main.query_one("#detail-summary").content)
            assert "remote-report" in detail
            log = app.main.query_one(LogView)
            assert log.source is served and log.run_id == SAME_ID and log.count == 3
            assert runs_table.select_key(LOCAL_RUN)
            await loaded(app, pilot)
            detail = plain(app.main.query_one("#detail-summary").content)
            assert "report" in detail and "remote-report" not in detail
            assert log.source is local and log.count == 0

            # An abort of the served run goes to the server, and only there.
            assert runs_table.select_key(SERVED_RUN)
            await loaded(app, pilot)
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(app, pilot, "actions")
            served_run = await in_store(store_path, lambda s: s.get(SAME_ID))
            local_run = await in_store(local_path, lambda s: s.get(SAME_ID))
            assert served_run.status is Status.ABORTED
            assert local_run.status is Status.RUNNING
            assert app.runs.rows[SERVED_RUN].status is Status.ABORTED
            assert app.runs.rows[LOCAL_RUN].status is Status.RUNNING

            # The server fails: it goes stale with the reason, local runs keep coming.
            loopback_server.faults.status = 503
            await in_store(
                local_path,
                lambda s: s.add(Run(id="run-local-new", source="local", status=Status.QUEUED)),
            )
            await poll_until(
                app,
                lambda: not app.feeds[1].health.ok and ("local", "run-local-new") in app.runs.rows,
            )
            served_row = source_row(app, "served")
            assert "stale since" in served_row and "injected 503" in served_row
            assert " ok " in source_row(app, "local")
            assert "2 sources, 1 stale" in status_line(app)
            assert app.runs.rows[SERVED_RUN].status is Status.ABORTED  # last known rows stay

            # ...then disappears; meanwhile both stores change.
            loopback_server.stop()
            loopback_server.faults.clear()

            async def served_changes(store: SqliteStore) -> None:
                await store.add(
                    Run(
                        id="run-s-meanwhile",
                        source="local",
                        job="remote-late",
                        status=Status.FAILED,
                        created_at=at(1),
                    )
                )
                await store.archive("run-s00000000001")

            await in_store(store_path, served_changes)
            await in_store(
                local_path,
                lambda s: s.update(SAME_ID, lambda r: r.evolve(status=Status.SUCCEEDED)),
            )
            await poll_until(
                app,
                lambda: (
                    app.runs.rows[LOCAL_RUN].status is Status.SUCCEEDED
                    and "injected 503" not in (app.feeds[1].health.error or "")
                ),
            )
            assert app.feeds[1].health.stale
            assert "stale since" in source_row(app, "served")
            assert ("served", "run-s-meanwhile") not in app.runs.rows

            # It comes back: healthy again, and what changed meanwhile arrives.
            loopback_server.start()
            await poll_until(app, lambda: app.feeds[1].health.ok)
            assert " ok " in source_row(app, "served")
            async with SqliteStore(store_path, create=False) as check:
                truth = {r.id: r for r in (await check.changes(None)).runs}
            shown = {k[1]: row for k, row in app.runs.rows.items() if k[0] == "served"}
            assert set(shown) == set(truth) == {SAME_ID, "run-s00000000001", "run-s-meanwhile"}
            for run_id, run in truth.items():
                assert (shown[run_id].status, shown[run_id].archived) == (run.status, run.archived)
            assert app.runs.rows[LOCAL_RUN].status is Status.SUCCEEDED
    finally:
        await local.close()
        await served.close()


def shifted(runs: list[Run], minutes: float) -> list[Run]:
    """The same runs, ``minutes`` earlier, so the two stores' rows interleave."""
    delta = timedelta(minutes=minutes)
    return [
        r.evolve(
            created_at=r.created_at - delta if r.created_at else None,
            started_at=r.started_at - delta if r.started_at else None,
            ended_at=r.ended_at - delta if r.ended_at else None,
        )
        for r in runs
    ]


async def test_a_read_only_source_refuses_with_its_reason(tmp_path: Path) -> None:
    ops, archive = tmp_path / "ops.db", tmp_path / "archive.db"
    await seed_store(ops)
    await seed_store(archive, shifted(seed_runs(), 1))
    sources = [
        SqliteStore(ops, name="ops", create=False),
        SqliteStore(archive, name="archive", create=False, read_only=True),
    ]
    app = make_app(*sources)
    try:
        async with app.run_test() as pilot:  # 80 columns: the source column stays
            await ready(app, pilot)
            assert "source" in [c.name for c, _ in table(app)._columns]
            assert len(app.runs.rows) == 12  # the same six runs twice, apart
            assert table(app).select_key(("archive", SAME_ID))
            await loaded(app, pilot)
            await pilot.press("a")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            messages = [n.message for n in app._notifications]
            assert any(
                f"cannot abort {SAME_ID}: source archive is read-only" in m for m in messages
            )
            assert table(app).select_key(("ops", SAME_ID))
            await loaded(app, pilot)
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)  # the writable one asks
            await pilot.press("n")
    finally:
        for source in sources:
            await source.close()


def test_identical_runs_in_two_sources_are_both_findable() -> None:
    row = RunRow.from_run(seed_runs()[4])
    twin = dataclasses.replace(row, source="other")
    runs = RunSet()
    runs.replace_all([row, twin])
    assert runs.key_at(runs.index_of(row.key) or 0) == row.key
    assert runs.key_at(runs.index_of(twin.key) or 0) == twin.key
    assert runs.index_of(row.key) != runs.index_of(twin.key)


def test_layout_keeps_the_source_column_for_several_sources() -> None:
    assert "source" not in [c.name for c, _ in layout(80)]
    assert "source" in [c.name for c, _ in layout(80, several=True)]
    assert [c.name for c, _ in layout(200)] == [c.name for c, _ in layout(200, several=True)]


# -- command line and config -----------------------------------------------------------


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    os.chmod(path, 0o644)
    return path


CONFIG = """\
default_sources = ["one", "two"]
refresh = 2.5
theme = "jobwatch-light"
read_only = true
bell = false

[sources.one]
kind = "sqlite"
path = "missing.db"

[sources.two]
kind = "jobwatch"
url = "http://127.0.0.1:9"
token = "a-token-written-into-the-file"
"""


async def test_config_settings_reach_the_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.toml", CONFIG)
    options = monitor_options(build_parser().parse_args(["--config", str(config)]))
    assert [s.name for s in options.sources] == ["one", "two"]
    assert isinstance(options.sources[1], HttpSource)
    assert all(s.read_only for s in options.sources)
    assert (options.refresh, options.theme, options.read_only, options.bell) == (
        2.5,
        "jobwatch-light",
        True,
        False,
    )
    assert any("readable by other users" in w for w in options.warnings)
    assert capsys.readouterr().err == ""  # the monitor shows them, not the terminal

    app = monitor_app(options)
    assert (app.refresh_s, app.theme, app.read_only, app.bell_enabled) == (
        2.5,
        "jobwatch-light",
        True,
        False,
    )
    try:
        async with app.run_test() as pilot:
            # Neither source can be reached, and the monitor runs anyway.
            await app.synced.wait()
            await pilot.pause()
            toasts = [n.message for n in app._notifications]
            assert sum("readable by other users" in m for m in toasts) == 1
            one = source_row(app, "one")
            assert "stale since" in one and "no store at" in one
            assert "stale since" in source_row(app, "two")
            assert "2 sources, 2 stale" in status_line(app)
    finally:
        for source in options.sources:
            await source.close()


def test_flags_override_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", CONFIG)
    store = tmp_path / "given.db"
    args = build_parser().parse_args(
        [
            "--config",
            str(config),
            "--refresh",
            "0.5",
            "--theme",
            "jobwatch-mono",
            "--bell",
            "--source",
            str(store),
            "--source",
            "two",
        ]
    )
    options = monitor_options(args)
    assert [s.name for s in options.sources] == [str(store), "two"]
    assert (options.refresh, options.theme, options.bell) == (0.5, "jobwatch-mono", True)
    assert options.read_only  # the config's read_only is not undone by a flag

    bare = monitor_options(build_parser().parse_args([]))  # no config file
    assert [s.name for s in bare.sources] == ["local"]
    assert (bare.refresh, bare.theme, bare.read_only, bare.bell) == (1.0, None, False, True)
    assert bare.warnings == []
    off = monitor_options(build_parser().parse_args(["--no-bell", "--read-only"]))
    assert off.bell is False and off.read_only and off.sources[0].read_only


def test_plain_jobwatch_on_a_missing_store_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", str(tmp_path / "nothing.db")]) == 1
    err = capsys.readouterr().err
    assert "no store at" in err and "Traceback" not in err


async def test_a_source_with_its_own_pace_is_polled_at_it_and_r_forces_it(
    tmp_path: Path,
) -> None:
    """A vendor API is asked every 15 s, not every second; ``r`` asks it now."""
    path = tmp_path / "paced.db"
    await seed_store(path)
    source = SqliteStore(path, create=False)
    source.pace = 3600
    running = next(r for r in seed_runs() if r.status is Status.RUNNING)
    app = make_app(source)
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            async with SqliteStore(path, create=False) as writer:
                await writer.update(running.id, lambda r: r.evolve(status=Status.FAILED))
            await app.poll_once()
            assert app.runs.rows[("local", running.id)].status is Status.RUNNING
            await pilot.press("r")
            await wait_for_async(
                lambda: app.runs.rows[("local", running.id)].status is Status.FAILED
            )
    finally:
        await source.close()


async def test_a_big_remote_sync_paints_page_by_page(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    """2,500 served runs in pages of 1,000 rows: the table shows the newest rows
    (``/rows?newest``) after one poll instead of waiting for the last page, and the
    rest follows without a refresh."""
    async with SqliteStore(store_path, create=False) as writer:
        base = seed_runs()[0]
        await writer.add_many(
            [base.evolve(id=f"run-bulk{i:06d}", label=f"bulk {i}") for i in range(2500)]
        )
    served = HttpSource(loopback_server.url, name="served", token=TEST_TOKEN, page=1000)
    app = make_app(served)
    try:
        async with app.run_test() as pilot:
            await wait_for_async(lambda: len(app.runs.rows) > 0)
            await app.synced.wait()
            assert len(app.runs.rows) == 2500
            assert app.feeds[0].synced and not app.feeds[0].more
            await pilot.pause()
    finally:
        await served.close()

    # The same source polled by hand: one page per poll.
    served = HttpSource(loopback_server.url, name="served", token=TEST_TOKEN, row_page=1000)
    app = make_app(served)
    sizes: list[int] = []
    app.poller.on_rows = lambda feed, rows, first: sizes.append(len(rows))
    feed = app.feeds[0]
    try:
        for _ in range(5):
            report = await app.poller.poll_once()
            assert not report.failed
            if feed.synced:
                break
        assert sizes == [300, 1000, 1000, 500]  # the first screen, then the pages
    finally:
        await served.close()


async def test_a_source_paced_quicker_than_the_monitor_is_polled_at_its_pace(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quick.db"
    await seed_store(path)
    source = SqliteStore(path, create=False)
    source.pace = 0.2
    running = next(r for r in seed_runs() if r.status is Status.RUNNING)
    app = make_app(source)
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            async with SqliteStore(path, create=False) as writer:
                await writer.update(running.id, lambda r: r.evolve(status=Status.FAILED))
            await wait_for_async(
                lambda: app.runs.rows[("local", running.id)].status is Status.FAILED,
                timeout=10,
            )
    finally:
        await source.close()


async def test_a_replaced_store_goes_stale_and_the_monitor_follows_the_new_file(
    tmp_path: Path,
) -> None:
    """A store swapped under the monitor stayed ``[local: ok]`` with the old file's
    runs, and the new file's never appeared. Now the poll says so, drops the old
    rows and syncs the file that is there now."""
    path, other = tmp_path / "runs.db", tmp_path / "other.db"
    await seed_store(path)
    await seed_store(other, served_runs()[1:])
    store = SqliteStore(path, mode="write")
    await store.open()
    app = make_app(store)
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            assert len(app.runs.rows) == 6
            os.replace(other, path)
            await app.poll_once()
            assert app.feeds[0].health.error == f"store {path} was replaced; reopened"
            assert "stale since" in source_row(app, "local")
            assert "local: stale" in status_line(app)
            await poll_until(app, lambda: app.feeds[0].health.ok)
            assert set(app.runs.rows) == {("local", "run-s00000000001")}
            await pilot.pause()
            assert table(app).cursor_key == ("local", "run-s00000000001")
    finally:
        await store.close()


async def test_watching_a_store_never_changes_it(tmp_path: Path) -> None:
    """The monitor (not ``--read-only``) polls through a read-only connection: no
    migration, no journal switch, no reaper write; only an action reopens it."""
    import hashlib
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "runs.db"
    await seed_store(path)
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner.wait()  # a pid that no longer runs: its run is lost
    lost = Run(id="run-00000000000a", source="local", status=Status.RUNNING, created_at=at(1))
    async with SqliteStore(path) as writer:
        await writer.add(lost, managed_by=owner.pid)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    store = SqliteStore(path, mode="write")
    await store.open()
    app = make_app(store)
    try:
        async with app.run_test() as pilot:
            await ready(app, pilot)
            for _ in range(3):
                await app.poll_once()
            assert app.runs.rows[("local", lost.id)].status is Status.UNKNOWN  # shown so
            assert not store.writable and not store.read_only
    finally:
        await store.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT status FROM runs WHERE id = ?", (lost.id,)).fetchone()
    assert row == ("running",)  # not written: the next writer records it
