"""``jobwatch watch`` without a run (every run: failures, stuck runs, late jobs,
with the hooks), ``jobwatch watch --late`` (a cron check of the checker) and
``jobwatch schedules``. The logic is headless (:mod:`jobwatch.triage.live`), the
same the monitor uses; this only prints, exits and fires."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from jobwatch.cli import output as render
from jobwatch.cli.selection import Selection, human, opened, out, selection
from jobwatch.core.columns import ago
from jobwatch.core.redact import clean, redact
from jobwatch.core.row import RunRow
from jobwatch.sources.poller import Feed, Poller
from jobwatch.triage.hooks import HookRunner
from jobwatch.triage.live import (
    LiveReport,
    LiveWatch,
    late_body,
    notice_of,
    run_body,
    stuck_body,
)
from jobwatch.triage.schedules import Lateness
from jobwatch.triage.terminal import osc_notification

EXIT_LATE = 1
SYNC_POLLS = 10_000
"""Polls a first sync may take (pages of a large store), a bound, never reached."""


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


class Intake:
    """The poller's sink: rows into ``live``; runs that just failed (after the
    first sync: what was there before is not news) into ``pending``."""

    def __init__(self, live: LiveWatch) -> None:
        self.live = live
        self.pending: list[tuple[Feed, RunRow]] = []
        self.synced = False

    def __call__(self, feed: Feed, rows: list[RunRow], first: bool) -> None:
        failed = self.live.observe(rows, first=first or not self.synced)
        self.pending.extend((feed, row) for row in failed)


async def sync(poller: Poller, intake: Intake) -> None:
    """The first full read of every source (bounded in polls)."""
    for _ in range(SYNC_POLLS):
        await poller.poll_once()
        if poller.synced():
            break
    intake.synced = True


def late_line(late: Lateness) -> str:
    return (
        f"late  {clean(late.job)} ({clean(late.source)})  expected {_when(late.expected_at)}"
        f"  late by {ago(late.late_by)}  last start {_when(late.last_started)}"
    )


async def check_late(sel: Selection, args: argparse.Namespace) -> int:
    live = LiveWatch.from_config(sel.config.live)
    intake = Intake(live)
    async with opened(sel, mode="rows", on_rows=intake, pages=50) as poller:
        await sync(poller, intake)
        report = await live.check(poller.feeds)
    if args.json:
        out(render.dumps({"late": [x.as_json() for x in report.late]}))
    elif report.late:
        for late in report.late:
            out(late_line(late))
    elif human():
        out(f"no job late ({len(live.schedules)} scheduled)")
    return EXIT_LATE if report.late else 0


async def watch_all(args: argparse.Namespace) -> int:
    sel = selection(args)
    if args.late:
        return await check_late(sel, args)
    return await watch_events(sel, args)


class Events:
    """Prints each event once, fires its hook and its terminal notification."""

    def __init__(self, sel: Selection, args: argparse.Namespace) -> None:
        live = sel.config.live
        self.json = bool(args.json)
        self.kind = live.terminal_notify
        self.hooks = HookRunner(live.hooks, on_warning=self._warn)
        self.tty = sys.stderr.isatty()

    def _warn(self, text: str) -> None:
        print(f"jobwatch: warning: {text}", file=sys.stderr)

    def emit(self, event: str, body: dict[str, Any], line: str) -> None:
        if self.json:
            out(json.dumps(redact({"event": event, **body}), ensure_ascii=False, default=str))
        else:
            out(line)
        sys.stdout.flush()
        self.hooks.fire(event, body)
        if self.kind != "off" and self.tty:
            title, text = notice_of(event, body)
            sys.stderr.write(osc_notification(self.kind, title, text))
            sys.stderr.flush()

    async def report(self, poller: Poller, report: LiveReport, now: float) -> None:
        for late in report.new_late:
            self.emit("late", late_body(late), late_line(late))
        for stuck in report.new_stuck:
            feed = poller.feed_for(stuck.key) if stuck.key[0] else None
            body = {**await run_body(feed or _only(poller), stuck.key, None)}
            body.update(stuck_body(stuck, now))
            quiet = ago(stuck.quiet_for(now))
            line = f"stuck  {clean(stuck.id)}  {clean(stuck.job or '')}  quiet {quiet}"
            self.emit("stuck", body, line)

    async def failures(self, pending: list[tuple[Feed, RunRow]]) -> None:
        for feed, row in pending:
            body = await run_body(feed, row.key, row)
            problem = f"  {clean(row.problem)}" if row.problem else ""
            line = f"{row.status.value}  {clean(row.id)}  {clean(row.job or '')}{problem}"
            self.emit("failure", body, line)
        pending.clear()


def _only(poller: Poller) -> Feed | None:
    return poller.feeds[0] if len(poller.feeds) == 1 else None


async def watch_events(sel: Selection, args: argparse.Namespace) -> int:
    """Until Ctrl-C (or ``--for``): each failure, stuck run and late job once."""
    live = LiveWatch.from_config(sel.config.live)
    intake = Intake(live)
    events = Events(sel, args)
    deadline = None if args.for_s is None else time.monotonic() + args.for_s
    async with opened(sel, mode="rows", on_rows=intake, pages=50) as poller:
        await sync(poller, intake)
        n = len(poller.feeds)
        print(f"jobwatch: watching {n} source{'s' if n != 1 else ''}", file=sys.stderr, flush=True)
        try:
            while True:
                report = await live.check(poller.feeds)
                await events.failures(intake.pending)
                await events.report(poller, report, live.clock())
                if deadline is not None and time.monotonic() >= deadline:
                    break
                pause = args.interval
                if deadline is not None:
                    pause = max(0.0, min(pause, deadline - time.monotonic()))
                await asyncio.sleep(pause)
                await poller.poll_once()
        finally:
            await events.hooks.drain()
    return 0


async def cmd_schedules(args: argparse.Namespace) -> int:
    """Every scheduled job: its expectation, last start, next expected, late by."""
    sel = selection(args)
    live = LiveWatch.from_config(sel.config.live)
    intake = Intake(live)
    async with opened(sel, mode="rows", on_rows=intake, pages=50) as poller:
        await sync(poller, intake)
        report = await live.check(poller.feeds)
    late = {x.key: x for x in report.late}
    items: list[dict[str, Any]] = []
    for key, sched in sorted(live.schedules.by_key.items()):
        last = live.last_starts.get(key)
        items.append(
            {
                "source": sched.source,
                "job": sched.job,
                "every_s": sched.every_s,
                "cron": sched.cron,
                "grace_s": sched.grace_s,
                "origin": sched.origin,
                "last_started": last,
                "expected_next": live.schedules.expected_next(key, last),
                "late_by_s": round(late[key].late_by, 3) if key in late else None,
            }
        )
    if args.json:
        out(render.dumps(items))
        return 0
    if not items:
        out("no scheduled jobs" if human() else "")
        return 0
    rows = [
        (
            clean(i["source"]),
            clean(i["job"]),
            f"every {ago(i['every_s'])}" if i["every_s"] else f"cron {clean(i['cron'])}",
            ago(i["grace_s"]) if i["grace_s"] else "-",
            _when(i["last_started"]),
            _when(i["expected_next"]),
            f"late {ago(i['late_by_s'])}" if i["late_by_s"] is not None else "ok",
        )
        for i in items
    ]
    headers = ("SOURCE", "JOB", "EXPECTED", "GRACE", "LAST START", "NEXT", "STATE")
    out(render.table(headers, rows) if human() else render.tsv(rows))
    return 0
