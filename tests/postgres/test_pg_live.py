"""Stuck runs and late jobs over the shared store: a real `jobwatch run` writing
PostgreSQL, the activity kept in its own table (log lines never notify)."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from conftest import run_cli, spawn_cli, wait_for
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.triage.live import LiveWatch

PY = sys.executable


async def test_a_quiet_run_is_stuck_and_a_missed_slot_late_over_a_dsn(pg_dsn: str) -> None:
    pause = "import time; print(1, flush=True); time.sleep(0.7); print(2, flush=True)"
    done = run_cli(pg_dsn, "run", "--every", "1", "--job", "pausing", "--", PY, "-c", pause)  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    quiet = "print('started', flush=True); import time; time.sleep(120)"
    proc = spawn_cli(pg_dsn, "run", "--job", "quiet", "--", PY, "-c", quiet)  # type: ignore[arg-type]
    try:
        async with PostgresStore(pg_dsn) as store:
            gaps = await store.quiet_gaps(["pausing"], 20)
            assert len(gaps["pausing"]) == 1 and 0.6 <= gaps["pausing"][0] <= 10
            (sched,) = await store.schedules()
            assert (sched.job, sched.every_s, sched.since is not None) == ("pausing", 1.0, True)
            poller = Poller([store])
            live = LiveWatch(stuck_after=1.0)
            deadline = time.monotonic() + 30
            report = None
            while time.monotonic() < deadline:
                await poller.poll_once()
                report = await live.check(poller.feeds)
                if report.stuck and report.late:
                    break
                await asyncio.sleep(0.1)
            assert report is not None and report.stuck and report.late
            (stuck,) = report.stuck.values()
            (act,) = await store.activity()
            assert stuck.id == act.id and act.last_output_at is not None
            assert [x.job for x in report.late] == ["pausing"]
        checked = wait_for(lambda: run_cli(pg_dsn, "watch", "--late", "--json"))  # type: ignore[arg-type]
        assert checked.returncode == 1
        assert [x["job"] for x in json.loads(checked.stdout)["late"]] == ["pausing"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
