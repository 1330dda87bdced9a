"""Stuck runs, late jobs and hooks against real parts: `jobwatch run` child
processes writing a real store, the real CLI, hooks that are real subprocesses."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from conftest import jobwatch_env, run_cli, running_run, spawn_cli, wait_for
from jobwatch.core import Run, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.poller import Poller
from jobwatch.triage.live import LiveReport, LiveWatch

T = TypeVar("T")
PY = sys.executable
SECRET = "hunter2-" + "Zq9xV7mW3kP5"


async def until(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0) -> T:
    """Ask ``probe`` until it answers something truthy; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def recorder(out: Path) -> str:
    """A hook command (TOML array) that appends its stdin to ``out``."""
    code = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())"
    return json.dumps([PY, "-c", code])


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# -- stuck ---------------------------------------------------------------------------------


async def test_a_run_that_stops_logging_is_stuck_and_watch_says_so_once(
    store_path: Path, tmp_path: Path
) -> None:
    quiet = "print('started', flush=True); import time; time.sleep(120)"
    proc = spawn_cli(store_path, "run", "--job", "quiet", "--", PY, "-c", quiet)
    try:
        run = running_run(store_path)
        async with SqliteStore(store_path, mode="read") as store:
            poller = Poller([store])
            live = LiveWatch(stuck_after=1.0)

            async def stuck() -> LiveReport | None:
                await poller.poll_once()
                report = await live.check(poller.feeds)
                return report if report.stuck else None

            report = await until(stuck)
            found = report.stuck[("local", run["id"])]
            assert found.threshold == 1.0 and len(report.new_stuck) == 1
            (act,) = await store.activity()
            assert act.last_output_at is not None and act.last_output_at >= act.started_at
            assert found.quiet_since == act.last_output_at  # its line, not its start
            again = await live.check(poller.feeds)
            assert again.stuck and not again.new_stuck  # announced once
        config = write_config(tmp_path / "c.toml", "stuck_after = 1\n")
        watched = run_cli(store_path, "--config", str(config), "watch", "--json", "--for", "0")
        assert watched.returncode == 0, watched.stderr
        events = [json.loads(line) for line in watched.stdout.splitlines()]
        assert [e["event"] for e in events] == ["stuck"]
        assert events[0]["run"]["id"] == run["id"] and events[0]["stuck"]["quiet_s"] >= 1
    finally:
        stop(proc)


async def test_a_run_that_keeps_logging_is_never_stuck(store_path: Path) -> None:
    chatty = "import time\nfor i in range(30):\n    print(i, flush=True); time.sleep(0.1)"
    proc = spawn_cli(store_path, "run", "--job", "chatty", "--", PY, "-c", chatty)
    try:
        running_run(store_path)
        async with SqliteStore(store_path, mode="read") as store:
            poller = Poller([store])
            live = LiveWatch(stuck_after=2.5)
            checks = 0
            for _ in range(2_000):
                await poller.poll_once()
                report = await live.check(poller.feeds)
                assert not report.stuck, report
                checks += 1
                if not await store.activity():
                    break
                await asyncio.sleep(0.1)
            assert checks > 5
    finally:
        stop(proc)


async def test_the_longest_quiet_gap_is_kept_per_run_and_sets_the_jobs_threshold(
    store_path: Path,
) -> None:
    pause = "import time; print(1, flush=True); time.sleep(0.7); print(2, flush=True)"
    for _ in range(5):
        done = run_cli(store_path, "run", "--job", "pausing", "--", PY, "-c", pause)
        assert done.returncode == 0, done.stderr
    with sqlite3.connect(store_path) as db:
        gaps = [r[0] for r in db.execute("SELECT quiet_max_ms FROM runs")]
    assert len(gaps) == 5 and all(600 <= g <= 10_000 for g in gaps), gaps
    async with SqliteStore(store_path) as store:
        history = await store.quiet_gaps(["pausing", "unknown"], 20)
        assert list(history) == ["pausing"] and len(history["pausing"]) == 5
        # a running run of that job, quiet for 70 s: past 3 x its gaps (floor 60 s) though
        # well under the 15 min default, which still holds for a job without history
        now = time.time()
        for run_id, job in (("run-quiet1", "pausing"), ("run-quiet2", "fresh")):
            await store.add(
                Run(id=run_id, source="local", job=job, status=Status.RUNNING, started_at=now - 70)
            )
        live = LiveWatch(stuck_after=900.0)
        poller = Poller([store])
        await poller.poll_once()
        report = await live.check(poller.feeds)
    assert set(report.stuck) == {("local", "run-quiet1")}
    assert report.stuck[("local", "run-quiet1")].threshold == 60.0


# -- late ----------------------------------------------------------------------------------


def test_a_job_that_misses_its_slot_is_late_for_watch_and_schedules(
    store_path: Path, tmp_path: Path
) -> None:
    for job, every, grace in (("hourly", "1h", "0"), ("fast", "1", "0"), ("graced", "1", "1h")):
        done = run_cli(
            store_path, "run", "--every", every, "--late-grace", grace, "--job", job, "--", "true"
        )
        assert done.returncode == 0, done.stderr

    def late() -> subprocess.CompletedProcess[str] | None:
        checked = run_cli(store_path, "watch", "--late", "--json")
        return checked if checked.returncode == 1 else None

    checked = wait_for(late)
    assert [x["job"] for x in json.loads(checked.stdout)["late"]] == ["fast"]
    listed = run_cli(store_path, "schedules", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["job"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"hourly", "fast", "graced"}
    assert rows["hourly"]["every_s"] == 3600 and rows["hourly"]["late_by_s"] is None
    assert rows["fast"]["late_by_s"] > 0 and rows["graced"]["grace_s"] == 3600
    assert rows["hourly"]["expected_next"] == rows["hourly"]["last_started"] + 3600
    # the jobs view says so too (its LATE word comes from the same schedules)
    jobs = run_cli(store_path, "jobs", "--json")
    assert jobs.returncode == 0, jobs.stderr
    late_words = {j["job"]: j["late"] for j in json.loads(jobs.stdout)}
    assert late_words["fast"] is not None and late_words["fast"].startswith("late ")
    assert late_words["hourly"] is None and late_words["graced"] is None
    # a run of the late job starts: no longer late
    done = run_cli(store_path, "run", "--every", "1h", "--job", "fast", "--", "true")
    assert done.returncode == 0, done.stderr
    assert run_cli(store_path, "watch", "--late").returncode == 0
    # a config schedule for a job the store never saw, not yet due
    config = write_config(tmp_path / "c.toml", '[[schedules]]\njob = "weekly"\nevery = "7d"\n')
    text = run_cli(store_path, "--config", str(config), "schedules").stdout
    assert "weekly" in text and "every 7d" in text


def test_watch_fires_the_late_hook_with_the_job_as_json(store_path: Path, tmp_path: Path) -> None:
    done = run_cli(store_path, "run", "--every", "1", "--job", "backup", "--", "true")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: run_cli(store_path, "watch", "--late").returncode == 1)
    out = tmp_path / "hook.jsonl"
    config = write_config(tmp_path / "c.toml", f"[hooks]\non_late = {recorder(out)}\n")
    watched = run_cli(store_path, "--config", str(config), "watch", "--for", "0")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.startswith("late  backup (local)")
    (payload,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert payload["event"] == "late" and payload["job"]["job"] == "backup"
    assert payload["job"]["late_by_s"] > 0


# -- hooks ---------------------------------------------------------------------------------


def test_watch_fires_on_failure_with_the_run_redacted(store_path: Path, tmp_path: Path) -> None:
    assert run_cli(store_path, "run", "--job", "first", "--", "true").returncode == 0
    out = tmp_path / "hook.jsonl"
    config = write_config(tmp_path / "c.toml", f"[hooks]\non_failure = {recorder(out)}\n")
    watcher = subprocess.Popen(
        [
            PY,
            "-m",
            "jobwatch",
            "--config",
            str(config),
            "watch",
            "--interval",
            "0.1",
            "--for",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=jobwatch_env(store_path),
    )
    try:
        assert watcher.stderr is not None
        assert watcher.stderr.readline().startswith("jobwatch: watching 1 source")
        failing = f"import sys; print('login failed: password={SECRET}', file=sys.stderr); exit(3)"
        done = run_cli(store_path, "run", "--job", "deploy", "--", PY, "-c", failing)
        assert done.returncode == 3
        text = wait_for(lambda: out.is_file() and out.read_text())
        (payload,) = [json.loads(line) for line in text.splitlines()]
        assert payload["event"] == "failure" and payload["run"]["job"] == "deploy"
        assert payload["run"]["status"] == "failed" and payload["run"]["exit_code"] == 3
        assert SECRET not in text and "password=" in payload["run"]["error"]["message"]
    finally:
        stop(watcher)
    assert watcher.stdout is not None
    shown = watcher.stdout.read()
    assert "failed" in shown and "deploy" in shown and SECRET not in shown
