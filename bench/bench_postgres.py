"""Benchmark of the shared PostgreSQL store, on a real server it starts itself
(tests/pg_support.py: initdb in a temporary folder, a Unix socket, no port).

What it measures, each figure printed as ``name: value unit`` as it comes:

* **writers**: ``--writers`` real ``jobwatch run`` processes (each its own host
  id), each wrapping a command that prints ``--rate`` lines a second for
  ``--seconds``; afterwards every line is counted in the database: lines
  expected, stored, lost (the target is 0), and the rate really reached;
* **abort latency**: ``--aborts`` times, a real ``jobwatch run`` on its own host
  id, an abort asked from another, and the time until the run is ``aborted``
  (the wrapper LISTENs on its host's commands channel; its poll is the fallback);
* **push latency**: a writer process changes a run's status ``--changes`` times
  (its label carries the time of the write); a poller in this process, LISTENing
  with its fallback timer at an hour, records when each change reaches its sink:
  p50 / p99 / max (target p99 <= 250 ms);
* **1M runs**: ``--runs`` runs loaded with COPY, then the first page (newest 300
  rows, what the monitor paints first), ``list_runs(limit=50)``, an idle poll,
  and a poll after 1,000 runs changed (target <= 30 ms);
* **the monitor itself** on ``--store DSN`` over those runs (``_tui_probe.py
  paint`` in a child process): first paint and peak RSS (targets 0.6 s, 250 MB);
* **the monitor's window** over those runs (``tui/table_model/window.py``, the
  headless part): its first read and the whole window, pages of the ``started``
  and ``status`` sorts (a jump, after/before a row mid-table, the end, a
  position), which index PostgreSQL reads a keyset page by (``EXPLAIN``), a poll
  with 1,000 changed runs merged into the window, and the process's RSS before
  and after holding it, with its peak.
* with ``--jump``, instead of the two above, far jumps over those runs
  (``_jump.py``: to the middle, forwards and counted from the end, by start and
  by status, key first and by plain offset), as loaded and again after
  ``VACUUM`` (an index-only scan reads the table for pages not yet marked
  all-visible, which autovacuum does in time).

* **lost runs, shown**: ``--active`` managed runs of one host (over
  ``--lost-runs`` finished ones), read by a ``--read-only`` store, which judges
  them at every poll: an idle poll while the host beats, the first poll after it
  fell silent (every run sent once, shown lost), an idle poll and the status
  counts while all are shown lost, and the poll after the host is back.

Timings are informative: nothing is asserted. From the project root::

    python bench/bench_postgres.py                 # 20 writers x 2,000 lines/s x 60 s
    python bench/bench_postgres.py --seconds 10 --runs 100000
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _paint
import psycopg
from _jump import SORTS as JUMP_SORTS
from _jump import jump_probe

from jobwatch.core import Run, RunRow, Status, utcnow
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import HOST_ENV, PostgresStore
from jobwatch.sources.protocol import ListQuery, WindowView
from jobwatch.tui.table_model.window import WindowController, WindowedRunSet
from pg_support import PgServer

EMITTER = """
import sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
total = int(rate * seconds)
tick = 0.01
per_tick = max(1, rate // 100)
start = time.monotonic()
out = sys.stdout
i = 0
while i < total:
    n = min(per_tick, total - i)
    out.write("".join(f"line {i + k} of a steady writer, padded to a plausible width\\n"
                      for k in range(n)))
    out.flush()
    i += n
    wait = start + (i / rate) - time.monotonic()
    if wait > 0:
        time.sleep(wait)
"""

CHANGER = """
import asyncio, sys, time
from jobwatch.core import Run, Status, utcnow
from jobwatch.sources.postgres.store import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1])
    await store.open()
    count, gap = int(sys.argv[2]), float(sys.argv[3])
    run = Run(id="run-latency", source="local", job="latency", status=Status.RUNNING,
              created_at=utcnow())
    for i in range(count):
        status = Status.RUNNING if i % 2 else Status.QUEUED
        await store.add(run.evolve(status=status, label=repr(time.time())))
        await asyncio.sleep(gap)
    await store.close()

asyncio.run(main())
"""


def say(name: str, value: float, unit: str) -> None:
    shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
    print(f"{name}: {shown} {unit}")
    sys.stdout.flush()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- writers -----------------------------------------------------------------------


def bench_writers(server: PgServer, writers: int, rate: int, seconds: float) -> None:
    dsn = server.new_database()
    started = time.monotonic()
    procs = []
    for n in range(writers):
        env = dict(os.environ, JOBWATCH_STORE=dsn, **{HOST_ENV: f"bench-host-{n}"})
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobwatch",
                    "run",
                    "--job",
                    f"writer-{n}",
                    "--",
                    sys.executable,
                    "-c",
                    EMITTER,
                    str(rate),
                    str(seconds),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    codes = []
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=seconds * 20 + 300)
        codes.append(proc.returncode)
        if err.strip():
            errors.append(err.strip().splitlines()[0])
    wall = time.monotonic() - started
    expected = writers * int(rate * seconds)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.job, count(l.seq), COALESCE(max(l.seq), 0) FROM runs r "
            "LEFT JOIN logs l ON l.run_id = r.id GROUP BY r.job"
        ).fetchall()
        statuses = conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
    stored = sum(int(r[1]) for r in rows)
    gaps = sum(1 for r in rows if int(r[1]) != int(r[2]))
    say("writers", writers, "processes")
    say("lines expected", expected, "lines")
    say("lines stored", stored, "lines")
    say("lines lost", expected - stored, "lines")
    say("runs with a gap in seq", gaps, "runs")
    say("wrapper exit codes non-zero", sum(1 for c in codes if c != 0), "wrappers")
    print(f"run states: {json.dumps(dict(statuses))}")
    say("writers wall time", wall, "s")
    say("lines stored per second (whole run)", stored / wall, "lines/s")
    if errors:
        print("wrapper messages:", *sorted(set(errors))[:5], sep="\n  ")


# -- abort latency -----------------------------------------------------------------

SLEEPER = "import time\nfor _ in range(6000):\n    time.sleep(0.01)\n"


async def bench_abort(server: PgServer, aborts: int) -> None:
    """An abort asked from another host until the wrapper (a real ``jobwatch run``
    of a command that would run a minute) has stopped its command and written
    the run ``aborted``: the wrapper LISTENs for its host's commands (before: it
    polled the commands table every 0.5 s). Seen by polling the run every 5 ms."""
    dsn = server.new_database()
    took: list[float] = []
    async with PostgresStore(dsn, mode="write") as monitor:
        monitor.host = "bench-monitor"
        for n in range(aborts):
            env = dict(os.environ, JOBWATCH_STORE=dsn, **{HOST_ENV: f"bench-abort-{n}"})
            wrap = ["run", "--job", f"abort-{n}", "--grace", "5", "--"]
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobwatch", *wrap, sys.executable, "-c", SLEEPER],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                run_id = None
                for _ in range(3000):  # bounded: 30 s for the wrapper to start
                    rows = await monitor._fetch(
                        "SELECT id FROM runs WHERE job = %s AND status = 'running' "
                        "AND heartbeat_at IS NOT NULL",
                        (f"abort-{n}",),
                    )
                    if rows:
                        run_id = str(rows[0][0])
                        break
                    await asyncio.sleep(0.01)
                if run_id is None:
                    print(f"abort bench: wrapper {n} never started")
                    continue
                await asyncio.sleep(0.3 + (n % 5) * 0.1)  # not in step with any poll
                t0 = time.perf_counter()
                await monitor.abort(run_id, "bench")
                for _ in range(6000):  # bounded: 30 s
                    row = await monitor._fetch("SELECT status FROM runs WHERE id = %s", (run_id,))
                    if row and row[0][0] == "aborted":
                        took.append((time.perf_counter() - t0) * 1000)
                        break
                    await asyncio.sleep(0.005)
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
    if took:
        say(
            f"abort asked -> run aborted by its wrapper ({len(took)} aborts)",
            statistics.median(took),
            f"ms median, p90 {pct(took, 0.9):.0f} ms, max {max(took):.0f} ms",
        )


# -- push latency ------------------------------------------------------------------


async def bench_latency(server: PgServer, changes: int, gap: float) -> None:
    dsn = server.new_database()
    latencies: list[float] = []
    seen_labels: set[str] = set()

    def take(_feed: Any, rows: list[RunRow], _first: bool) -> None:
        now = time.time()
        for row in rows:
            if row.id == "run-latency" and row.label and row.label not in seen_labels:
                seen_labels.add(row.label)
                latencies.append((now - float(row.label)) * 1000)

    source = PostgresStore(dsn, mode="write")
    source.pace = 3600.0
    poller = Poller([source], on_rows=take, refresh=3600.0)
    await poller.open(strict=True)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop=stop))
    await asyncio.wait_for(source._listener.connected.wait(), 30)
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHANGER, dsn, str(changes), str(gap)
    )
    await asyncio.wait_for(writer.wait(), changes * gap * 10 + 120)
    for _ in range(100):
        if len(latencies) >= changes:
            break
        await asyncio.sleep(0.05)
    stop.set()
    poller.wake()
    await asyncio.wait_for(task, 30)
    await poller.close()
    say("status changes written", changes, "changes")
    say("changes shown (by a notification; timer at 1 h)", len(latencies), "changes")
    say("woken by push", poller.pushes, "times")
    if latencies:
        say("push latency p50", statistics.median(latencies), "ms")
        say("push latency p99", pct(latencies, 0.99), "ms")
        say("push latency max", max(latencies), "ms")


# -- a big store -------------------------------------------------------------------


def load_runs(dsn: str, count: int) -> None:
    template = Run(
        id="run-x", source="local", job="job", status=Status.SUCCEEDED, created_at=utcnow()
    ).model_dump_json()
    base = time.time() - count
    statuses = ("succeeded", "failed", "succeeded", "aborted", "succeeded")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT setval('jobwatch_revision', %s)", (count,))
        with cur.copy(
            "COPY runs (id, revision, source, job, status, archived, created_at, started_at, "
            "ended_at, partial, data) FROM STDIN"
        ) as copy:
            buf = io.StringIO()
            for i in range(count):
                status = statuses[i % 5]
                data = template.replace('"run-x"', f'"run-{i:08d}"').replace(
                    '"succeeded"', f'"{status}"'
                )
                created = base + i
                buf.write(
                    f"run-{i:08d}\t{i + 1}\tlocal\tjob-{i % 40}\t{status}\tf\t{created}\t"
                    f"{created}\t{created + 5}\tf\t{data}\n"
                )
                if i % 50_000 == 49_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        conn.commit()
        cur.execute("ANALYZE runs")
        conn.commit()


async def timed(label: str, op: Any, repeats: int = 5) -> Any:
    best = float("inf")
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = await op()
        best = min(best, (time.perf_counter() - t0) * 1000)
    say(label, best, f"ms (best of {repeats})")
    return result


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def ms(op: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await op
    return (time.perf_counter() - t0) * 1000, result


async def bench_window_pages(store: PostgresStore, total: int) -> None:
    say("status_counts (trigger-kept table)", (await ms(store.status_counts()))[0], "ms")
    for sort in ("started", "status"):
        view = WindowView(sort=sort)
        elapsed, top = await ms(store.window_rows(view, limit=3000))
        say(f"window sort={sort}: first 3,000 rows", elapsed, "ms")
        elapsed, deep = await ms(store.window_rows(view, offset=total // 2, limit=1))
        say(f"window sort={sort}: jump to the middle (offset)", elapsed, "ms")
        anchor = deep[0] if deep else top[-1]
        elapsed, _ = await ms(store.window_rows(view, limit=1500, after=anchor))
        say(f"window sort={sort}: 1,500 rows after a row mid-table", elapsed, "ms")
        elapsed, _ = await ms(store.window_rows(view, limit=1500, before=anchor))
        say(f"window sort={sort}: 1,500 rows before it", elapsed, "ms")
        elapsed, _ = await ms(store.window_rows(view, limit=3000, from_end=True))
        say(f"window sort={sort}: last 3,000 rows", elapsed, "ms")
        elapsed, _ = await ms(store.window_count(view, before=anchor))
        say(f"window sort={sort}: position of a row mid-table", elapsed, "ms")
        print(f"window sort={sort}: keyset page plan: {await keyset_plan(store, view, anchor)}")


async def keyset_plan(store: PostgresStore, view: WindowView, anchor: RunRow) -> str:
    """The scans of the SQL the store really sends for a page after ``anchor``."""
    sent: list[tuple[str, dict[str, Any]]] = []
    real = store._rows_where

    async def record(clause: str, params: dict[str, Any]) -> Any:
        sent.append((clause, params))
        return await real(clause, params)

    store._rows_where = record  # type: ignore[method-assign]
    try:
        await store.window_rows(view, limit=1500, after=anchor)
    finally:
        store._rows_where = real  # type: ignore[method-assign]
    clause, params = sent[0]
    plan = await store._fetch(f"EXPLAIN SELECT id FROM runs {clause}", params)
    return "; ".join(r[0].strip().lstrip("-> ") for r in plan if "Scan" in r[0])


TARGET_PAINT_S = 0.6
TARGET_RSS_MB = 250.0


def monitor_probe(dsn: str, repeats: int) -> None:
    """The monitor itself on ``--store DSN`` (``bench/_tui_probe.py paint`` in a
    fresh child process, as ``bench_tui.py`` measures SQLite): first paint, the
    window loaded, peak RSS; median of ``repeats``, against the issue's targets."""
    paints: list[float] = []
    synced: list[float] = []
    peaks: list[float] = []
    src = str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.TemporaryDirectory(prefix="jobwatch-probe-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWATCH_", "PG"))}
        env["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            runs = _paint.paints(dsn, env, Path(tmp) / "pycache", repeats)
        except RuntimeError as exc:
            print(exc)
            return
    for events in runs:
        paints.append(events["first_paint"]["t"])
        synced.append(events["synced"]["t"])
        peaks.append(events["rss"]["peak_mb"])
    paint = statistics.median(paints)
    peak = max(peaks)
    verdict = "PASS" if paint <= TARGET_PAINT_S else "MISS"
    each = ", ".join(f"{p:.3f}" for p in paints)
    say(
        f"monitor --store postgresql: first paint, probe clock (median of {repeats})",
        paint,
        f"s (target <= {TARGET_PAINT_S} s: {verdict}; each {each})",
    )
    say("monitor --store postgresql: window loaded (app.synced)", statistics.median(synced), "s")
    verdict = "PASS" if peak <= TARGET_RSS_MB else "MISS"
    say(
        "monitor --store postgresql: peak RSS",
        peak,
        f"MB (target <= {TARGET_RSS_MB:.0f} MB: {verdict})",
    )


async def bench_jump(dsn: str, runs: int, sorts: tuple[str, ...], repeats: int) -> None:
    """Far jumps over the loaded runs, then again after a VACUUM of the table."""
    async with PostgresStore(dsn, mode="write") as store:
        kw: dict[str, Any] = {"sorts": sorts, "repeats": repeats}
        await jump_probe(store, runs, say, label=" (as loaded)", **kw)
        t0 = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE runs")
        say("VACUUM ANALYZE runs", (time.perf_counter() - t0) * 1000, "ms")
        await jump_probe(store, runs, say, label=" (vacuumed)", **kw)


async def bench_big(
    server: PgServer, runs: int, probes: int = 3, jump: tuple[str, ...] = (), repeats: int = 3
) -> None:
    dsn = server.new_database()
    t0 = time.perf_counter()
    await asyncio.to_thread(load_runs, dsn, runs)
    say("runs loaded (COPY)", runs, f"runs in {time.perf_counter() - t0:.1f} s")
    if jump:
        await bench_jump(dsn, runs, jump, repeats)
        return
    if probes:
        await asyncio.to_thread(monitor_probe, dsn, probes)
    async with PostgresStore(dsn, mode="write") as store:
        await timed("first page (newest 300 rows)", lambda: store.first_rows(300))
        await timed("list_runs(limit=50)", lambda: store.list_runs(ListQuery(limit=50)))
        cursor = await store.revision()
        await timed("idle poll (row_changes at the head)", lambda: store.row_changes(cursor))
        await bench_window_pages(store, runs)
        before = rss_mb()
        window_runs = WindowedRunSet()
        window = WindowController(store, window_runs)
        elapsed, _ = await ms(window.settle())
        say("window: first read (one screen, counts, height)", elapsed, "ms")
        window_runs.want(0)
        elapsed, _ = await ms(window.settle())
        say("window: the rest of the window", elapsed, f"ms ({window_runs.held():,} rows held)")
        say("window: RSS before / after holding it", before, f"MB / {rss_mb():,.1f} MB")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE runs SET status = 'failed', revision = nextval('jobwatch_revision') "
                "WHERE id IN (SELECT id FROM runs ORDER BY random() LIMIT 1000)"
            )
        best = float("inf")
        got = 0
        for _ in range(5):
            t1 = time.perf_counter()
            delta = await store.row_changes(cursor)
            best = min(best, (time.perf_counter() - t1) * 1000)
            got = len(delta.rows)
        say("poll with 1,000 changed runs (row_changes)", best, f"ms (best of 5; {got} rows)")
        t1 = time.perf_counter()
        delta = await store.row_changes(cursor)
        window_runs.apply(delta.rows)
        await window.settle()
        say(
            "poll with 1,000 changed runs, merged into the window",
            (time.perf_counter() - t1) * 1000,
            f"ms ({window_runs.held():,} rows held of {len(window_runs):,})",
        )
        say("peak RSS of this process", peak_rss_mb(), "MB")


async def median_ms(op: Any, repeats: int = 30) -> float:
    values = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await op()
        values.append((time.perf_counter() - t0) * 1000)
    return statistics.median(values)


async def bench_lost(server: PgServer, finished: int, active: int) -> None:
    dsn = server.new_database()
    await asyncio.to_thread(load_runs, dsn, finished)
    writer = PostgresStore(dsn, mode="write")
    writer.host = "host-gone"
    await writer.open()
    try:
        when = utcnow()
        runs = [
            Run(id=f"act-{i:06d}", source="local", job="j", status=Status.RUNNING, created_at=when)
            for i in range(active)
        ]
        await writer.add_many(runs, managed_by=os.getpid())
        async with PostgresStore(dsn, mode="read") as reader:
            cursor = (await reader.row_changes(None)).cursor
            label = f"{active:,} active runs of one host over {finished:,}"
            idle = await median_ms(lambda: reader.row_changes(cursor))
            say(f"lost shown: idle poll, host beating ({label})", idle, "ms (median of 30)")
            async with writer._conn() as conn:
                await conn.execute("UPDATE hosts SET heartbeat_at = heartbeat_at - 3600")
            elapsed, delta = await ms(reader.row_changes(cursor))
            lost = sum(r.status is Status.UNKNOWN for r in delta.rows)
            say("lost shown: first poll after the host fell silent", elapsed, f"ms ({lost:,} lost)")
            idle = await median_ms(lambda: reader.row_changes(cursor))
            say("lost shown: idle poll, all shown lost", idle, "ms (median of 30)")
            counts = await median_ms(reader.status_counts)
            say("lost shown: status counts, all shown lost", counts, "ms (median of 30)")
            await writer.heartbeat()
            elapsed, delta = await ms(reader.row_changes(cursor))
            back = sum(r.status is Status.RUNNING for r in delta.rows)
            say("lost shown: first poll after the host beat again", elapsed, f"ms ({back:,} back)")
    finally:
        await writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--rate", type=int, default=2000, help="lines a second per writer")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--changes", type=int, default=400)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between changes")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--aborts", type=int, default=10)
    parser.add_argument("--active", type=int, default=1000, help="managed runs of the lost host")
    parser.add_argument("--lost-runs", type=int, default=100_000, help="finished runs beside them")
    parser.add_argument(
        "--only", choices=("writers", "latency", "abort", "big", "lost"), default=None
    )
    parser.add_argument("--probes", type=int, default=3, help="monitor probes over 1M runs")
    parser.add_argument(
        "--jump", action="store_true", help="far jumps over the 1M runs, not the other reads"
    )
    parser.add_argument("--jump-sorts", default=",".join(JUMP_SORTS), help="the sorts --jump times")
    parser.add_argument("--repeats", type=int, default=3, help="--jump: best of N (3)")
    args = parser.parse_args()
    server = PgServer()
    try:
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(server.make_template)
        print(f"server: {server.bin} (cores: {os.cpu_count()})")
        if args.only in (None, "writers"):
            await asyncio.to_thread(bench_writers, server, args.writers, args.rate, args.seconds)
        if args.only in (None, "latency"):
            await bench_latency(server, args.changes, args.gap)
        if args.only in (None, "abort"):
            await bench_abort(server, args.aborts)
        if args.only in (None, "big"):
            sorts = tuple(args.jump_sorts.split(",")) if args.jump else ()
            await bench_big(server, args.runs, args.probes, sorts, args.repeats)
        if args.only in (None, "lost"):
            await bench_lost(server, args.lost_runs, args.active)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
