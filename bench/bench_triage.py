"""Benchmark of the triage index (``jobwatch.triage``): the jobs view and the
failure groups over a big store, and a poll that keeps both up to date.

On a fresh SQLite store (and, with ``--pg``, a PostgreSQL database from
tests/pg_support.py) of N runs over J jobs (default 100k over 500: a tenth
failing with a handful of message shapes and ids/numbers inside, a few running):

* the fill: the store's ``triage_rows`` (one query for each job's newest 200
  finished runs, the active ones and the day's failures; one for the failure
  shapes seen before) and applying it to a fresh index;
* opening the jobs view: ``index.jobs(now)`` on that index, first call (every
  summary computed) and again (cached);
* opening the failure groups: ``index.failures(since, now)``;
* a poll with 1,000 changed runs: the store's delta read ``row_changes(cursor)``
  and, apart, the index's part: ``apply`` plus recomputing the jobs and groups
  the batch touched (every one of them), then what an open jobs screen does: the
  touched rows in its viewport and a screen either side now (the rest when
  scrolled to), the headline from the index's tally;
* feeding every row to the index instead (``apply`` of the full ``row_changes``),
  as for a source without its own fill.

Figures are printed, never asserted (the targets: opening each view <= 100 ms
from a started index, the poll's triage part with both views <= 30 ms).

    python bench/bench_triage.py                # 100k runs over 500 jobs, SQLite
    python bench/bench_triage.py --pg           # the same on PostgreSQL as well
    python bench/bench_triage.py --runs 10000   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobwatch.core import Run, RunError, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.poller import Poller
from jobwatch.sources.protocol import Source
from jobwatch.triage.feed import fill
from jobwatch.triage.index import WINDOW_S, TriageIndex

BATCH = 10_000
CHANGED = 1000
REPEATS = 5
SHOWN = 60
"""Rows an open jobs screen recomputes at once at 80x24 (see its ``_shown``)."""
MESSAGES = (
    "connection to db-{n}.internal:5432 refused after {n} tries",
    "worker {n} lost lease {hex} on /srv/queue/{n}.lock",
    "HTTP 503 from https://api.example.com/v1/items/{n}?page={n}",
    "key '{word}' missing in config {uuid}",
    "timed out after {n}s waiting for job_{id}",
    "disk quota exceeded on /data/{word}/{n}",
)


def say(name: str, value: float, unit: str) -> None:
    print(f"{name}: {value:,.1f} {unit}", flush=True)


def message(rng: random.Random, job: int) -> str:
    shape = MESSAGES[job % len(MESSAGES)] if rng.random() < 0.9 else rng.choice(MESSAGES)
    return shape.format(
        n=rng.randint(1, 99999),
        hex=f"{rng.getrandbits(48):012x}",
        word=rng.choice(("alpha", "beta", "gamma")),
        uuid=f"123e4567-e89b-12d3-a456-{rng.getrandbits(48):012x}",
        id=f"{rng.getrandbits(40):010x}Z",
    )


def make_runs(count: int, jobs: int, now: float, seed: int = 15) -> list[Run]:
    """``count`` runs over ``jobs`` jobs spread over two weeks, newest last."""
    rng = random.Random(seed)
    span = 14 * 86_400.0
    runs = []
    for i in range(count):
        job = i % jobs
        start = now - span + span * i / count
        usual = 30 + (job % 50) * 10
        seconds = usual * rng.uniform(0.8, 1.3) * (4 if rng.random() < 0.01 else 1)
        roll = rng.random()
        status = Status.SUCCEEDED
        error = None
        if i >= count - jobs // 10:
            status = Status.RUNNING
        elif roll < 0.1:
            status = Status.FAILED
            error = RunError(code=f"exit-{1 + job % 3}", message=message(rng, job))
        ended = None if status is Status.RUNNING else start + seconds
        runs.append(
            Run(
                id=f"run-{i:07d}",
                source="local",
                job=f"job-{job:03d}",
                status=status,
                status_raw=status.value,
                created_at=datetime.fromtimestamp(start, UTC),
                started_at=datetime.fromtimestamp(start, UTC),
                ended_at=datetime.fromtimestamp(ended, UTC) if ended else None,
                error=error,
            )
        )
    return runs


def changed(runs: list[Run], now: float, seed: int = 99) -> list[Run]:
    """1,000 of the newest runs finish or fail again (what one busy poll brings)."""
    rng = random.Random(seed)
    picked = rng.sample(runs[-20_000:], CHANGED)
    out = []
    for run in picked:
        status = Status.FAILED if rng.random() < 0.3 else Status.SUCCEEDED
        error = (
            RunError(code="exit-1", message=message(rng, 1)) if status is Status.FAILED else None
        )
        started = run.started_at or datetime.fromtimestamp(now - 60, UTC)
        out.append(
            run.evolve(
                status=status,
                status_raw=status.value,
                ended_at=datetime.fromtimestamp(now, UTC) if started.timestamp() < now else None,
                error=error,
            )
        )
    return out


async def best_ms(op: Callable[[], Awaitable[Any]], repeats: int = REPEATS) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await op()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def spread(times: list[float]) -> str:
    return f"ms (best of {len(times)}; median {statistics.median(times):,.1f})"


async def bench(source: Source, runs: list[Run], now: float, name: str) -> None:
    add_many = source.add_many  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for at in range(0, len(runs), BATCH):
        await add_many(runs[at : at + BATCH])
    say(f"{name}: runs written", len(runs), f"runs in {time.perf_counter() - t0:,.1f} s")
    since = now - WINDOW_S
    feed = Poller([source], mode="rows").feeds[0]

    index = TriageIndex(clock=lambda: now)

    async def do_fill() -> None:
        nonlocal index
        index = TriageIndex(clock=lambda: now)
        await fill(index, feed, since)

    times = await best_ms(do_fill, 3)
    say(f"{name}: fill (store query + apply)", min(times), spread(times))
    got = await source.triage_rows(per_job=index.history, since=since)
    assert got is not None
    say(f"{name}: fill rows / older shapes", len(got.rows), f"rows / {len(got.before):,} shapes")

    t0 = time.perf_counter()
    jobs = index.jobs(now)
    say(f"{name}: open jobs view (first, every summary)", (time.perf_counter() - t0) * 1000, "ms")
    t0 = time.perf_counter()
    index.jobs(now)
    say(f"{name}: open jobs view again (cached)", (time.perf_counter() - t0) * 1000, "ms")
    t0 = time.perf_counter()
    groups = index.failures(since, now)
    say(f"{name}: open failure groups", (time.perf_counter() - t0) * 1000, "ms")
    say(
        f"{name}: jobs / groups / new groups",
        len(jobs),
        f"/ {len(groups)} / {sum(g.new for g in groups)}",
    )

    cursor = await source.head_cursor()
    await add_many(changed(runs, now))
    gc.collect()
    gc.freeze()  # as the monitor does once its first load (and the fill) is in
    t0 = time.perf_counter()
    delta = await source.row_changes(cursor)
    say(
        f"{name}: poll: store delta read",
        (time.perf_counter() - t0) * 1000,
        f"ms ({len(delta.rows):,} rows)",
    )
    t0 = time.perf_counter()
    touched = index.apply(delta.rows)
    for key in touched.jobs:
        index.summary(key, now)
    for group in touched.groups:
        index.group(group, since)
    took = (time.perf_counter() - t0) * 1000
    say(
        f"{name}: poll: index apply + every touched job and group",
        took,
        f"ms ({len(touched.jobs)} jobs, {len(touched.groups)} groups)",
    )
    # What an open jobs screen does (tui/screens/triage.py): the touched rows in its
    # viewport and a screen either side (3 x 20 rows at 80x24) now, the rest when
    # scrolled to; the headline from the index's tally. Same changes again.
    cursor = await source.head_cursor()
    await add_many(changed(runs, now, seed=100))
    delta = await source.row_changes(cursor)
    shown = {tuple(s.key) for s in index.jobs(now)[:SHOWN]}
    t0 = time.perf_counter()
    touched = index.apply(delta.rows)
    redone = [index.summary(k, now) for k in touched.jobs if k in shown]
    index.tally()
    for group in touched.groups:
        index.group(group, since)
    took = (time.perf_counter() - t0) * 1000
    say(
        f"{name}: poll: index apply + touched jobs on screen, groups, tally",
        took,
        f"ms ({len(redone)} of {len(touched.jobs)} touched jobs on screen; target <= 30 ms: "
        f"{'PASS' if took <= 30 else 'MISS'})",
    )

    full = (await source.row_changes(None)).rows
    fresh = TriageIndex(clock=lambda: now)
    t0 = time.perf_counter()
    fresh.apply(full)
    say(
        f"{name}: feed every row instead (apply)",
        (time.perf_counter() - t0) * 1000,
        f"ms ({len(full):,} rows)",
    )
    slow = [r for r in full[-5000:] if fresh.slowness(r, now)]
    say(f"{name}: slow among the newest 5,000", len(slow), "runs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL too")
    args = parser.parse_args()
    now = time.time()
    t0 = time.perf_counter()
    runs = make_runs(args.runs, args.jobs, now)
    say("runs made", len(runs), f"runs in {time.perf_counter() - t0:,.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteStore(Path(folder) / "runs.db") as store:
            await bench(store, runs, now, "sqlite")
    if args.pg:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from jobwatch.sources.postgres.store import PostgresStore
        from pg_support import PgServer

        server = PgServer()
        try:
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.make_template)
            async with PostgresStore(server.new_database()) as pg:
                await bench(pg, runs, now, "postgres")
        finally:
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
