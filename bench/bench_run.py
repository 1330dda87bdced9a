"""Benchmark of the ``jobwatch run -- CMD`` wrapper.

What it measures, each time on a fresh store in a temporary directory:

* ``jobwatch run -- true``: the wrapper's fixed cost (interpreter start, imports,
  opening the store, recording the run);
* ``jobwatch run -- seq 1 N`` (N = 1,000,000 by default): wall time of the whole
  wrapper, from start to exit, the lines per second that makes, and the wrapper's
  peak RSS (``os.wait4`` gives the rusage of that one child, which includes the
  ``seq`` it waited for);
* whether the store then holds exactly N lines, each at its place (printed,
  never asserted).

The wrapper's stdout goes to /dev/null (``--tee pipe`` reads it through a pipe
instead, as a terminal or a cron mailer would). Figures are printed as
``name: value unit`` as they come, then the best and the median of the repeats.
The targets (500k lines/s, 80 MB) are printed next to them; nothing is asserted.

Run it from the project root (``jobwatch`` must be importable, e.g. with
``PYTHONPATH=src`` or after ``pip install -e .``)::

    python bench/bench_run.py                 # 1M lines, 3 repeats
    python bench/bench_run.py --lines 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET_RATE = 500_000
TARGET_RSS_MB = 80.0


def _drain(pipe: Any) -> None:
    while pipe.read1(1 << 16):
        pass


def wrapped(store: Path, argv: list[str], tee: str) -> tuple[float, float, int]:
    """Run ``jobwatch run -- argv``; returns (wall seconds, peak RSS MB, exit code)."""
    env = dict(os.environ, JOBWATCH_STORE=str(store))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobwatch", "run", "--", *argv],
        stdout=subprocess.PIPE if tee == "pipe" else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    reader = None
    if proc.stdout is not None:
        reader = threading.Thread(target=_drain, args=(proc.stdout,), daemon=True)
        reader.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if reader is not None:
        reader.join(10)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def stored(store: Path, lines: int) -> tuple[int, int]:
    """(lines stored, lines stored at their place) of the store's only run."""
    with contextlib.closing(sqlite3.connect(store)) as db:
        count, in_place = db.execute(
            "SELECT COUNT(*), SUM(CAST(text AS INTEGER) = seq) FROM logs"
        ).fetchone()
    return int(count), int(in_place or 0)


def say(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name}: {value:,.2f} {unit}{note}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tee", choices=("devnull", "pipe"), default="devnull")
    args = parser.parse_args()

    walls: list[float] = []
    rss: list[float] = []
    checks: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        empty_wall, empty_rss, _ = wrapped(Path(tmp) / "empty.db", ["true"], args.tee)
        say("run true: wall", empty_wall, "s")
        say("run true: peak RSS", empty_rss, "MB")
        for i in range(args.repeat):
            store = Path(tmp) / f"runs-{i}.db"
            wall, peak, code = wrapped(store, ["seq", "1", str(args.lines)], args.tee)
            count, in_place = stored(store, args.lines)
            ok = code == 0 and count == args.lines and in_place == args.lines
            walls.append(wall)
            rss.append(peak)
            checks.append(ok)
            say(f"seq {args.lines} #{i + 1}: wall", wall, "s")
            say(f"seq {args.lines} #{i + 1}: rate", args.lines / wall, "lines/s")
            say(f"seq {args.lines} #{i + 1}: peak RSS", peak, "MB")
            print(
                f"seq {args.lines} #{i + 1}: stored {count:,} lines, {in_place:,} in place, "
                f"exit {code}",
                flush=True,
            )

    best, median = min(walls), statistics.median(walls)
    print("\nsummary")
    print(f"  jobwatch run -- true            {empty_wall:8.3f} s   {empty_rss:6.1f} MB")
    print(f"  jobwatch run -- seq 1 {args.lines:<9,} best {best:.3f} s, median {median:.3f} s")
    print(
        f"  rate (best / median)            {args.lines / best:,.0f} / "
        f"{args.lines / median:,.0f} lines/s   (target >= {TARGET_RATE:,})"
    )
    print(f"  peak RSS (max of repeats)       {max(rss):.1f} MB   (target <= {TARGET_RSS_MB:.0f})")
    print(f"  every line stored, in place     {'yes' if all(checks) else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
