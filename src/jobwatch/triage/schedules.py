"""Late and missed jobs: a job expected every hour (or on a cron line) that has
not started by its expected time plus its grace is late.

Where expectations come from: ``jobwatch run --every 1h [--late-grace 10m] --job
backup -- CMD`` records one in the store's ``schedules`` table; the config's
``[[schedules]]`` name any source's job with ``every`` or ``cron`` and ``grace``
(the config wins over the store for the same job).

**The rule.** A job's next start is expected one period after its last start
(``every``), or at the first cron slot after it (``cron``; the machine's local
time). Before any run, the time the expectation was first seen counts as the last
start (a job that never ran is late one period after it was scheduled). It is late
once ``now`` passes expected + grace, and stays late until a run starts; each
missed slot is announced once (:meth:`Schedules.news`).

Cron lines are read by `cronsim <https://pypi.org/project/cronsim/>`_: small, no
dependencies, typed, and maintained as the parser behind healthchecks.io, whose
question ("did it run?") this is; ``croniter`` was the other candidate, and its
maintainers declared it end of life in 2024.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jobwatch.sources.activity import JobKey, Schedule


class ScheduleError(ValueError):
    """A cron line that cannot be read, or a schedule with neither period nor line."""


def check_cron(expr: str) -> str:
    """``expr`` if cronsim reads it, else :class:`ScheduleError` with its reason."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime.now().astimezone())
    except CronSimError as exc:
        raise ScheduleError(f"cron {expr!r}: {exc}") from None
    return expr


def next_expected(schedule: Schedule, after: float) -> float:
    """When the next start is due after a start at ``after`` (epoch seconds)."""
    if schedule.every_s:
        return after + schedule.every_s
    if schedule.cron:
        from cronsim import CronSim

        start = datetime.fromtimestamp(after).astimezone()
        return next(iter(CronSim(schedule.cron, start))).timestamp()
    raise ScheduleError(f"schedule of {schedule.job!r} has neither every nor cron")


@dataclass(frozen=True, slots=True)
class Lateness:
    """A late job: what the jobs view, ``watch --late`` and the hooks show."""

    source: str
    job: str
    expected_at: float
    """When a run should have started (the grace is on top of this)."""
    late_by: float
    """Seconds past ``expected_at``."""
    last_started: float | None
    grace_s: float
    every_s: float | None = None
    cron: str | None = None

    @property
    def key(self) -> JobKey:
        return (self.source, self.job)

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "job": self.job,
            "expected_at": self.expected_at,
            "late_by_s": round(self.late_by, 3),
            "last_started": self.last_started,
            "grace_s": self.grace_s,
            "every_s": self.every_s,
            "cron": self.cron,
        }


def lateness_of(
    schedule: Schedule, last_started: float | None, now: float, *, since: float | None = None
) -> Lateness | None:
    """Whether ``schedule``'s job is late at ``now``; ``since`` stands in for the
    last start of a job that never ran (when the expectation was first seen)."""
    anchor = last_started if last_started is not None else since
    if anchor is None or not math.isfinite(anchor):
        return None
    expected = next_expected(schedule, anchor)
    if now <= expected + schedule.grace_s:
        return None
    return Lateness(
        schedule.source,
        schedule.job,
        expected,
        now - expected,
        last_started,
        schedule.grace_s,
        schedule.every_s,
        schedule.cron,
    )


class Schedules:
    """The expectations in force, and which late jobs were announced already.

    ``lateness(key, last_started, now)`` is the API the jobs view calls; it needs
    no store, only the job's last start, which the view already has."""

    def __init__(self, schedules: Iterable[Schedule] = (), *, now: float) -> None:
        self.by_key: dict[JobKey, Schedule] = {}
        self.since: dict[JobKey, float] = {}
        self._announced: dict[JobKey, float] = {}
        self.update(schedules, now=now)

    def update(self, schedules: Iterable[Schedule], *, now: float) -> None:
        """Add or replace expectations; a config one is never replaced by the store's."""
        for schedule in schedules:
            old = self.by_key.get(schedule.key)
            if old is not None and old.origin == "config" and schedule.origin != "config":
                continue
            self.by_key[schedule.key] = schedule
            if schedule.since is not None:
                self.since[schedule.key] = schedule.since
            else:
                self.since.setdefault(schedule.key, now)

    def __len__(self) -> int:
        return len(self.by_key)

    def lateness(self, key: JobKey, last_started: float | None, now: float) -> Lateness | None:
        schedule = self.by_key.get(key)
        if schedule is None:
            return None
        return lateness_of(schedule, last_started, now, since=self.since.get(key))

    def late(self, last_starts: Mapping[JobKey, float], now: float) -> list[Lateness]:
        """Every late job, the latest first."""
        found = [
            late
            for key in self.by_key
            if (late := self.lateness(key, last_starts.get(key), now)) is not None
        ]
        return sorted(found, key=lambda x: -x.late_by)

    def news(self, late: Iterable[Lateness]) -> list[Lateness]:
        """Those of ``late`` not announced for this missed slot yet (each once);
        a job no longer late is forgotten, so its next miss is news again."""
        late = list(late)
        new = [x for x in late if self._announced.get(x.key) != x.expected_at]
        self._announced = {x.key: x.expected_at for x in late}
        return new

    def expected_next(self, key: JobKey, last_started: float | None) -> float | None:
        schedule = self.by_key.get(key)
        anchor = last_started if last_started is not None else self.since.get(key)
        if schedule is None or anchor is None:
            return None
        return next_expected(schedule, anchor)
