"""Benchmark of the embedded SQLite store (``jobwatch.sources.local.SqliteStore``).

What it measures, on a fresh store in a temporary directory:

* the fill itself: generating N realistic runs with the demo's five flavours
  (``Demo.make_run``: configs, progress, errors, reasons) and inserting them with
  ``add_many`` in batches of 10k, then appending M log lines (80-120 characters,
  mixed levels) to one run with ``append_logs`` in batches of 50k;
* a full read of every run as pydantic models with ``changes(None)`` (best and
  median of three), the first screen with ``list_runs(limit=50)`` and, on stores
  that have it, the table-only fast path ``row_changes(None)``;
* write cost of 1,000 separate ``update`` calls (one transaction each) and of the
  same amount of changes written by one ``add_many``;
* the delta read after 1,000 changes, ``changes(cursor)``, and whether it returned
  exactly those 1,000 runs (printed, never asserted);
* the log reads a log screen needs, on a freshly opened store: ``log_tail(run, 50)``,
  ``log_bounds`` and ``log_lines`` from the middle of the log (50 lines);
* store size on disk (main file + ``-wal``) and the peak RSS of the process;
* with ``--bulk N`` (``1000000`` for issue 14), on a second store of N runs made by
  bulk copies (``_fill.bulk_fill``): the windowed reads the monitor's bounded
  window makes (first page, a jump, keyset pages either way, the last page, a
  row's position, filtered pages and counts), ``status_counts`` and
  ``list_runs(limit=50)``;
* with ``--jump`` (and ``--bulk``), instead of those, far jumps in that store (``_jump.py``): to the
  middle, forwards and counted from the end, by start and by status, key first and
  by plain offset; ``--bulk-store FILE`` takes an existing bulk store instead of
  filling one (opened as a writer, so an older one is migrated, and timed).

Every figure is printed as ``name: value unit`` as soon as it is known, then once
more in a summary table. Timings are informative only: nothing is asserted.

Run it from the project root (``jobwatch`` must be importable, e.g. with
``PYTHONPATH=src`` or after ``pip install -e .``)::

    python bench/bench_store.py            # 100k runs, 1M log lines
    python bench/bench_store.py --quick    # 10k runs, 100k log lines (smoke run)
    python bench/bench_store.py --runs 20000 --log-lines 200000 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from _fill import LOG_BATCH, RUN_BATCH, STATUS_MIX, bulk_fill, log_batch, log_spans
from _jump import SORTS as JUMP_SORTS
from _jump import jump_probe

from jobwatch.apps.demo import FLAVOURS, Demo
from jobwatch.core import Run, Status, utcnow
from jobwatch.sources import ChangeSet
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.protocol import ListQuery

T = TypeVar("T")

SCREEN = 50
READ_REPEATS = 3

# What the 1,000 changed runs become (a plausible mix of outcomes).
CHANGED_TO: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED, Status.ABORTED)


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str


class Report:
    """Prints each figure as it comes and a table of all of them at the end."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []

    def add(self, name: str, value: float, unit: str) -> None:
        figure = Figure(name, value, unit)
        self.figures.append(figure)
        print(f"{name}: {_fmt(value)} {unit}", flush=True)

    def note(self, text: str) -> None:
        print(f"  - {text}", flush=True)

    def table(self) -> str:
        width = max(len(f.name) for f in self.figures)
        values = [_fmt(f.value) for f in self.figures]
        vwidth = max(len(v) for v in values)
        lines = [f"{'measure':<{width}}  {'value':>{vwidth}}  unit", "-" * (width + vwidth + 10)]
        for figure, value in zip(self.figures, values, strict=True):
            lines.append(f"{figure.name:<{width}}  {value:>{vwidth}}  {figure.unit}")
        return "\n".join(lines)


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


async def timed(op: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    """Seconds ``op`` took, and what it returned."""
    start = time.perf_counter()
    result = await op()
    return time.perf_counter() - start, result


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def size_mb(path: Path) -> tuple[float, float]:
    """Sizes of the main file and of its write-ahead log, in MB."""
    wal = path.with_name(path.name + "-wal")
    main = path.stat().st_size if path.exists() else 0
    log = wal.stat().st_size if wal.exists() else 0
    return main / 1e6, log / 1e6


# -- filling -----------------------------------------------------------------------


async def fill_runs(store: SqliteStore, count: int, seed: int, report: Report) -> str:
    """Insert ``count`` demo runs; returns the id of the first one (it gets the log)."""
    demo = Demo(store, seed=seed)
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    now = utcnow()
    first_id = ""
    gen_s = insert_s = 0.0
    for start in range(0, count, RUN_BATCH):
        size = min(RUN_BATCH, count - start)
        t0 = time.perf_counter()
        batch: list[Run] = []
        for i in range(start, start + size):
            created = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
            status = rng.choices(statuses, weights)[0]
            batch.append(demo.make_run(FLAVOURS[i % len(FLAVOURS)], status, created))
        gen_s += time.perf_counter() - t0
        first_id = first_id or batch[0].id
        elapsed, _ = await timed(lambda batch=batch: store.add_many(batch))
        insert_s += elapsed
    report.add("fill: generate runs (Demo.make_run)", gen_s, "s")
    report.add(f"fill: insert runs (add_many x{RUN_BATCH:,})", insert_s, "s")
    report.add("fill: insert rate", count / insert_s if insert_s else 0.0, "runs/s")
    return first_id


async def fill_log(store: SqliteStore, run_id: str, count: int, seed: int, report: Report) -> None:
    rng = random.Random(seed + 1)
    start_ts = time.time() - count * 0.01
    gen_s = insert_s = 0.0
    for first, size in log_spans(count):
        t0 = time.perf_counter()
        lines = log_batch(rng, start_ts, first, size)
        gen_s += time.perf_counter() - t0
        elapsed, _ = await timed(lambda lines=lines: store.append_logs(run_id, lines))
        insert_s += elapsed
    report.add("fill: generate log lines", gen_s, "s")
    report.add(f"fill: append log lines (append_logs x{LOG_BATCH:,})", insert_s, "s")
    report.add("fill: append rate", count / insert_s if insert_s else 0.0, "lines/s")


# -- reading -----------------------------------------------------------------------


async def bench_full_read(store: SqliteStore, expected: int, report: Report) -> list[Run]:
    """``changes(None)`` three times; returns the runs of the last read."""
    times: list[float] = []
    runs: list[Run] = []
    for _ in range(READ_REPEATS):
        runs = []  # let the previous read go before the next one
        elapsed, result = await timed(lambda: store.changes(None))
        times.append(elapsed)
        runs, errors = result.runs, result.errors
        del result
        if errors:
            report.note(f"changes(None) reported {len(errors)} unreadable records")
    report.add(f"read all runs changes(None), best of {READ_REPEATS}", min(times), "s")
    report.add(
        f"read all runs changes(None), median of {READ_REPEATS}", statistics.median(times), "s"
    )
    report.add("read all runs: per run (best)", min(times) / max(1, len(runs)) * 1e6, "us")
    ok = "ok" if len(runs) == expected else "MISMATCH"
    report.note(f"changes(None) returned {len(runs):,} runs (expected {expected:,}: {ok})")
    elapsed, (screen, _errors) = await timed(lambda: store.list_runs(ListQuery(limit=SCREEN)))
    report.add(f"first screen list_runs(limit={SCREEN})", elapsed * 1e3, "ms")
    if len(screen) != min(SCREEN, expected):
        report.note(f"list_runs(limit={SCREEN}) returned {len(screen)} runs")
    await bench_row_read(store, expected, report)
    return runs


async def bench_row_read(store: SqliteStore, expected: int, report: Report) -> None:
    """The table-only fast path (``row_changes``), on stores that have one."""
    row_changes = store.row_changes if store.capabilities.rows else None
    if row_changes is None:
        return
    times: list[float] = []
    rows: list[Any] = []
    for _ in range(READ_REPEATS):
        rows = []
        elapsed, delta = await timed(lambda: row_changes(None))
        rows = delta.rows
        times.append(elapsed)
    report.add(f"read all table rows row_changes(None), best of {READ_REPEATS}", min(times), "s")
    ok = "ok" if len(rows) == expected else "MISMATCH"
    report.note(f"row_changes(None) returned {len(rows):,} rows (expected {expected:,}: {ok})")


def changed(run: Run, rng: random.Random, when: datetime) -> Run:
    status = rng.choice([s for s in CHANGED_TO if s is not run.status])
    return run.evolve(status=status, status_raw=status.value, updated_at=when)


async def bench_delta(
    store: SqliteStore, runs: list[Run], count: int, seed: int, report: Report
) -> None:
    rng = random.Random(seed + 2)
    count = min(count, len(runs))
    when = utcnow()

    # Write cost of the common case: one update (one transaction) per change.
    cursor = await store.revision()
    one_by_one = rng.sample(runs, count)
    t0 = time.perf_counter()
    for run in one_by_one:
        new = changed(run, rng, when)
        await store.update(run.id, lambda _old, new=new: new)
    elapsed = time.perf_counter() - t0
    report.add(f"write {count:,} changes, separate update() calls", elapsed, "s")
    report.add("write: per update() call", elapsed / max(1, count) * 1e3, "ms")
    delta = await read_delta(store, cursor, count, f"{count:,} update() calls", report)

    # The measured delta: the same amount of changes in one transaction.
    cursor = await store.revision()
    copies = [changed(run, rng, when) for run in rng.sample(runs, count)]
    elapsed, _ = await timed(lambda: store.add_many(copies))
    report.add(f"write {count:,} changes, one add_many()", elapsed * 1e3, "ms")
    delta = await read_delta(store, cursor, count, f"{count:,} changes (add_many)", report)
    elapsed, idle = await timed(lambda: store.changes(delta.cursor))
    report.add("read delta with nothing changed, changes(cursor)", elapsed * 1e3, "ms")
    if idle.runs:
        report.note(f"an idle poll returned {len(idle.runs)} runs (expected 0)")


async def read_delta(
    store: SqliteStore, cursor: int, expected: int, after: str, report: Report
) -> ChangeSet:
    """``changes(cursor)`` best of three (one sample can carry a full GC pass)."""
    times: list[float] = []
    for _ in range(READ_REPEATS):
        elapsed, delta = await timed(lambda: store.changes(cursor))
        times.append(elapsed)
    report.add(f"read delta after {after}, changes(cursor), best", min(times) * 1e3, "ms")
    report.add(f"read delta after {after}, changes(cursor), worst", max(times) * 1e3, "ms")
    ok = "ok" if len(delta.runs) == expected else "MISMATCH"
    report.note(f"changes(cursor) returned {len(delta.runs):,} runs (expected {expected:,}: {ok})")
    return delta


async def bench_logs(path: Path, run_id: str, lines: int, report: Report) -> None:
    """Log reads on a freshly opened store (no warm SQLite page cache; the OS may
    still hold the file's pages)."""
    store = SqliteStore(path, create=False)
    elapsed, _ = await timed(store.open)
    report.add("open store (fresh connection)", elapsed * 1e3, "ms")
    try:
        elapsed, tail = await timed(lambda: store.log_tail(run_id, SCREEN))
        report.add(f"log_tail({SCREEN}) cold, {lines:,}-line log", elapsed * 1e3, "ms")
        elapsed, tail = await timed(lambda: store.log_tail(run_id, SCREEN))
        report.add(f"log_tail({SCREEN}) warm", elapsed * 1e3, "ms")
        elapsed, bounds = await timed(lambda: store.log_bounds(run_id))
        report.add("log_bounds", elapsed * 1e3, "ms")
        middle = bounds.first + bounds.count // 2
        elapsed, page = await timed(lambda: store.log_lines(run_id, middle, SCREEN))
        report.add(f"log_lines(after={middle:,}, limit={SCREEN})", elapsed * 1e3, "ms")
        ok = "ok" if bounds.count == lines else "MISMATCH"
        report.note(
            f"log bounds {bounds.first:,}..{bounds.last:,} (expected {lines:,}: {ok}); "
            f"tail {len(tail)} lines ending at seq {tail[-1].seq if tail else 0:,}; "
            f"middle page {len(page)} lines from seq {page[0].seq if page else 0:,}"
        )
    finally:
        await store.close()


# -- windowed reads (what the monitor's bounded window asks) ---------------------------


async def _ms(op: Awaitable[T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = await op
    return (time.perf_counter() - began) * 1e3, result


async def bench_window(path: Path, report: Report) -> None:
    """Pages, counts and positions of ``window_rows``/``window_count`` and
    ``list_runs(limit=50)`` on a fresh read-only open of the store at ``path``."""
    from jobwatch.sources.protocol import WindowTerm, WindowView

    async with SqliteStore(path, create=False) as store:
        total = (await store.status_counts()).total
        label = f"[{total:,} runs]"
        elapsed, _ = await _ms(store.list_runs(ListQuery(limit=SCREEN)))
        report.add(
            f"list_runs(limit={SCREEN}), first call (loads the models) {label}", elapsed, "ms"
        )
        elapsed, _ = await _ms(store.list_runs(ListQuery(limit=SCREEN)))
        report.add(f"list_runs(limit={SCREEN}) {label}", elapsed, "ms")
        elapsed, _ = await _ms(store.status_counts())
        report.add(f"status_counts (aggregate) {label}", elapsed, "ms")
        for sort in ("started", "status", "job"):
            view = WindowView(sort=sort)
            elapsed, top = await _ms(store.window_rows(view, limit=3000))
            report.add(f"window sort={sort}: first 3,000 rows {label}", elapsed, "ms")
            elapsed, deep = await _ms(store.window_rows(view, offset=total // 2, limit=1))
            report.add(f"window sort={sort}: jump to the middle (offset) {label}", elapsed, "ms")
            anchor = deep[0] if deep else top[-1]
            elapsed, _ = await _ms(store.window_rows(view, limit=1500, after=anchor))
            report.add(
                f"window sort={sort}: 1,500 rows after a row mid-table {label}", elapsed, "ms"
            )
            elapsed, _ = await _ms(store.window_rows(view, limit=1500, before=anchor))
            report.add(f"window sort={sort}: 1,500 rows before it {label}", elapsed, "ms")
            elapsed, _ = await _ms(store.window_rows(view, limit=3000, from_end=True))
            report.add(f"window sort={sort}: last 3,000 rows {label}", elapsed, "ms")
            elapsed, _ = await _ms(store.window_count(view, before=top[-1]))
            report.add(f"window sort={sort}: position of row 3,000 {label}", elapsed, "ms")
        for text in (("status", "fail"), ("job", "nightly"), (None, "sync")):
            view = WindowView(terms=(WindowTerm(*text),))
            name = f"{text[0]}:{text[1]}" if text[0] else text[1]
            elapsed, _ = await _ms(store.window_rows(view, limit=3000))
            report.add(f"window filter {name!r}: first 3,000 rows {label}", elapsed, "ms")
            elapsed, _ = await _ms(store.window_count(view))
            report.add(f"window filter {name!r}: matching count {label}", elapsed, "ms")


# -- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="runs to store (100000)")
    parser.add_argument(
        "--log-lines", type=int, default=None, help="log lines of the one big log (1000000)"
    )
    parser.add_argument(
        "--changes", type=int, default=1000, help="runs changed before the delta read (1000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10k runs and 100k log lines"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument(
        "--bulk",
        type=int,
        default=0,
        metavar="N",
        help="also time windowed reads on a store of N bulk-copied runs (1000000: issue 14)",
    )
    parser.add_argument(
        "--window-only", action="store_true", help="only the windowed reads (with --bulk)"
    )
    parser.add_argument(
        "--jump", action="store_true", help="far jumps, not the other window reads (with --bulk)"
    )
    parser.add_argument(
        "--jump-sorts",
        default=",".join(JUMP_SORTS),
        help=f"the sorts --jump times ({','.join(JUMP_SORTS)})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--jump: best of N (3)")
    parser.add_argument(
        "--bulk-store",
        type=Path,
        default=None,
        metavar="FILE",
        help="an existing bulk store instead of filling one (it may be migrated)",
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 10_000 if args.quick else 100_000
    if args.log_lines is None:
        args.log_lines = 100_000 if args.quick else 1_000_000
    if args.runs < 1 or args.log_lines < 1 or args.changes < 0:
        parser.error("--runs and --log-lines must be positive, --changes not negative")
    return args


async def bench(args: argparse.Namespace, path: Path) -> Report:
    report = Report()
    print(f"store: {path}")
    print(
        f"runs: {args.runs:,}  log lines: {args.log_lines:,}  changes: {args.changes:,}  "
        f"python {sys.version.split()[0]}\n",
        flush=True,
    )
    if args.bulk or args.bulk_store:
        if args.bulk_store:
            bulk = args.bulk_store
            with sqlite3.connect(bulk) as db:
                found = db.execute("PRAGMA user_version").fetchone()[0]
            t0 = time.perf_counter()
            async with SqliteStore(bulk) as store:  # as a writer: migrated if older
                now = store.schema_version
            elapsed = (time.perf_counter() - t0) * 1e3
            report.add(f"open {bulk.name} as a writer, schema {found} -> {now}", elapsed, "ms")
        else:
            bulk = path.with_name("bulk.db")
            t0 = time.perf_counter()
            await bulk_fill(bulk, args.bulk, args.seed)
            report.note(f"{args.bulk:,} runs bulk-filled in {time.perf_counter() - t0:.1f} s")
        if args.jump:
            async with SqliteStore(bulk, create=False) as store:
                total = (await store.status_counts()).total
                sorts = tuple(args.jump_sorts.split(","))
                await jump_probe(store, total, report.add, repeats=args.repeats, sorts=sorts)
        else:
            await bench_window(bulk, report)
        if args.window_only:
            return report
    async with SqliteStore(path) as store:
        log_run = await fill_runs(store, args.runs, args.seed, report)
        await fill_log(store, log_run, args.log_lines, args.seed, report)
        runs = await bench_full_read(store, args.runs, report)
        await bench_delta(store, runs, args.changes, args.seed, report)
        del runs
        main_mb, wal_mb = size_mb(path)  # while open: the WAL goes away on the last close
        report.add("store size on disk (main + wal)", main_mb + wal_mb, "MB")
        report.note(f"main file {main_mb:.1f} MB, -wal {wal_mb:.1f} MB (store open)")
    await bench_logs(path, log_run, args.log_lines, report)
    report.add("peak RSS", peak_rss_mb(), "MB")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="jobwatch-bench-"))
    try:
        report = asyncio.run(bench(args, folder / "runs.db"))
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
