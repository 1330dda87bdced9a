"""``jobwatch jobs`` and ``jobwatch failures``: the triage views for scripts.

Both read through the one poller into the one :class:`TriageIndex`: a store fills
it itself (its jobs' recent history and the window's failures, one query each),
any other source by a full read of its rows, as ``list`` would. Tables as
``list`` prints them (terminal cells via Rich), tab-separated through a pipe,
``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import sys
import time

from jobwatch.cli import output as render
from jobwatch.cli.selection import human, opened, out, selection
from jobwatch.core.columns import ago
from jobwatch.core.errors import SourceError
from jobwatch.core.redact import clean
from jobwatch.core.row import RunRow
from jobwatch.sources.poller import Feed, Poller
from jobwatch.triage import text
from jobwatch.triage.feed import fill, fills_itself, know_kinds
from jobwatch.triage.index import HORIZON_S, WINDOW_S, TriageIndex
from jobwatch.triage.live import LiveWatch

SYNC_POLLS = 10_000
"""Polls a full read of a source may take at most (each reads up to 100 pages)."""

JOB_COLUMNS = (
    ("job", "JOB"),
    ("last", "LAST"),
    ("runs", "RUNS 24H"),
    ("ok", "OK"),
    ("p50", "P50"),
    ("p95", "P95"),
    ("recent", "RECENT"),
    ("last_ok", "LAST OK"),
    ("trend", "TREND"),
)
GROUP_COLUMNS = (
    ("new", "NEW"),
    ("count", "COUNT"),
    ("jobs", "JOBS"),
    ("first", "FIRST"),
    ("last", "LAST"),
    ("signature", "SIGNATURE"),
    ("example", "EXAMPLE"),
)


async def build_index(args: argparse.Namespace, since: float) -> tuple[TriageIndex, bool]:
    """The index over the selected sources, filled; and whether several were read."""
    sel = selection(args)
    index = TriageIndex(horizon_s=max(HORIZON_S, time.time() - since))
    live = LiveWatch.from_config(sel.config.live)
    """Late jobs for the LATE word: the schedules of the config and of the stores."""

    def sink(feed: Feed, rows: list[RunRow], first: bool) -> None:
        index.apply(rows)
        live.observe(rows, first=True)

    async with opened(sel, mode="rows", on_rows=sink, page=5000, pages=100) as poller:
        know_kinds(index, poller.feeds)
        for feed in poller.feeds:
            feed.window = fills_itself(feed)  # its first poll starts at its head
        await _sync(poller)
        for feed in poller.feeds:
            if feed.window and feed.opened:
                await fill(index, feed, since)
        late = {x.key: x for x in (await live.check(poller.feeds)).late}
        index.late_of = lambda key: f"late {ago(late[key].late_by)}" if key in late else None
        failed = {f.name: f.health.error for f in poller.feeds if f.health.stale}
    if failed and not sel.several:
        raise SourceError(str(next(iter(failed.values()))))
    for name, why in failed.items():
        print(f"jobwatch: warning: source {clean(name)}: {clean(why)}", file=sys.stderr)
    return index, sel.several


async def _sync(poller: Poller) -> None:
    for _ in range(SYNC_POLLS):
        await poller.poll_once()
        if all(f.synced or f.health.stale for f in poller.feeds):
            return


async def cmd_jobs(args: argparse.Namespace) -> int:
    now = time.time()
    index, several = await build_index(args, now - WINDOW_S)
    jobs = index.jobs(now)
    if args.json:
        out(render.dumps([text.job_json(s, now) for s in jobs]))
        return 0
    columns = ((("source", "SOURCE"),) if several else ()) + JOB_COLUMNS
    rows = [tuple(text.job_cells(s, now)[name] for name, _ in columns) for s in jobs]
    _table(columns, rows, "no jobs")
    return 0


async def cmd_failures(args: argparse.Namespace) -> int:
    now = time.time()
    since = now - args.since
    index, _ = await build_index(args, since)
    groups = index.failures(since, now)
    if args.json:
        out(render.dumps([text.group_json(g) for g in groups]))
        return 0
    rows = [tuple(text.group_cells(g, now)[name] for name, _ in GROUP_COLUMNS) for g in groups]
    _table(GROUP_COLUMNS, rows, "no failures")
    return 0


def _table(columns: tuple[tuple[str, str], ...], rows: list[tuple[str, ...]], none: str) -> None:
    if human():
        headers = tuple(h for _, h in columns)
        out(render.table(headers, rows, max_width=60) if rows else none)
    else:
        out(render.tsv(rows))
