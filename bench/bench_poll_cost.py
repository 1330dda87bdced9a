"""Requests a poll costs, per vendor, counted by the stand-ins on 127.0.0.1.

For Letta (documented paging and the open-source server's paging) and Matatika:
the first sync (requests, and records found out of those served), a quiet poll
(nothing changed) and a poll after one active run finished. Each stand-in holds
a realistic mix: 34 active runs among a few hundred finished ones.

    PYTHONPATH=src python bench/bench_poll_cost.py [--page-size N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from jobwatch.sources.vendors.letta import LettaConfig
from jobwatch.sources.vendors.matatika import MatatikaConfig
from standins import letta as lt
from standins import matatika as mt
from standins.server import serving

ACTIVE = 34
FINISHED = 240


async def measure(source: Any, standin: Any, served: int, finish: Any) -> dict[str, Any]:
    async with source:
        standin.requests.clear()
        await source.refresh()
        first = await source.changes(None)
        sync = len(standin.requests)
        found = len(first.runs)
        standin.requests.clear()
        await source.refresh()
        quiet = len(standin.requests)
        finish()
        standin.requests.clear()
        await source.refresh()
        moved = len(standin.requests)
    return {"sync": sync, "found": f"{found}/{served}", "quiet": quiet, "one change": moved}


def letta_case(oss: bool, page_size: int, tmp: Path) -> dict[str, Any]:
    standin = lt.LettaStandIn(oss_paging=oss)
    active = [standin.add_run("running", completed_at=None) for _ in range(ACTIVE)]
    for _ in range(FINISHED):
        standin.add_run("completed")
    for _ in range(20):
        standin.add_job("completed")
    standin.add_job("running", job_type="batch")
    served = len(standin.runs) + len(standin.jobs)

    def finish() -> None:
        active[0].update(status="completed", stop_reason="end_turn")

    with serving(standin.app) as server:
        config = LettaConfig(
            kind="letta",
            url=server.url,
            token=lt.TOKEN,
            page_size=page_size,
            flags_store=tmp / "flags.db",
        )
        return asyncio.run(measure(config.build("letta"), standin, served, finish))


def matatika_case(page_size: int, tmp: Path) -> dict[str, Any]:
    standin = mt.MatatikaStandIn()
    for n in range(FINISHED + ACTIVE):
        status = "RUNNING" if n % 8 == 0 and n // 8 < ACTIVE else "COMPLETE"
        created = f"2024-04-{1 + n // 600:02}T{n // 60 % 10:02}:{n % 60:02}:10"
        standin.add(mt.make_job(f"j{n:04}", status, created=created))
    served = len(standin.jobs)
    first_active = next(j for j in standin.jobs.values() if j["status"] == "RUNNING")

    def finish() -> None:
        first_active.update(status="COMPLETE", endTime="2024-04-10T16:00:00")

    with serving(standin.app) as server:
        config = MatatikaConfig(
            kind="matatika",
            url=server.url,
            token=mt.TOKEN,
            workspace_id=mt.WORKSPACE,
            page_size=page_size,
            flags_store=tmp / "flags.db",
        )
        return asyncio.run(measure(config.build("matatika"), standin, served, finish))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "letta (documented paging)": letta_case(False, args.page_size, Path(tmp)),
            "letta (open-source paging)": letta_case(True, args.page_size, Path(tmp)),
            "matatika": matatika_case(args.page_size, Path(tmp)),
        }
    print(f"page_size={args.page_size}, {ACTIVE} active runs among {ACTIVE + FINISHED}")
    print(f"{'source':<28} {'sync req':>8} {'found':>9} {'quiet req':>9} {'1 change req':>12}")
    for name, row in rows.items():
        print(
            f"{name:<28} {row['sync']:>8} {row['found']:>9} {row['quiet']:>9} "
            f"{row['one change']:>12}"
        )


if __name__ == "__main__":
    main()
