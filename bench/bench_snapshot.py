"""What a configuration snapshot costs: at ``jobwatch run``'s start (read, parse,
redact, fingerprint a big ``--snapshot`` file) and for ``jobwatch diff`` (two big
snapshots compared). The command starts after the snapshot is taken, so the first
figure is the delay a wrapped command sees. Best of a few rounds; no assertion::

    python bench/bench_snapshot.py [--keys N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from jobwatch.apps.snapshot import build_snapshot
from jobwatch.core.fingerprints import fingerprints, read_fingerprints
from jobwatch.core.redact import redact
from jobwatch.core.snapshot_diff import diff_snapshots

KEY = b"bench-key-0123456789abcdef012345"


def config(keys: int, seed: int) -> dict[str, Any]:
    """``keys`` settings in sections of 50, one in ten a secret."""
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    for i in range(keys):
        section = out.setdefault(f"section_{i // 50}", {})
        name = f"password_{i}" if i % 10 == 0 else f"setting_{i}"
        section[name] = rng.choice([rng.randint(0, 9), f"value-{rng.randint(0, 3)}", True])
    return out


def best(rounds: int, step: Any) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old, new = config(args.keys, 1), config(args.keys, 2)
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, dump in ((".json", json.dumps), (".yaml", yaml.safe_dump)):
            path = Path(tmp) / f"app{suffix}"
            path.write_text(dump(old))
            size = path.stat().st_size

            def take(name: str = path.name) -> None:
                raw = build_snapshot(["true"], cwd=tmp, files=[name])
                fingerprints(raw, redact(raw), KEY)

            ms = best(args.rounds, take)
            print(f"snapshot at start, {args.keys:,} keys {suffix} ({size:,} B): {ms:7.1f} ms")
    shown_old, shown_new = redact(old), redact(new)
    fps_old = read_fingerprints({"snapshot_fingerprints": fingerprints(old, shown_old, KEY)})
    fps_new = read_fingerprints({"snapshot_fingerprints": fingerprints(new, shown_new, KEY)})
    found: list[int] = []

    def compare() -> None:
        diff = diff_snapshots(shown_old, shown_new, old_fps=fps_old, new_fps=fps_new)
        found.append(len(diff.changes))
        diff.tree_lines()

    ms = best(args.rounds, compare)
    print(f"diff of two {args.keys:,}-key snapshots ({found[-1]:,} changes, tree): {ms:7.1f} ms")


if __name__ == "__main__":
    main()
