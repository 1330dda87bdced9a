"""Benchmark of the monitor (``jobwatch.tui``): start-up, polls, idle cost, memory, logs.

The stores are built once, in one temporary directory, from realistic demo runs
(``Demo.make_run`` over the five flavours; about 5 % running, 3 % queued, 1 %
paused, the rest finished, 5 % of those archived; the live runs are the newest):
one of 10k and one of 100k runs (``--quick``: 1k and 10k). The big store also
holds one running run with a 1M-line log (``--quick``: 100k lines of 80-120
characters, mixed levels). Then, for each store size:

1. **first paint**: a fresh Python process (``bench/_tui_probe.py paint``, so the
   imports are counted) starts the monitor as ``jobwatch --store STORE`` does,
   through ``jobwatch.cli.main`` with no config file, headless at 160x48, and
   reports the first time ``RunsTable.render_line`` returns a data row. Two
   clocks: the probe's own, from a ``perf_counter`` taken as the probe's first
   statement, and the parent's wall clock from just before ``Popen`` until the
   report line arrives (this one includes interpreter start-up). The same
   process reports when the full table is loaded (``app.synced``). Median of
   three processes.
2. **poll with 1,000 changed runs**, in this process with ``run_test(size=(160,
   48))``: after the sync, a second connection writes evolved copies of 1,000
   random shown runs with one ``add_many`` (status flips, progress steps, queued
   runs starting, running runs ending), then ``await app.poll_once()`` is timed
   with ``perf_counter`` next to the app's own ``app.poll_ms``; nine rounds, new
   runs each time, best and median. Then the same after pressing ``s`` (sorted by
   status), where the changed rows move. For information, the process CPU time
   (all threads) of the poll alone, which tells a poll that worked from one that
   waited, and of the poll plus what it set off until the app is idle again
   (repaint, toast, the selected run's detail and log).
3. **idle CPU**: a probe process (``idle``) runs the app with its real poll loop at
   ``refresh=1.0``; after the sync and a 2 s warm-up it measures
   ``time.process_time()`` (all threads) over a 10 s window (``--quick``: 5 s)
   closed by ``app.set_timer``, with nothing changing: CPU in % of one core, and
   per poll.
4. **RSS**: the peak RSS (``VmHWM``; a child's ``ru_maxrss`` starts at its
   parent's RSS) of the ``paint`` probe after the sync and the next paint.
5. **1M-line log**: a probe (``log``) starts the app on the big store, waits for the
   sync, opens a fresh store connection and calls ``LogView.show_run(source, run)``;
   measured until ``LogView.render_line`` has drawn the log's last line from data
   (not the "…" placeholder). Median of three processes.
6. **stock DataTable**: a probe (``datatable``) loads the same rows (the big store's
   shown runs, read with ``row_changes``, newest first) as text cells of the same
   columns into ``textual.widgets.DataTable`` in a minimal headless app; first
   paint is measured the same way (patched ``DataTable.render_line``), once, and
   compared with the jobwatch figure for the same store.

Probes run with a bytecode cache in the temporary directory
(``PYTHONPYCACHEPREFIX``, even if the shell sets ``PYTHONDONTWRITEBYTECODE``), as
an installed app has one; an unreported warm-up process fills it and the OS page
cache first. ``--profile DIR`` runs each measured stretch under ``cProfile`` and
prints the top of each profile (the figures are then inflated).

Every figure is printed as ``name: value unit`` when known, and again in a summary
table with its target and PASS/MISS. Timings are never asserted; every wait has a
bound (probes are killed after a timeout) and only local files are used.

Run it from the project root with ``jobwatch`` importable::

    PYTHONPATH=src python bench/bench_tui.py            # 10k + 100k runs, 1M lines
    PYTHONPATH=src python bench/bench_tui.py --quick    # 1k + 10k runs, 100k lines
    PYTHONPATH=src python bench/bench_tui.py --only paint,idle --keep
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import math
import os
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _fill import RUN_BATCH, STATUS_MIX, bulk_fill, log_batch, log_spans

import jobwatch
from jobwatch.apps.demo import FLAVOURS, Demo
from jobwatch.core import Run, RunRow, Status, utcnow
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp

PROBE = Path(__file__).resolve().with_name("_tui_probe.py")
SRC = Path(jobwatch.__file__).resolve().parents[1]
EMPTY_CONFIG = tempfile.TemporaryDirectory(prefix="jobwatch-bench-config-")
"""The probes' config dir: empty, so they run on the defaults, as a fresh install."""
SIZE = (160, 48)
MEASURES = ("paint", "poll", "idle", "log", "datatable")

TARGET_PAINT_S = 0.6
TARGET_POLL_MS = 30.0
TARGET_IDLE_PCT = 2.0
TARGET_RSS_MB = 200.0
TARGET_RSS_1M_MB = 250.0
"""The monitor's peak RSS with a million runs in the store (issue 14)."""
TARGET_LOG_MS = 300.0

ARCHIVED_SHARE = 0.05
FLIPS: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED, Status.ABORTED)


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: tuple[int, ...]
    log_lines: int
    idle_s: float
    changes: int = 1000
    poll_rounds: int = 9
    repeats: int = 3
    warmup_s: float = 2.0
    profile: Path | None = None
    """With ``--profile DIR``: cProfile stats of each measured stretch go there."""
    pycache: Path | None = None
    """``PYTHONPYCACHEPREFIX`` of the probes (in the temporary directory)."""


# -- reporting -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str
    target: float | None = None
    """Upper bound: the figure passes when ``value <= target``."""
    failed: str | None = None

    @property
    def verdict(self) -> str:
        if self.failed:
            return self.failed
        if self.target is None:
            return ""
        return "PASS" if self.value <= self.target else "MISS"


@dataclass
class Report:
    """Prints each figure as it comes and a table of all of them at the end."""

    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, target: float | None = None) -> Figure:
        figure = Figure(name, value, unit, target)
        self.figures.append(figure)
        print(f"{name}: {fmt(value)} {unit}", flush=True)
        return figure

    def fail(self, name: str, unit: str, target: float | None, why: str, verdict: str) -> None:
        self.figures.append(Figure(name, math.nan, unit, target, failed=verdict))
        print(f"{name}: n/a {unit} ({why})", flush=True)

    def note(self, text: str) -> None:
        print(f"  - {text}", flush=True)

    def table(self) -> str:
        rows = [
            (
                f.name,
                "n/a" if math.isnan(f.value) else fmt(f.value),
                f.unit,
                "" if f.target is None else f"<= {fmt(f.target)}",
                f.verdict,
            )
            for f in self.figures
        ]
        head = ("measure", "value", "unit", "target", "result")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
        right = (False, True, False, False, False)

        def line(cells: Sequence[str]) -> str:
            parts = [
                c.rjust(w) if r else c.ljust(w)
                for c, w, r in zip(cells, widths, right, strict=True)
            ]
            return "  ".join(parts).rstrip()

        out = [line(head), "-" * (sum(widths) + 8)]
        out += [line(r) for r in rows]
        misses = sum(f.verdict == "MISS" for f in self.figures)
        passes = sum(f.verdict == "PASS" for f in self.figures)
        out.append("-" * (sum(widths) + 8))
        out.append(f"{passes} PASS, {misses} MISS of {passes + misses} figures with a target")
        return "\n".join(out)


def fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def k(count: int) -> str:
    """``100k``, ``1M``: sizes in figure names."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return f"{count:,}"


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# -- building the stores ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreInfo:
    path: Path
    runs: int
    log_run: str | None


async def fill_store(path: Path, count: int, log_lines: int, seed: int) -> StoreInfo:
    """``count`` demo runs; with ``log_lines``, one running run gets a log that long."""
    rng = random.Random(seed)
    now = utcnow()
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    log_run: str | None = None
    t0 = time.perf_counter()
    async with SqliteStore(path) as store:
        demo = Demo(store, seed=seed)
        for start in range(0, count, RUN_BATCH):
            batch: list[Run] = []
            for i in range(start, min(count, start + RUN_BATCH)):
                status = rng.choices(statuses, weights)[0]
                if status.is_active:  # live runs are the newest ones
                    created = now - timedelta(seconds=rng.uniform(30, 3 * 3600))
                else:
                    created = now - timedelta(seconds=rng.uniform(3 * 3600, 30 * 86400))
                run = demo.make_run(FLAVOURS[i % len(FLAVOURS)], status, created)
                if not run.status.is_active and rng.random() < ARCHIVED_SHARE:
                    run = run.evolve(archived=True)
                if log_run is None and log_lines and run.status is Status.RUNNING:
                    log_run = run.id
                batch.append(run)
            await store.add_many(batch)
        built = time.perf_counter() - t0
        if log_run is not None:
            t1 = time.perf_counter()
            await fill_log(store, log_run, log_lines, rng)
            print(f"  - {path.name}: {log_lines:,} log lines in {time.perf_counter() - t1:.1f} s")
    print(f"  - {path.name}: {count:,} runs built and stored in {built:.1f} s", flush=True)
    return StoreInfo(path, count, log_run)


async def fill_log(store: SqliteStore, run_id: str, count: int, rng: random.Random) -> None:
    start_ts = time.time() - count * 0.01
    for first, size in log_spans(count):
        await store.append_logs(run_id, log_batch(rng, start_ts, first, size))


def visible_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT id FROM runs WHERE archived = 0")]


def read_runs(path: Path, ids: Sequence[str]) -> list[Run]:
    """Full records of ``ids`` (read-only, straight from the documents)."""
    marks = ", ".join("?" for _ in ids)
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT data FROM run_docs WHERE id IN ({marks})", tuple(ids))
        return [Run.model_validate_json(r[0]) for r in rows]


def evolved(run: Run, rng: random.Random, when: datetime) -> Run:
    """What a poll typically brings: progress steps, starts, ends and flips."""
    if run.status.is_active:
        p = run.progress
        if run.status is Status.RUNNING and p is not None and p.total and rng.random() < 0.7:
            failed = p.failed or 0
            done = min(p.total - failed, (p.succeeded or 0) + rng.randint(1, max(1, p.total // 10)))
            progress = {"total": p.total, "succeeded": done, "failed": failed}
            return run.evolve(progress={**progress, "pending": p.total - done - failed})
        if run.status is not Status.RUNNING:
            return run.evolve(status=Status.RUNNING, status_raw="running", started_at=when)
        status = rng.choice((Status.SUCCEEDED, Status.FAILED))
        return run.evolve(status=status, status_raw=status.value, ended_at=when, updated_at=when)
    status = rng.choice([s for s in FLIPS if s is not run.status])
    return run.evolve(status=status, status_raw=status.value, updated_at=when)


# -- probes (child processes) ----------------------------------------------------------


@dataclass
class Probe:
    """What one child process reported: its events and when each line arrived."""

    events: dict[str, dict[str, Any]]
    arrived: dict[str, float]
    """Parent's seconds from just before ``Popen`` to reading the event's line."""
    spawned: float
    returncode: int | None
    timed_out: bool
    stderr: str

    @property
    def error(self) -> str | None:
        if self.timed_out and "exit" not in self.events:
            return "timed out"
        if "error" in self.events:
            return str(self.events["error"].get("message"))
        if self.returncode:
            tail = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit status {self.returncode}: {tail[0]}"
        return None


def probe_env(pycache: Path | None) -> dict[str, str]:
    """The probes' environment: ``jobwatch`` importable, no Textual devtools, no
    config file or ``JOBWATCH_*`` settings, and bytecode cached under ``pycache``
    (outside the source tree), as an installed app has it, even when this shell
    sets ``PYTHONDONTWRITEBYTECODE``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    for name in ("TEXTUAL", "TEXTUAL_DEVTOOLS_HOST", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("JOBWATCH_")]:
        env.pop(name)  # the user's own settings must not change what is measured
    env["XDG_CONFIG_HOME"] = EMPTY_CONFIG.name  # no config file: the defaults
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def warm_up(plan: Plan, store: Path, report: Report) -> None:
    """Fill the bytecode cache (the DataTable's modules too) and the OS page cache."""
    env = probe_env(plan.pycache)
    code = "import jobwatch.tui.app, textual.widgets._data_table"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode:
        report.note(f"warm-up import failed: {done.stderr.strip().splitlines()[-1:]}")
    warm = run_probe("paint", store, pycache=plan.pycache, timeout=300)
    if warm.error:
        warn_probe(report, "warm-up paint", warm)


def run_probe(mode: str, store: Path, *extra: str, pycache: Path | None, timeout: float) -> Probe:
    env = probe_env(pycache)
    events: dict[str, dict[str, Any]] = {}
    arrived: dict[str, float] = {}
    killed = threading.Event()
    with tempfile.TemporaryFile() as err:
        spawned = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(PROBE), mode, str(store), *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                now = time.perf_counter()
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and "event" in record:
                    events[record["event"]] = record
                    arrived[record["event"]] = now - spawned
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return Probe(events, arrived, spawned, returncode, killed.is_set(), stderr)


def profiled(
    plan: Plan, report: Report, mode: str, store: Path, name: str, *extra: str, timeout: float = 300
) -> None:
    """With ``--profile``: one extra run of the probe under cProfile (not reported)."""
    if plan.profile is None:
        return
    path = plan.profile / f"{name}.prof"
    extra = (*extra, f"--profile={path}")
    probe = run_probe(mode, store, *extra, pycache=plan.pycache, timeout=timeout)
    if probe.error:
        warn_probe(report, f"profiled {mode}", probe)


def warn_probe(report: Report, mode: str, probe: Probe) -> None:
    report.note(f"{mode} probe failed: {probe.error}")
    for line in probe.stderr.strip().splitlines()[-6:]:
        report.note(f"    {line}")


# -- 1 and 4: first paint, sync, RSS -----------------------------------------------------


def bench_paint(store: StoreInfo, plan: Plan, report: Report) -> float | None:
    """Returns the median first paint on the probe's clock (for the DataTable ratio)."""
    label = f"{k(store.runs)} runs"
    probes: list[Probe] = []
    profiled(plan, report, "paint", store.path, f"paint-{k(store.runs)}")
    for _ in range(plan.repeats):
        probe = run_probe("paint", store.path, pycache=plan.pycache, timeout=300)
        if probe.error:
            warn_probe(report, "paint", probe)
            continue
        probes.append(probe)
        ev = probe.events
        paint = ev["first_paint"]
        startup = paint["abs"] - probe.spawned - paint["t"]
        report.note(
            f"paint probe: interpreter start {startup:.3f} s, imports, CLI and app "
            f"{ev['app_built']['t']:.3f} s, first paint {paint['t']:.3f} s "
            f"({paint['rows']:,} rows known), synced {ev['synced']['t']:.3f} s, "
            f"parent saw first paint at {probe.arrived['first_paint']:.3f} s"
        )
    name = f"first paint, probe clock [{label}]"
    if not probes:
        report.fail(name, "s", TARGET_PAINT_S, "every probe failed", "ERROR")
        return None
    n = len(probes)
    paint = statistics.median(p.events["first_paint"]["t"] for p in probes)
    report.add(f"{name} (median of {n})", paint, "s", TARGET_PAINT_S)
    wall = statistics.median(p.arrived["first_paint"] for p in probes)
    report.add(f"first paint, parent wall Popen->report [{label}]", wall, "s", TARGET_PAINT_S)
    synced = statistics.median(p.events["synced"]["t"] for p in probes)
    report.add(f"full table synced (app.synced), probe clock [{label}]", synced, "s")
    peak = max(p.events["rss"]["peak_mb"] for p in probes)
    target = TARGET_RSS_MB if store.runs <= 100_000 else TARGET_RSS_1M_MB
    report.add(f"peak RSS after sync [{label}]", peak, "MB", target)
    held = probes[-1].events["rss"].get("held")
    if held is not None:
        report.add(f"rows held by the monitor [{label}]", held, "rows")
    current = probes[-1].events["rss"].get("current_mb")
    if current is not None:
        report.note(f"current RSS at that point {current:.0f} MB")
    return paint


# -- 2: polls with 1,000 changes (in process) --------------------------------------------


@dataclass
class PollRounds:
    """Per-round figures of one sort order."""

    own_ms: list[float] = field(default_factory=list)
    app_ms: list[float] = field(default_factory=list)
    apply_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    poll_cpu_ms: list[float] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)


@dataclass
class Poller:
    """Writes changes behind the app's back and times the poll that picks them up."""

    app: JobwatchApp
    pilot: Any
    writer: SqliteStore
    path: Path
    ids: list[str]
    changes: int
    rng: random.Random

    async def rounds(self, count: int, profile: Path | None = None) -> PollRounds:
        """``count`` times: write ``changes`` evolved runs, then time one poll."""
        got = PollRounds()
        poller = self.app.poller
        sink = poller.on_rows
        assert sink is not None

        def counted(feed: Any, rows: list[RunRow], first: bool) -> None:
            got.fetched.append(len(rows))
            sink(feed, rows, first)

        poller.on_rows = counted
        profiler = cProfile.Profile() if profile else None
        try:
            for _ in range(count):
                runs = read_runs(self.path, self.rng.sample(self.ids, self.changes))
                when = utcnow()
                await self.writer.add_many([evolved(r, self.rng, when) for r in runs])
                cpu0, t0 = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                await self.app.poll_once()
                if profiler:
                    profiler.disable()
                t1, cpu1 = time.perf_counter(), time.process_time()
                await settle(self.app, self.pilot)  # repaint, toast, the selection's detail
                got.cpu_ms.append((time.process_time() - cpu0) * 1e3)
                got.own_ms.append((t1 - t0) * 1e3)
                got.poll_cpu_ms.append((cpu1 - cpu0) * 1e3)
                got.app_ms.append(self.app.poll_ms)
                got.apply_ms.append(self.app.apply_ms)
        finally:
            poller.on_rows = sink
        if profiler and profile:
            profiler.dump_stats(profile)
        return got


async def bench_polls(store: StoreInfo, plan: Plan, seed: int, report: Report) -> None:
    label = f"{k(store.runs)} runs"
    ids = visible_ids(store.path)
    changes = min(plan.changes, len(ids))
    async with (
        SqliteStore(store.path, create=False) as writer,
        SqliteStore(store.path, create=False) as source,
    ):
        app = JobwatchApp([source], refresh=3600.0)  # the benchmark drives the polls
        await app.preload()  # as the CLI does: a big store is held as a window
        if app.window is not None:
            report.note(f"[{label}] the monitor holds a window of the store's rows")
        async with app.run_test(size=SIZE) as pilot:
            await asyncio.wait_for(app.synced.wait(), 300)
            await settle(app, pilot)
            poller = Poller(app, pilot, writer, store.path, ids, changes, random.Random(seed + 7))
            for sort in ("started", "status"):
                for _ in range(10):  # ``s`` cycles through the sort orders
                    if app.runs.sort == sort:
                        break
                    await pilot.press("s")
                    await pilot.pause()
                if app.runs.sort != sort:
                    report.note(f"could not sort by {sort}; skipped")
                    continue
                got = await poller.rounds(plan.poll_rounds)
                what = f"poll {changes:,} changes, sort={sort} [{label}]"
                report.add(f"{what}: poll_once best", min(got.own_ms), "ms")
                median = statistics.median(got.own_ms)
                report.add(f"{what}: poll_once median", median, "ms", TARGET_POLL_MS)
                report.add(f"{what}: app.poll_ms median", statistics.median(got.app_ms), "ms")
                report.add(
                    f"{what}: CPU of poll_once (all threads), median",
                    statistics.median(got.poll_cpu_ms),
                    "ms",
                )
                report.add(
                    f"{what}: of which merging into the table (app.apply_ms) median",
                    statistics.median(got.apply_ms),
                    "ms",
                )
                cpu = statistics.median(got.cpu_ms)
                report.add(f"{what}: CPU until idle (incl. pilot), median", cpu, "ms")
                rounds = ", ".join(f"{v:.1f}" for v in got.own_ms)
                report.note(f"rows fetched per poll: {got.fetched}; poll_once ms: {rounds}")
                if plan.profile:  # extra rounds, not reported
                    profile = plan.profile / f"poll-{sort}-{k(store.runs)}.prof"
                    await poller.rounds(plan.poll_rounds, profile)


async def settle(app: JobwatchApp, pilot: Any) -> None:
    """Wait for the selection's detail/log worker (never the endless poll loop)."""
    await pilot.pause()
    for _ in range(3):
        groups = ("detail", "window")  # the window's resync after a poll, too
        workers = [w for w in app.workers if w.group in groups and not w.is_finished]
        if workers:
            await asyncio.wait_for(app.workers.wait_for_complete(workers), 60)
        await pilot.pause()


# -- 3: idle CPU -------------------------------------------------------------------------


def bench_idle(store: StoreInfo, plan: Plan, report: Report) -> None:
    label = f"{k(store.runs)} runs"
    name = f"idle CPU, refresh=1 s, {plan.idle_s:g} s window [{label}]"
    window = (
        "--refresh=1.0",
        f"--window={plan.idle_s}",
        f"--warmup={plan.warmup_s}",
    )
    timeout = plan.idle_s + plan.warmup_s + 300
    profiled(plan, report, "idle", store.path, f"idle-{k(store.runs)}", *window, timeout=timeout)
    probe = run_probe("idle", store.path, *window, pycache=plan.pycache, timeout=timeout)
    if probe.error:
        warn_probe(report, "idle", probe)
        report.fail(name, "% core", TARGET_IDLE_PCT, probe.error, "ERROR")
        return
    idle = probe.events["idle"]
    pct = idle["cpu_s"] / idle["wall_s"] * 100
    report.add(name, pct, "% core", TARGET_IDLE_PCT)
    polls = max(1, idle["polls"])
    report.add(f"idle CPU per poll [{label}]", idle["cpu_s"] / polls * 1e3, "ms")
    poll_ms = idle["poll_ms"]
    report.note(
        f"{idle['polls']} polls in {idle['wall_s']:.2f} s, app.poll_ms median "
        f"{statistics.median(poll_ms) if poll_ms else math.nan:.2f}, "
        f"{idle['table_lines']} table data lines drawn, {idle['threads']} threads"
    )


# -- 5: the 1M-line log ------------------------------------------------------------------


def bench_log(store: StoreInfo, plan: Plan, report: Report) -> None:
    lines = k(plan.log_lines)
    name = f"{lines}-line log: show_run -> last line drawn"
    if store.log_run is None:
        report.fail(name, "ms", TARGET_LOG_MS, "no log run", "ERROR")
        return
    results: list[dict[str, Any]] = []
    run = f"--run={store.log_run}"
    profiled(plan, report, "log", store.path, f"log-{lines}", run)
    for _ in range(plan.repeats):
        probe = run_probe("log", store.path, run, pycache=plan.pycache, timeout=300)
        if probe.error:
            warn_probe(report, "log", probe)
            continue
        ev = probe.events["log"]
        results.append(ev)
        report.note(
            f"log probe: open {ev['open_ms']:.1f} ms, show_run {ev['show_run_ms']:.1f} ms, "
            f"last line drawn {ev['last_line_ms']:.1f} ms; {ev['lines']:,} lines, "
            f"at end {ev['at_end']}, following {ev['following']}"
        )
    if not results:
        report.fail(name, "ms", TARGET_LOG_MS, "every probe failed", "ERROR")
        return
    n = len(results)
    median = statistics.median(r["last_line_ms"] for r in results)
    report.add(f"{name} (median of {n})", median, "ms", TARGET_LOG_MS)
    shown = statistics.median(r["show_run_ms"] for r in results)
    report.add(f"{lines}-line log: await show_run (median of {n})", shown, "ms")


# -- 6: the stock DataTable --------------------------------------------------------------


def bench_datatable(store: StoreInfo, plan: Plan, ours: float | None, report: Report) -> None:
    label = f"{k(store.runs)} runs"
    profiled(plan, report, "datatable", store.path, f"datatable-{k(store.runs)}")
    probe = run_probe("datatable", store.path, pycache=plan.pycache, timeout=300)
    name = f"stock DataTable first paint, probe clock [{label}]"
    if probe.error or "first_paint" not in probe.events:
        warn_probe(report, "datatable", probe)
        verdict = "TIMEOUT" if probe.timed_out else "ERROR"
        report.fail(name, "s", None, probe.error or "no paint", verdict)
        return
    ev = probe.events
    report.note(
        f"datatable probe: imports {ev['imported']['t']:.3f} s, rows read "
        f"{ev['loaded']['t']:.3f} s, add_rows done {ev['added']['t']:.3f} s, "
        f"first paint {ev['first_paint']['t']:.3f} s, peak RSS {ev['rss']['peak_mb']:.0f} MB"
    )
    paint = ev["first_paint"]["t"]
    report.add(name, paint, "s")
    report.add(
        f"stock DataTable first paint, parent wall [{label}]", probe.arrived["first_paint"], "s"
    )
    report.add(f"stock DataTable peak RSS [{label}]", ev["rss"]["peak_mb"], "MB")
    if ours:
        report.add(f"first paint ratio DataTable/jobwatch [{label}]", paint / ours, "x")


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k runs, 100k log lines, 5 s idle"
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASURES),
        help=f"comma-separated subset of {','.join(MEASURES)} (all)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument(
        "--big",
        type=int,
        default=0,
        metavar="N",
        help="also a store of N runs made by bulk copies (bench/_fill.py bulk_fill; "
        "1000000 for the targets at 1M), measured for paint and poll",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="write cProfile stats of every measured stretch to DIR and print their tops "
        "(inflates the timings: for finding causes, not for figures)",
    )
    args = parser.parse_args(argv)
    args.only = {m.strip() for m in args.only.split(",") if m.strip()}
    unknown = args.only - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    return args


async def build(folder: Path, plan: Plan, seed: int) -> list[StoreInfo]:
    stores = []
    for i, size in enumerate(plan.sizes):
        big = i == len(plan.sizes) - 1
        path = folder / f"runs-{k(size)}.db"
        stores.append(await fill_store(path, size, plan.log_lines if big else 0, seed + i))
    return stores


def bench(args: argparse.Namespace, folder: Path) -> Report:
    profile: Path | None = args.profile.resolve() if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    pycache = folder / "pycache"
    if args.quick:
        plan = Plan((1_000, 10_000), 100_000, 5.0, profile=profile, pycache=pycache)
    else:
        plan = Plan((10_000, 100_000), 1_000_000, 10.0, profile=profile, pycache=pycache)
    report = Report()
    print(f"stores in {folder}")
    print(
        f"runs: {', '.join(f'{s:,}' for s in plan.sizes)}  log lines: {plan.log_lines:,}  "
        f"python {sys.version.split()[0]}  cores: {os.cpu_count()}  terminal {SIZE[0]}x{SIZE[1]}"
        f"  measures: {','.join(m for m in MEASURES if m in args.only)}\n",
        flush=True,
    )
    started = time.perf_counter()
    stores = asyncio.run(build(folder, plan, args.seed))
    print(f"  - stores built in {time.perf_counter() - started:.1f} s\n", flush=True)
    big: list[StoreInfo] = []
    if args.big:
        path = folder / f"runs-{k(args.big)}-bulk.db"
        t0 = time.perf_counter()
        asyncio.run(bulk_fill(path, args.big, args.seed + 9))
        print(f"  - {path.name}: {args.big:,} runs bulk-filled in {time.perf_counter() - t0:.1f} s")
        big.append(StoreInfo(path, args.big, None))
    warm_up(plan, stores[0].path, report)
    ours: float | None = None
    if "paint" in args.only:
        for store in stores:
            ours = bench_paint(store, plan, report)
        for store in big:
            bench_paint(store, plan, report)
    if "poll" in args.only:
        for store in [*stores, *big]:
            asyncio.run(bench_polls(store, plan, args.seed, report))
    if "idle" in args.only:
        for store in stores:
            bench_idle(store, plan, report)
    if "log" in args.only:
        bench_log(stores[-1], plan, report)
    if "datatable" in args.only:
        bench_datatable(stores[-1], plan, ours, report)
    report.add("peak RSS of the benchmark process itself", peak_rss_mb(), "MB")
    report.note(f"total benchmark time {time.perf_counter() - started:.0f} s")
    if profile:
        print_profiles(profile)
    return report


def print_profiles(folder: Path, top: int = 12) -> None:
    """The top of every profile written (own time), with where to look further."""
    for path in sorted(folder.glob("*.prof")):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(top)
        body = out.getvalue().strip().splitlines()
        start = next((i for i, line in enumerate(body) if "ncalls" in line), 0)
        print(f"\nprofile {path} (python -m pstats {path.name} for more)")
        print("\n".join(body[start:]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="jobwatch-bench-tui-"))
    try:
        report = bench(args, folder)
    finally:
        if args.keep:
            print(f"\nkept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print("\nsummary\n")
    print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
