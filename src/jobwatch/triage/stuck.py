"""Stuck runs: running, but nothing has moved for longer than the job ever rests.

**What counts as activity** (the newest of these is a run's last sign of life):

* its start;
* for a run made by ``jobwatch run`` (the SQLite or PostgreSQL store), the time of
  its last log line (``last_output_at``, stored by the log sink once per block);
* a change of its progress counters (the stores stamp ``progress_at`` by trigger;
  for every other source the monitor or ``watch`` sees the counters move between
  polls, :class:`RowActivity`).

The wrapper's own ``heartbeat_at`` does **not** count: it says the wrapper lives,
not that the command makes progress (a hung command has a live wrapper). A source
that declares neither log times nor progress counters (most vendors' runs without
counters) is never called stuck: silence there says nothing.

**The threshold** (:func:`stuck_after`): ``stuck_after`` from the config (default
15 min), unless the job has at least :data:`MIN_HISTORY` recent succeeded runs
that wrote output; then :data:`FACTOR` times the longest quiet gap among its last
:data:`HISTORY_RUNS` of them (a gap: between two blocks of output, or from the
last line to the end), never below :data:`FLOOR_S`. A job that rests 20 min
between lines on a good night is not stuck at 15; one that writes every second
is stuck well before.

A run is announced once (:meth:`StuckWatch.check` lists it in ``new`` the first
time); if it moves again and then stops again, that is a new announcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from jobwatch.core.row import RunRow
from jobwatch.core.status import Status
from jobwatch.sources.activity import Activity, JobKey

DEFAULT_STUCK_AFTER_S = 900.0
HISTORY_RUNS = 20
MIN_HISTORY = 5
FACTOR = 3.0
FLOOR_S = 60.0

RunKey = tuple[str, str]


def stuck_after(
    gaps: Sequence[float], default: float = DEFAULT_STUCK_AFTER_S, *, floor: float = FLOOR_S
) -> float:
    """The threshold for a job whose recent successful runs rested ``gaps`` seconds
    at most (one value per run, newest first); see the module's docstring."""
    recent = list(gaps)[:HISTORY_RUNS]
    if len(recent) < MIN_HISTORY:
        return default
    return max(floor, FACTOR * max(recent))


@dataclass(frozen=True, slots=True)
class StuckRun:
    source: str
    id: str
    job: str | None
    quiet_since: float
    """Its last sign of life (epoch seconds)."""
    threshold: float
    """Seconds of silence after which it counts as stuck (per job, see above)."""

    @property
    def key(self) -> RunKey:
        return (self.source, self.id)

    def quiet_for(self, now: float) -> float:
        return max(0.0, now - self.quiet_since)


@dataclass
class StuckReport:
    stuck: dict[RunKey, StuckRun] = field(default_factory=dict)
    """Every run stuck now."""
    new: list[StuckRun] = field(default_factory=list)
    """Those not announced before (announce these once)."""


class RowActivity:
    """Progress moves seen between polls, for sources that cannot say when their
    counters last changed: a running row whose counters differ from the last poll
    moved now. Only rows with counters are tracked (the rest have no signal)."""

    def __init__(self) -> None:
        self._seen: dict[RunKey, tuple[tuple[int | None, ...], float, RunRow]] = {}

    def observe(self, rows: Iterable[RunRow], now: float) -> None:
        for row in rows:
            key = row.key
            if row.status is not Status.RUNNING or (row.total is None and row.succeeded is None):
                self._seen.pop(key, None)
                continue
            counters = (row.total, row.succeeded, row.failed)
            before = self._seen.get(key)
            moved = before is None or before[0] != counters
            # First sight: its start is all that is known (not "now": a run that
            # was stuck before the monitor opened is stuck when it opens).
            since = (row.started_at or now) if before is None else (now if moved else before[1])
            self._seen[key] = (counters, since, row)

    def activity(self) -> list[Activity]:
        return [
            Activity(row.source, row.id, row.job, row.started_at, None, since)
            for _counters, since, row in self._seen.values()
        ]


class StuckWatch:
    """Which running runs are stuck, each announced once."""

    def __init__(self, default: float = DEFAULT_STUCK_AFTER_S, *, floor: float = FLOOR_S) -> None:
        self.default = default
        self.floor = floor
        self.thresholds: dict[JobKey, float] = {}
        self._announced: dict[RunKey, float] = {}
        """Stuck runs already announced, with the quiet spell they were announced for."""

    def learn(self, gaps: Mapping[JobKey, Sequence[float]]) -> None:
        """Per-job thresholds from history (:func:`stuck_after`)."""
        for key, values in gaps.items():
            self.thresholds[key] = stuck_after(values, self.default, floor=self.floor)

    def threshold(self, source: str, job: str | None) -> float:
        if job is None:
            return self.default
        return self.thresholds.get((source, job), self.default)

    def check(self, activity: Iterable[Activity], now: float) -> StuckReport:
        report = StuckReport()
        for act in activity:
            since = act.active_at
            if since is None:
                continue
            limit = self.threshold(act.source, act.job)
            if now - since < limit:
                continue
            run = StuckRun(act.source, act.id, act.job, since, limit)
            report.stuck[run.key] = run
            if self._announced.get(run.key) != since:
                self._announced[run.key] = since
                report.new.append(run)
        for key in [k for k in self._announced if k not in report.stuck]:
            del self._announced[key]  # it moved or ended: a later stop is news again
        return report
