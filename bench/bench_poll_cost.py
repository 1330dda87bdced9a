"""Requests a quiet poll costs, per vendor, counted by the stand-ins.

Each vendor's stand-in (``tests/standins/``) is served on 127.0.0.1 and seeded
through the contract factory with ``--runs`` runs (every ``--active-every``-th one
active, none with 0); the source syncs once, then polls ``--polls`` times with
nothing changed, back to back. The figure is the stand-in's own request counter,
per quiet poll. Salesforce also asks getDeleted once a minute, which back-to-back
polls never reach: the last column is a quiet poll that includes it.

    PYTHONPATH=src:tests python bench/bench_poll_cost.py [--runs N] [--polls N]
        [--active-every N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from jobwatch.core import Status

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from standins import intuned, modzy, salesforce
from standins.contract import VendorUpstream

FACTORIES: dict[str, type[VendorUpstream]] = {
    "salesforce": salesforce.Contract,
    "intuned": intuned.Contract,
    "modzy": modzy.Contract,
}


async def measure(kind: str, runs: int, polls: int, every: int) -> tuple[int, float, int]:
    """(requests of the first sync, per quiet poll, of a quiet poll with getDeleted)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FACTORIES[kind](Path(tmp)) as up:
            for n in range(runs):
                active = every > 0 and n % every == 0
                await up.seed(up.active if active else Status.SUCCEEDED)
            source = up.build()
            async with source:
                await source.refresh()
                first = up.requests()
                for _ in range(polls):
                    await source.refresh()
                quiet = (up.requests() - first) / polls
                before = up.requests()
                if hasattr(source, "deleted_every"):
                    source.deleted_every = 0.0  # a minute has passed
                await source.refresh()
                minute = up.requests() - before
    return first, quiet, minute


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--active-every", type=int, default=4)
    args = parser.parse_args()
    every = max(0, args.active_every)
    share = f"1 in {every} active" if every else "none active"
    print(f"{args.runs} runs ({share}), {args.polls} quiet polls each; requests:")
    print(f"{'':<11} {'first sync':>10} {'quiet poll':>10} {'once a minute':>14}")
    for kind in FACTORIES:
        first, quiet, minute = await measure(kind, max(1, args.runs), max(1, args.polls), every)
        print(f"{kind:<11} {first:>10} {quiet:>10.1f} {minute:>14}")


if __name__ == "__main__":
    asyncio.run(main())
