"""The triage index over a real SQLite store: jobs, failure groups (new and
repeating), slow runs; filled by the store itself or fed the poller's rows, and
kept up to date batch by batch. ``jobwatch jobs`` / ``failures`` over the same."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from jobwatch.core import RunRow, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.local.schema import MIGRATIONS, SCHEMA_VERSION
from jobwatch.sources.poller import Poller
from jobwatch.triage.feed import fill
from jobwatch.triage.index import WINDOW_S, TriageIndex
from triage_support import HOUR, NOW, TIMES, history, run, steady


@pytest.fixture
async def seeded(store_path: Path) -> Path:
    async with SqliteStore(store_path) as store:
        await store.add_many(history())
    return store_path


async def filled(path: Path, since: float = NOW - WINDOW_S) -> TriageIndex:
    """The index as a store fills it (one query for rows, one for older shapes)."""
    index = TriageIndex(clock=lambda: NOW)
    async with SqliteStore(path, mode="read") as store:
        poller = Poller([store], mode="rows")
        assert await fill(index, poller.feeds[0], since)
    return index


async def fed(path: Path) -> TriageIndex:
    """The index as any other source feeds it: every row, through apply."""
    index = TriageIndex(clock=lambda: NOW)
    async with SqliteStore(path, mode="read") as store:
        index.apply((await store.row_changes(None)).rows)
    return index


@pytest.mark.parametrize("build", [filled, fed], ids=["store-fill", "rows"])
async def test_jobs_summaries(seeded: Path, build) -> None:  # type: ignore[no-untyped-def]
    index = await build(seeded)
    jobs = {s.job: s for s in index.jobs(NOW)}
    assert set(jobs) == {"etl", "backup", "report", "ingest"}
    backup = jobs["backup"]
    assert backup.last_status is Status.FAILED
    assert backup.trend == "3 failed in a row"
    assert backup.runs_in_window == 3 and backup.success_rate == 0.0
    assert backup.last_success_at == pytest.approx(NOW - 55 * HOUR + 60)
    etl = jobs["etl"]
    assert etl.runs_in_window == 11 and etl.success_rate == 1.0
    assert etl.p50_ms == 60_000 and etl.p95_ms == 300_000
    assert [d for d, _ in etl.spark][-1] == 300_000
    assert all(st is Status.SUCCEEDED for _, st in etl.spark)
    ingest = jobs["ingest"]
    assert ingest.last_status is Status.RUNNING and ingest.active == 1
    assert ingest.late is None  # the schedules plug in through late_of


@pytest.mark.parametrize("build", [filled, fed], ids=["store-fill", "rows"])
async def test_failure_groups_repeat_and_new(seeded: Path, build) -> None:  # type: ignore[no-untyped-def]
    index = await build(seeded)
    groups = index.failures(NOW - WINDOW_S, NOW)
    assert [(g.count, g.new) for g in groups] == [(3, False), (1, True)]
    repeat, fresh = groups
    assert repeat.text == "exit-1: connection to db-<n>.internal:<n> refused after <n> tries"
    assert repeat.jobs == ("backup",) and repeat.example == ("local", "run-backup-f2")
    assert repeat.first_seen == pytest.approx(NOW - 57.5 * HOUR + 60)
    assert set(repeat.keys) == {("local", f"run-backup-f{i}") for i in range(3)}
    assert fresh.example == ("local", "run-report-new") and fresh.jobs == ("report",)
    assert "sk-live" not in fresh.text and "<q>" in fresh.text  # redacted, then shaped
    # a window reaching back to the old failure: the repeating one is no longer new
    wide = index.failures(NOW - 60 * HOUR, NOW)
    assert wide[0].count == 4


@pytest.mark.parametrize("build", [filled, fed], ids=["store-fill", "rows"])
async def test_a_job_that_turns_slow(seeded: Path, build) -> None:  # type: ignore[no-untyped-def]
    index = await build(seeded)
    async with SqliteStore(seeded, mode="read") as store:
        rows = {r.id: r for r in (await store.row_changes(None)).rows}
    assert index.slowness(rows["run-etl-slow"], NOW) == f"5.0{TIMES} this job's median"
    assert index.slowness(rows["run-etl-009"], NOW) is None
    # running for 10 minutes against a usual minute: already past the point
    assert index.slowness(rows["run-ingest-now"], NOW) == f"10.0{TIMES} this job's median"
    # fewer than five earlier runs: not judged
    assert index.slowness(rows["run-etl-003"], NOW) is None


async def test_a_poll_updates_only_what_it_touched(seeded: Path) -> None:
    index = await filled(seeded)
    before = {s.job: s for s in index.jobs(NOW)}
    async with SqliteStore(seeded) as store:
        cursor = await store.head_cursor()
        await store.add(
            run(
                "run-report-again",
                "report",
                hours_ago=0.2,
                status=Status.FAILED,
                code="exit-2",
                message="template 'daily.html' missing, token=sk-live-qrstuvwxyzabcdef9876",
            )
        )
        delta = await store.row_changes(cursor)
    touched = index.apply(delta.rows)
    assert touched.jobs == {("local", "report")} and len(touched.groups) == 1
    after = {s.job: s for s in index.jobs(NOW)}
    assert after["report"].trend == "2 failed in a row"
    assert after["etl"] is before["etl"]  # untouched: the cached summary itself
    fresh = next(g for g in index.failures(NOW - WINDOW_S, NOW) if g.new)
    assert fresh.count == 2 and fresh.example == ("local", "run-report-again")


def test_history_is_bounded_per_job() -> None:
    index = TriageIndex(history=20, clock=lambda: NOW)
    rows = [RunRow.from_run(r) for r in steady("busy", 100, first_hours_ago=100)]
    index.apply(rows)
    summary = index.summary(("local", "busy"), NOW)
    assert summary is not None and len(summary.spark) == 20
    assert summary.last_success_at == pytest.approx(NOW - HOUR + 60)


async def test_the_message_is_on_the_fast_path_redacted(store_path: Path) -> None:
    secret = "sk-live-abcdefghijklmnop1234"
    async with SqliteStore(store_path) as store:
        await store.add(
            run("run-x", "x", hours_ago=1, status=Status.FAILED, message=f"token={secret} " * 80)
        )
        (row,) = (await store.row_changes(None)).rows
    assert row.message is not None and len(row.message) <= 300
    assert secret not in row.message and "token=" in row.message


async def test_an_older_store_gets_its_messages_from_the_documents(store_path: Path) -> None:
    """A store from before the message column: migrating fills it from each failed
    run's document, and the row reader redacts it as any message."""
    added = next(v for v, sql in MIGRATIONS.items() if any("ADD COLUMN message" in s for s in sql))
    async with SqliteStore(store_path) as store:
        await store.add(
            run("run-y", "y", hours_ago=1, status=Status.FAILED, message="password=hunter2hunter2")
        )
    with sqlite3.connect(store_path) as db:
        db.execute("ALTER TABLE runs DROP COLUMN message")
        db.execute("DROP INDEX IF EXISTS runs_job")
        db.execute(f"PRAGMA user_version = {added - 1}")
    db.close()
    async with SqliteStore(store_path) as store:
        (row,) = (await store.row_changes(None)).rows
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()
    assert row.message is not None and "hunter2" not in row.message and "password=" in row.message


def test_cli_jobs_and_failures_json(seeded: Path) -> None:
    jobs = run_cli(seeded, "jobs", "--json")
    assert jobs.returncode == 0, jobs.stderr
    by_job = {j["job"]: j for j in json.loads(jobs.stdout)}
    assert by_job["backup"]["trend"] == "3 failed in a row"
    assert by_job["etl"]["p50_ms"] == 60_000 and len(by_job["etl"]["recent"]) == 11
    assert by_job["ingest"]["last_status"] == "running" and by_job["ingest"]["late"] is None
    failures = run_cli(seeded, "failures", "--json")
    assert failures.returncode == 0, failures.stderr
    groups = json.loads(failures.stdout)
    assert [(g["count"], g["new"], g["code"]) for g in groups] == [
        (3, False, "exit-1"),
        (1, True, "exit-2"),
    ]
    assert "sk-live" not in failures.stdout
    wide = json.loads(run_cli(seeded, "failures", "--since", "3d", "--json").stdout)
    assert [(g["count"], g["new"]) for g in wide] == [(4, True), (1, True)]
    table = run_cli(seeded, "jobs")
    assert table.returncode == 0 and "backup\t✗ failed" in table.stdout


async def test_failure_groups_over_jobwatch_serve(seeded: Path, loopback_server: Any) -> None:
    """rows/1 carries the message: a monitor of ``jobwatch serve`` groups failures
    as one of the store does (the message redacted on the way)."""
    from conftest import TEST_TOKEN
    from jobwatch.sources.http.client import HttpSource

    source = HttpSource(loopback_server.url, name="served", token=TEST_TOKEN)
    await source.open()
    try:
        rows: list[RunRow] = []
        cursor: int | str | None = None
        for _ in range(20):
            delta = await source.row_changes(cursor)
            rows += delta.rows
            cursor = delta.cursor
            if not delta.more:
                break
    finally:
        await source.close()
    index = TriageIndex(clock=lambda: NOW)
    index.apply(rows)
    groups = index.failures(NOW - WINDOW_S, NOW)
    local = (await fed(seeded)).failures(NOW - WINDOW_S, NOW)
    assert [(g.text, g.count, g.new) for g in groups] == [(g.text, g.count, g.new) for g in local]
    assert all("sk-live" not in (r.message or "") for r in rows)
    assert any(r.message for r in rows)


async def test_a_big_first_load_reaches_the_jobs_view(store_path: Path) -> None:
    """More rows than the sink applies inline: a worker feeds the index in chunks
    after the table has them, and the jobs view still counts every job."""
    from jobwatch.tui.screens.triage import JobsScreen
    from tui_support import make_app, ready, settle

    many = [r for j in range(30) for r in steady(f"bulk-{j:02d}", 100, first_hours_ago=100)]
    async with SqliteStore(store_path) as store:
        await store.add_many(many)
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store, clock=lambda: NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            await settle(app, pilot, "triage")
            assert len(app.runs) == 3000 and not app._triage_backlog
            await pilot.press("J")
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen) and app.screen.table.row_count == 30
            summary = app.triage.summary(("local", "bulk-07"), NOW)
            assert summary is not None and summary.runs_in_window == 24


@pytest.mark.parametrize("opened", ["synced", "jobs view"])
async def test_a_big_backlog_waits_for_the_table_unless_a_triage_screen_opens(
    store_path: Path, opened: str
) -> None:
    """While a first sync is still loading, the index is left alone (on one event
    loop it slowed the table's fill by a sixth); the sync ending, or the user
    opening a triage screen, lets it in."""
    from tui_support import make_app, ready, settle

    async with SqliteStore(store_path) as store:
        await store.add_many(steady("seed", 3, first_hours_ago=3))
    bulk = [
        RunRow.from_run(r) for j in range(3) for r in steady(f"bulk-{j}", 1000, first_hours_ago=999)
    ]
    async with SqliteStore(store_path, create=False) as store:
        app = make_app(store, clock=lambda: NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            app.synced.clear()  # as during a first sync that has more pages
            app._feed_triage(bulk, first=True)
            for _ in range(5):  # bounded: without the wait, a few loop turns index it all
                await pilot.pause()
            assert app._triage_backlog and app.triage.summary(("local", "bulk-0"), NOW) is None
            if opened == "synced":
                app.synced.set()
            else:
                await pilot.press("J")
            await settle(app, pilot, "triage")
            assert not app._triage_backlog
            summary = app.triage.summary(("local", "bulk-2"), NOW)
            assert summary is not None and summary.runs_in_window > 0


async def test_the_same_failure_in_two_stores_is_one_group(seeded: Path, tmp_path: Path) -> None:
    """Signatures key on the source's kind, not its name: two stores' failures of
    one shape are one group, with runs from both."""
    other = tmp_path / "other.db"
    async with SqliteStore(other) as store:
        await store.add_many(history())
    got = run_cli(seeded, "failures", "--source", str(seeded), "--source", str(other), "--json")
    assert got.returncode == 0, got.stderr
    groups = json.loads(got.stdout)
    assert [(g["kind"], g["count"]) for g in groups] == [("sqlite", 6), ("sqlite", 2)]


def test_the_trend_compares_the_week_with_the_week_before() -> None:
    """``p50 +100 % vs the week before``, and a late-arriving run of the week before
    (a vendor's late commit) changes the figure: nothing stale is kept."""
    index = TriageIndex(clock=lambda: NOW)
    before = [run(f"run-w1-{i}", "nightly", hours_ago=24 * (8 + i), seconds=60) for i in range(4)]
    this = [run(f"run-w2-{i}", "nightly", hours_ago=24 * (1 + i), seconds=120) for i in range(4)]
    index.apply(RunRow.from_run(r) for r in [*before, *this])
    summary = index.summary(("local", "nightly"), NOW)
    assert summary is not None and summary.trend == "p50 +100 % vs the week before"
    late = [run(f"run-w1-late{i}", "nightly", hours_ago=24 * 9 + i, seconds=100) for i in range(5)]
    index.apply(RunRow.from_run(r) for r in late)
    summary = index.summary(("local", "nightly"), NOW)
    assert summary is not None and summary.trend == "p50 +20 % vs the week before"
    quick = [run(f"run-w2-q{i}", "nightly", hours_ago=2 + i, seconds=104) for i in range(5)]
    index.apply(RunRow.from_run(r) for r in quick)
    summary = index.summary(("local", "nightly"), NOW)
    assert summary is not None and summary.trend is None  # +4 %: steady, no word


def test_a_run_of_the_week_before_read_again_moves_the_trend() -> None:
    """A run of the week before that changes in place (same time, same place in
    the history) still reaches the kept p50 of that week."""
    index = TriageIndex(clock=lambda: NOW)
    before = [run(f"run-w1-{i}", "nightly", hours_ago=24 * (8 + i), seconds=60) for i in range(4)]
    this = [run(f"run-w2-{i}", "nightly", hours_ago=24 * (1 + i), seconds=120) for i in range(4)]
    index.apply(RunRow.from_run(r) for r in [*before, *this])
    summary = index.summary(("local", "nightly"), NOW)
    assert summary is not None and summary.trend == "p50 +100 % vs the week before"
    again = [run(f"run-w1-{i}", "nightly", hours_ago=24 * (8 + i), seconds=200) for i in range(3)]
    index.apply(RunRow.from_run(r) for r in again)
    summary = index.summary(("local", "nightly"), NOW)
    assert summary is not None and summary.trend == "p50 -40 % vs the week before"


async def test_the_triage_fill_does_not_hold_back_a_window_page(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fill's query takes seconds at 1M runs (4.6 s measured); on the store's
    one connection every page the user scrolled to meanwhile waited behind it."""
    import asyncio

    from jobwatch.sources.protocol import WindowView

    async with SqliteStore(store_path) as writer:
        for start in range(0, 20_000, 2_000):
            await writer.add_many(
                [
                    run(f"run-{i:06d}", f"job-{i % 300}", hours_ago=i / 600)
                    for i in range(start, start + 2_000)
                ]
            )
    async with SqliteStore(store_path, create=False) as store:
        expected = await store.triage_rows(per_job=200, since=NOW - WINDOW_S)
        begun = asyncio.Event()
        done: list[str] = []
        for name in ("_fetchall", "_fetchall_aside"):
            original = getattr(store, name, None)
            if original is None:
                continue

            def watched(sql: str, params: Any = (), original: Any = original) -> Any:
                if "ROW_NUMBER" in sql:
                    begun.set()  # the fill's query is with its connection now
                return original(sql, params)

            monkeypatch.setattr(store, name, watched)

        async def filling() -> None:
            got = await store.triage_rows(per_job=200, since=NOW - WINDOW_S)
            assert sorted(r.key for r in got.rows) == sorted(r.key for r in expected.rows)
            done.append("fill")

        async def paging() -> None:
            await begun.wait()
            assert len(await store.window_rows(WindowView(), offset=5_000, limit=100)) == 100
            done.append("page")

        await asyncio.wait_for(asyncio.gather(filling(), paging()), 60)
        assert done == ["page", "fill"]
