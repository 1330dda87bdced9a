"""What happened since the last look, for the monitor and ``jobwatch watch`` alike:
runs that just failed, runs that just went stuck, jobs that just went late.

The poller is shared, so this is too: a front end hands it the rows of each batch
(:meth:`LiveWatch.observe`) and asks it to look, once per poll
(:meth:`LiveWatch.check`), and gets back what to show and what to announce — each
event once. The hooks and terminal notification are the caller's (it decides how
to draw); :func:`announce` does both for a headless caller.

A check asks each store that can say more (:class:`~jobwatch.sources.activity.
LiveReads`) for its running runs' signs of life (one indexed query), the quiet
history of jobs it has not learned yet (once per job per :data:`HISTORY_EVERY_S`),
its recorded schedules and the last start of each scheduled job. Other sources
are judged from their rows alone. Nothing rescans the history on a tick.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobwatch.core.row import RunRow
from jobwatch.core.status import FAULTS
from jobwatch.sources.activity import Activity, JobKey, LiveReads, Schedule
from jobwatch.triage.schedules import Lateness, Schedules
from jobwatch.triage.stuck import HISTORY_RUNS, RowActivity, StuckRun, StuckWatch

if TYPE_CHECKING:
    from jobwatch.config.live import LiveConfig
    from jobwatch.sources.poller import Feed

HISTORY_EVERY_S = 300.0
"""How long a job's learned stuck threshold is kept before it is read again."""
FAILED_SLACK_S = 60.0
SCHEDULES_EVERY_S = 30.0
"""How often the stores' recorded schedules are read again."""


@dataclass
class LiveReport:
    """One check: what is so now, and what is news."""

    stuck: dict[tuple[str, str], StuckRun] = field(default_factory=dict)
    new_stuck: list[StuckRun] = field(default_factory=list)
    late: list[Lateness] = field(default_factory=list)
    new_late: list[Lateness] = field(default_factory=list)


def schedules_of(config: LiveConfig) -> list[Schedule]:
    return [
        Schedule(e.source, e.job, e.every_s, e.cron, e.grace_s, origin="config")
        for e in config.schedules
    ]


class LiveWatch:
    def __init__(
        self,
        *,
        stuck_after: float = 900.0,
        schedules: Iterable[Schedule] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.stuck = StuckWatch(stuck_after)
        self.schedules = Schedules(schedules, now=clock())
        self.rows = RowActivity()
        self.last_starts: dict[JobKey, float] = {}
        self.report = LiveReport()
        self._learned: dict[JobKey, float] = {}
        self._schedules_read: dict[str, float] = {}
        self._failed: set[tuple[str, str]] = set()
        self._since = clock() - FAILED_SLACK_S
        """A failure that ended before this watch began is not news (an old failed
        run delivered again, e.g. unarchived, is not announced)."""

    @classmethod
    def from_config(cls, config: LiveConfig, clock: Callable[[], float] = time.time) -> LiveWatch:
        return cls(stuck_after=config.stuck_after, schedules=schedules_of(config), clock=clock)

    # -- batches -------------------------------------------------------------------

    def observe(self, rows: Sequence[RunRow], *, first: bool = False) -> list[RunRow]:
        """Take in a batch of changed rows; returns the runs that just failed (none
        while a first sync loads: what was already there is not news)."""
        now = self.clock()
        self.rows.observe(rows, now)
        starts = self.last_starts
        failed: list[RunRow] = []
        for row in rows:
            when = row.started_at or row.created_at
            if row.job and when:
                key = (row.source, row.job)
                if when > starts.get(key, 0.0):
                    starts[key] = when
            if row.status in FAULTS and not row.archived:
                ended = row.ended_at or when or now
                if row.key not in self._failed and not first and ended >= self._since:
                    failed.append(row)
                self._failed.add(row.key)
            else:
                self._failed.discard(row.key)
        return failed

    # -- a look --------------------------------------------------------------------

    async def check(self, feeds: Sequence[Feed]) -> LiveReport:
        now = self.clock()
        activity: list[Activity] = list(self.rows.activity())
        for feed in feeds:
            source = feed.source
            if not isinstance(source, LiveReads) or not feed.opened:
                continue
            with contextlib.suppress(Exception):  # a failing source shows as stale anyway
                activity += await self._store_activity(feed, source, now)
            with contextlib.suppress(Exception):
                await self._store_schedules(feed, source, now)
        newest: dict[tuple[str, str], Activity] = {}
        for act in activity:  # a store's run seen in its rows too: the newest sign wins
            key = (act.source, act.id)
            old = newest.get(key)
            if old is None or (act.active_at or 0.0) > (old.active_at or 0.0):
                newest[key] = act
        report = LiveReport()
        found = self.stuck.check(newest.values(), now)
        report.stuck, report.new_stuck = found.stuck, found.new
        report.late = self.schedules.late(self.last_starts, now)
        report.new_late = self.schedules.news(report.late)
        self.report = report
        return report

    async def _store_activity(self, feed: Feed, source: LiveReads, now: float) -> list[Activity]:
        label = feed.label
        acts = await source.activity()
        if label:
            acts = [
                Activity(label, a.id, a.job, a.started_at, a.last_output_at, a.progress_at)
                for a in acts
            ]
        due = sorted(
            {
                a.job
                for a in acts
                if a.job and now - self._learned.get((a.source, a.job), -1e18) >= HISTORY_EVERY_S
            }
        )
        if due:
            gaps = await source.quiet_gaps(due, HISTORY_RUNS)
            shown = label or (acts[0].source if acts else feed.name)
            keys = {a.job: a.source for a in acts if a.job}
            self.stuck.learn({(keys.get(job, shown), job): g for job, g in gaps.items()})
            for job in due:
                self._learned[(keys.get(job, shown), job)] = now
        return acts

    async def _store_schedules(self, feed: Feed, source: LiveReads, now: float) -> None:
        """The store's schedules and its scheduled jobs' last starts, every
        :data:`SCHEDULES_EVERY_S` (the last starts scan the runs of those jobs);
        in between, the rows of each batch keep the last starts current."""
        if now - self._schedules_read.get(feed.name, -1e18) < SCHEDULES_EVERY_S:
            return
        self._schedules_read[feed.name] = now
        recorded = await source.schedules()
        if feed.label:
            recorded = [
                Schedule(feed.label, s.job, s.every_s, s.cron, s.grace_s, s.origin, s.since)
                for s in recorded
            ]
        self.schedules.update(recorded, now=now)
        shown = {feed.label} if feed.label else {s for s, _ in self.schedules.by_key}
        jobs = sorted({j for s, j in self.schedules.by_key if s in shown})
        if not jobs:
            return
        starts = await source.last_starts(jobs)
        for s, job in list(self.schedules.by_key):
            if s in shown and job in starts and starts[job] > self.last_starts.get((s, job), 0.0):
                self.last_starts[(s, job)] = starts[job]


# -- what a hook and a terminal notification say --------------------------------------


def row_body(row: RunRow) -> dict[str, Any]:
    """A run as its table row knows it (when the full run cannot be read)."""
    return {
        "source": row.source,
        "id": row.id,
        "job": row.job,
        "label": row.label,
        "status": row.status.value,
        "status_raw": row.status_raw,
        "problem": row.problem,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "duration_ms": row.duration_ms,
    }


async def run_body(feed: Feed | None, key: tuple[str, str], row: RunRow | None) -> dict[str, Any]:
    """``{"run": …}``: the full run from its source when it can be read (its error
    message, its config), else what its row says. Redacted by the hook runner."""
    if feed is not None:
        with contextlib.suppress(Exception):
            run = await feed.source.get(key[1])
            data = run.model_dump(mode="json")
            data["source"] = key[0]
            return {"run": data}
    return {"run": row_body(row) if row is not None else {"source": key[0], "id": key[1]}}


def stuck_body(stuck: StuckRun, now: float) -> dict[str, Any]:
    return {
        "stuck": {
            "quiet_s": round(stuck.quiet_for(now), 3),
            "quiet_since": stuck.quiet_since,
            "stuck_after_s": stuck.threshold,
        }
    }


def late_body(late: Lateness) -> dict[str, Any]:
    return {"job": late.as_json()}


def notice_of(event: str, body: dict[str, Any]) -> tuple[str, str]:
    """(title, text) of the terminal notification for an event."""
    if event == "late":
        job = body["job"]
        return f"jobwatch: {job['job']} late", f"{job['source']}: no run since it was due"
    run = body.get("run", {})
    what = run.get("job") or run.get("label") or run.get("id") or "run"
    if event == "stuck":
        quiet = int(body.get("stuck", {}).get("quiet_s", 0) // 60)
        return f"jobwatch: {what} stuck", f"{run.get('id', '')}: no output for {quiet}m"
    return f"jobwatch: {what} {run.get('status', 'failed')}", str(run.get("id", ""))
