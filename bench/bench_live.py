"""Benchmark of the live checks (stuck runs, late jobs) the monitor and ``watch``
run once per poll (``jobwatch.triage.live.LiveWatch``).

On a fresh SQLite store of N finished runs over J jobs (default 100k over 500)
plus R running ones, with log activity columns filled and S schedules recorded:

* ``check`` the first time (it reads every running run, learns the quiet history
  of their jobs, reads the schedules and the scheduled jobs' last starts);
* ``check`` afterwards (what every poll pays: the running runs and the last
  starts; history and schedules are cached);
* ``observe`` of a batch of 1,000 changed rows (the poller's sink);
* the monitor's stamping cost is per stuck run and not measured here.

Every figure is printed as ``name: value unit``; nothing is asserted.

    python bench/bench_live.py            # 100k runs, 500 jobs, 200 running
    python bench/bench_live.py --quick    # 10k runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from jobwatch.core.row import RunRow
from jobwatch.core.status import Status
from jobwatch.sources.activity import Schedule
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.poller import Poller
from jobwatch.triage.live import LiveWatch


def fill(path: Path, runs: int, jobs: int, running: int, seed: int) -> None:
    rnd = random.Random(seed)
    now = time.time()
    rows = []
    for i in range(runs + running):
        live = i >= runs
        started = now - rnd.uniform(60, 30 * 86_400) if not live else now - rnd.uniform(60, 3600)
        ended = None if live else started + rnd.uniform(5, 900)
        status = "running" if live else rnd.choice(("succeeded",) * 8 + ("failed",))
        last = (ended or now) - rnd.uniform(0, 300)
        rows.append(
            (
                f"run-{i:012x}",
                i + 1,
                "local",
                f"job-{i % jobs}",
                status,
                started,
                started,
                ended,
                rnd.uniform(0, 60_000),
                max(started, last),
            )
        )
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO runs (id, revision, source, job, status, created_at, started_at, "
            "ended_at, quiet_max_ms, last_output_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany(
            "INSERT INTO run_docs (id, data) VALUES (?, ?)",
            ((r[0], json.dumps({"id": r[0], "source": "local", "status": r[4]})) for r in rows),
        )
        db.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (len(rows),))


def batch(n: int) -> list[RunRow]:
    now = time.time()
    return [
        RunRow(
            "local",
            f"run-{i:012x}",
            f"job-{i % 500}",
            None,
            Status.SUCCEEDED,
            None,
            now,
            now,
            now,
            1.0,
            None,
            None,
            None,
            False,
            False,
            None,
        )
        for i in range(n)
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--running", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.runs = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        async with SqliteStore(path) as store:
            for j in range(args.schedules):
                await store.set_schedule(Schedule("local", f"job-{j}", every_s=3600.0))
        t = time.perf_counter()
        fill(path, args.runs, args.jobs, args.running, 7)
        print(
            f"fill: {time.perf_counter() - t:.1f} s ({args.runs:,} runs, {args.jobs} jobs, "
            f"{args.running} running, {args.schedules} schedules)"
        )
        async with SqliteStore(path, create=False) as store:
            poller = Poller([store])
            await poller.open()
            live = LiveWatch(stuck_after=900.0)
            t = time.perf_counter()
            report = await live.check(poller.feeds)
            print(
                f"check, first: {(time.perf_counter() - t) * 1000:.1f} ms "
                f"({len(report.stuck)} stuck, {len(report.late)} late)"
            )
            times = []
            for _ in range(20):
                t = time.perf_counter()
                await live.check(poller.feeds)
                times.append((time.perf_counter() - t) * 1000)
            print(f"check, later (median of 20): {statistics.median(times):.2f} ms")
            rows = batch(1000)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                live.observe(rows)
                times.append((time.perf_counter() - t) * 1000)
            print(f"observe 1,000 rows (median of 20): {statistics.median(times):.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
