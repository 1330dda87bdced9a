"""How long :func:`jobwatch.core.redact.clean` takes on ordinary text.

Redaction runs on every table cell and every log line shown, so its cost on text
that holds no secret is what a user feels. Prints the time for 100,000 strings of
each kind (ids, names, timestamps, realistic log lines from ``_fill``), best of a
few rounds; no assertion, compare the figures before and after a change::

    python bench/bench_redact.py [--count N] [--rounds R]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

from _fill import log_batch

from jobwatch.core.redact import clean


def corpus(count: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    ids = [f"run-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(count)]
    jobs = ["nightly-etl", "backup", "train model v2", "scrape acme.com", "report (weekly)"]
    names = [f"{rng.choice(jobs)} #{i}" for i in range(count)]
    stamps = [
        f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:3{i % 10}:00Z" for i in range(count)
    ]
    logs = [text for _, _, _, text in log_batch(rng, 0.0, 1, count)]
    return {"ids": ids, "names": names, "timestamps": stamps, "log lines": logs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for kind, texts in corpus(args.count).items():
        best = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            for text in texts:
                clean(text)
            best = min(best, time.perf_counter() - start)
        per = best / len(texts) * 1e6
        print(f"clean() on {len(texts):,} {kind:<10}: {best * 1000:8.1f} ms  ({per:.2f} µs each)")


if __name__ == "__main__":
    main()
