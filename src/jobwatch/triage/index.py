"""The one triage index every front end shares: jobs, failure groups, slow runs.

Fed with :class:`RunRow` batches (:meth:`TriageIndex.apply`), the cost of a batch
follows the batch, never the history: per job (source + job) it keeps a bounded
recent history (the last :data:`HISTORY` finished runs and the active ones), and
per failure signature the failures inside the index's horizon plus when the
signature was first and last seen. Memory is bounded by jobs and signatures, not
by how many runs the store holds.

Summaries are computed on demand and cached per job; a batch marks only the jobs
and signatures it touched (:class:`Touched`), so a screen redraws those and
nothing else recomputes on a tick.

Durations for p50/p95 and the slow mark come from a job's *succeeded* runs: a
failing run often ends early, and counting it would make every normal run look
slow next to it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from jobwatch.core.row import RunRow, short_message
from jobwatch.core.status import FAULTS, Status
from jobwatch.triage.signature import Signature, signature

HISTORY = 200
"""Finished runs kept per job."""
SPARK = 30
"""Runs a job's sparkline shows."""
WINDOW_S = 24 * 3600.0
"""The jobs view's window ("runs in the window") and failures' default ``since``."""
HORIZON_S = 7 * 24 * 3600.0
"""How far back failures are kept per signature (``failures --since`` up to this)."""
MIN_EARLIER = 5
"""Earlier succeeded runs a job needs before a run of it can be called slow."""
SLOW_FACTOR = 2.0
WEEK_S = 7 * 24 * 3600.0
TREND_MIN_RUNS = 3
TREND_MIN_PCT = 20
SUMMARY_TTL_S = 60.0
"""A cached summary is recomputed after this long even untouched ("runs in the
window" and the trend move with the clock)."""
GROUP_KEYS = 200
"""Run keys a failure group hands out (newest first) for "filter to the group"."""

JobKey = tuple[str, str]
RunKey = tuple[str, str]
LateOf = Callable[[JobKey], "str | None"]


def no_lateness(key: JobKey) -> str | None:
    """The default ``late_of``: schedules (``triage/schedules.py``) plug in here."""
    return None


def job_name(row: RunRow) -> str:
    """The job a run belongs to: its job, else its label, else empty."""
    return row.job or row.label or ""


def when(row: RunRow) -> float:
    """When a run happened, for ordering its job's history: its end, else start."""
    return row.ended_at or row.started_at or row.created_at or 0.0


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


class _Entry:
    """One finished run as its job's history keeps it (a plain slotted class: a
    dataclass's ``__post_init__`` cost a fifth of ``apply``, measured)."""

    __slots__ = ("at", "duration_ms", "id", "ok", "status")

    def __init__(self, at: float, rid: str, status: Status, duration_ms: float | None) -> None:
        self.at = at
        self.id = rid
        self.status = status
        self.duration_ms = duration_ms
        self.ok = duration_ms if status is Status.SUCCEEDED else None
        """The duration, if this run counts for p50/p95 (it succeeded)."""


def _win(status: Status) -> int:
    if status is Status.SUCCEEDED:
        return 1
    return 0 if status.is_terminal or status in FAULTS else -1


_Place = tuple[float, str, _Entry]
"""``(when, id, entry)``: (when, id) is unique, so tuples order without a key
function (a key called per comparison cost a third of ``apply``, measured)."""


@dataclass(slots=True)
class _Job:
    """One job's kept history: ``order`` by (when, id), oldest first, and the
    succeeded durations kept sorted alongside (``baseline``), both updated in
    place, so a summary never sorts the history again."""

    source: str
    name: str
    order: list[_Place] = field(default_factory=list)
    entries: dict[str, _Entry] = field(default_factory=dict)
    active: dict[str, RunRow] = field(default_factory=dict)
    last_success: float | None = None
    version: int = 0
    baseline: list[float] = field(default_factory=list)
    oks: list[float | None] = field(default_factory=list)
    """``entry.ok`` of ``order``, position by position: the trend reads slices of
    plain floats (three times quicker than through the entries, measured)."""
    wins: list[int] = field(default_factory=list)
    """Position by position: 1 succeeded, 0 another outcome, -1 no outcome."""
    changed_from: float = float("inf")
    """The oldest ``when`` of a run added or dropped since the trend last looked:
    the week before's p50 is kept until a change reaches back into that week."""
    week_before: tuple[int, int, float | None] | None = None
    """(start, end) positions of the week before in ``order`` and its p50."""

    def forget(self, run_id: str) -> None:
        entry = self.entries.pop(run_id, None)
        if entry is None:
            return
        place = (entry.at, entry.id, entry)
        at = bisect.bisect_left(self.order, place)
        if at < len(self.order) and self.order[at][2] is entry:
            del self.order[at]
            del self.oks[at]
            del self.wins[at]
        self.changed_from = min(self.changed_from, entry.at)
        self._unbase(entry)

    def add(self, entry: _Entry, keep: int) -> None:
        self.entries[entry.id] = entry
        self.changed_from = min(self.changed_from, entry.at)
        place = (entry.at, entry.id, entry)
        at = bisect.bisect_right(self.order, place)
        self.order.insert(at, place)
        self.oks.insert(at, entry.ok)
        status = entry.status
        self.wins.insert(
            at,
            1
            if status is Status.SUCCEEDED
            else (0 if status.is_terminal or status in FAULTS else -1),
        )
        if entry.ok is not None:
            bisect.insort(self.baseline, entry.ok)
        while len(self.order) > keep:
            old = self.order.pop(0)[2]
            del self.oks[0]
            del self.wins[0]
            self.changed_from = min(self.changed_from, old.at)
            del self.entries[old.id]
            self._unbase(old)

    def at_or_after(self, start: float) -> int:
        return bisect.bisect_left(self.order, (start,))

    def _unbase(self, entry: _Entry) -> None:
        ms = entry.ok
        if ms is not None:
            at = bisect.bisect_left(self.baseline, ms)
            if at < len(self.baseline) and self.baseline[at] == ms:
                del self.baseline[at]

    def newest(self, count: int) -> list[_Entry]:
        return [p[2] for p in self.order[-count:]]


@dataclass(slots=True)
class JobSummary:
    """One row of the jobs view and of ``jobwatch jobs``. Treated as immutable;
    not ``frozen``, which constructs about three times slower (a busy poll
    recomputes hundreds of these)."""

    source: str
    job: str
    last_status: Status | None
    last_at: float | None
    active: int
    runs_in_window: int
    window_full: bool
    """The kept history did not reach back to the window's start: "at least"."""
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    spark: tuple[tuple[float | None, Status], ...]
    """The last :data:`SPARK` finished runs, oldest first: (duration, outcome)."""
    last_success_at: float | None
    trend: str | None
    late: str | None = None
    """Set by the schedules (``late_of``): "late 12m", "missed 02:00"."""

    @property
    def key(self) -> JobKey:
        return (self.source, self.job)


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failures of one signature: one row of the failure-groups view."""

    signature: Signature
    count: int
    first_seen: float
    last_seen: float
    jobs: tuple[str, ...]
    example: RunKey
    keys: tuple[RunKey, ...]
    """The group's runs in the window, newest first (at most :data:`GROUP_KEYS`)."""
    new: bool
    """The signature was not seen before the window."""

    @property
    def text(self) -> str:
        return self.signature.text()


@dataclass(slots=True)
class _Group:
    sig: Signature
    first_seen: float
    last_seen: float
    runs: dict[RunKey, tuple[float, str]] = field(default_factory=dict)
    """Failures inside the horizon: run key -> (when, job)."""
    order: list[tuple[float, RunKey, str]] = field(default_factory=list)
    """The same, by (when, key): a window's failures are a slice of it."""

    def put(self, key: RunKey, at: float, job: str) -> None:
        self.drop(key)
        self.runs[key] = (at, job)
        bisect.insort(self.order, (at, key, job))

    def drop(self, key: RunKey) -> None:
        old = self.runs.pop(key, None)
        if old is not None:
            place = (old[0], key, old[1])
            at = bisect.bisect_left(self.order, place)
            if at < len(self.order) and self.order[at] == place:
                del self.order[at]

    def since(self, start: float) -> list[tuple[float, RunKey, str]]:
        return self.order[bisect.bisect_left(self.order, (start,)) :]


@dataclass(slots=True)
class Touched:
    """What one batch changed: the screens recompute only these."""

    jobs: set[JobKey] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.jobs or self.groups)

    def update(self, other: Touched) -> None:
        self.jobs |= other.jobs
        self.groups |= other.groups


class TriageIndex:
    """Jobs, failure groups and slowness, kept up to date batch by batch."""

    def __init__(
        self,
        *,
        kinds: Mapping[str, str] | None = None,
        horizon_s: float = HORIZON_S,
        history: int = HISTORY,
        clock: Callable[[], float] = time.time,
        late_of: LateOf = no_lateness,
    ) -> None:
        self.kinds = dict(kinds or {})
        """Row source -> kind of source (``sqlite``, ``letta``, …) for signatures;
        a source not named is of ``default_kind``, else its own kind."""
        self.default_kind: str | None = None
        self.horizon_s = horizon_s
        self.history = history
        self.clock = clock
        self.late_of = late_of
        self._jobs: dict[JobKey, _Job] = {}
        self._groups: dict[str, _Group] = {}
        self._run_group: dict[RunKey, str] = {}
        """Which group each failure in the horizon is counted in."""
        self._seen_before: dict[str, float] = {}
        """Signatures seen before what the index holds (a store's older failures)."""
        self._summaries: dict[JobKey, tuple[float, int, JobSummary]] = {}
        self._slow: dict[RunKey, tuple[int, float, str | None]] = {}
        self._pruned_at = 0.0
        self.version = 0
        """Bumped by every batch that changed something."""

    # -- feeding --------------------------------------------------------------------

    def apply(self, rows: Iterable[RunRow]) -> Touched:
        """Merge changed rows; returns the jobs and groups they touched."""
        touched = Touched()
        cutoff = self.clock() - self.horizon_s
        for row in rows:
            if row.error is not None:
                continue  # an unreadable record belongs to no job
            self._apply_one(row, cutoff, touched)
        if touched:
            self.version += 1
        now = self.clock()
        if now - self._pruned_at > 60.0:
            self._pruned_at = now
            touched.groups |= self._prune(cutoff)
        return touched

    def _apply_one(self, row: RunRow, cutoff: float, touched: Touched) -> None:
        jk = (row.source, job_name(row))
        job = self._jobs.get(jk)
        if job is None:
            job = self._jobs[jk] = _Job(row.source, jk[1])
        rid = row.id
        job.forget(rid)
        job.active.pop(rid, None)
        if not row.deleted:
            if row.status.is_active:
                job.active[rid] = row
            else:
                at = when(row)
                if len(job.order) < self.history or at > job.order[0][0]:
                    job.add(_Entry(at, rid, row.status, row.duration_ms), self.history)
                if row.status is Status.SUCCEEDED:
                    job.last_success = max(job.last_success or at, at)
        job.version += 1
        touched.jobs.add(jk)
        self._group_row(row, cutoff, touched)

    def _group_row(self, row: RunRow, cutoff: float, touched: Touched) -> None:
        key = row.key
        failed = row.status in FAULTS and not row.deleted
        old = self._run_group.get(key)
        sig = self.signature_of(row) if failed else None
        if old is not None and (sig is None or sig.key != old):
            group = self._groups.get(old)
            if group is not None:
                group.drop(key)
                touched.groups.add(old)
            del self._run_group[key]
        if sig is None:
            return
        at = when(row)
        group = self._groups.get(sig.key)
        if group is None:
            first = min(at, self._seen_before.get(sig.key, at))
            group = self._groups[sig.key] = _Group(sig, first, at)
        group.first_seen = min(group.first_seen, at)
        group.last_seen = max(group.last_seen, at)
        if at >= cutoff:
            group.put(key, at, job_name(row))
            self._run_group[key] = sig.key
        touched.groups.add(sig.key)

    def signature_of(self, row: RunRow) -> Signature:
        kind = self.kinds.get(row.source) or self.default_kind or row.source
        return signature(kind, row.problem, row.message)

    def signature_of_parts(
        self, source: str, problem: str | None, message: str | None
    ) -> Signature:
        """As :meth:`signature_of`, for a store's raw columns (the message cut and
        redacted as a row's is, so the two agree)."""
        kind = self.kinds.get(source) or self.default_kind or source
        return signature(kind, problem, short_message(message))

    def seen_before(self, signatures: Iterable[tuple[Signature, float]]) -> None:
        """Signatures a store had before the failures it handed over (with when
        each was first seen): what tells a new failure from an old one."""
        for sig, first in signatures:
            known = self._seen_before.get(sig.key)
            self._seen_before[sig.key] = first if known is None else min(known, first)
            group = self._groups.get(sig.key)
            if group is not None:
                group.first_seen = min(group.first_seen, first)

    def _prune(self, cutoff: float) -> set[str]:
        """Drop failures older than the horizon (the groups' first/last stay)."""
        changed: set[str] = set()
        for name, group in self._groups.items():
            old = [k for _, k, _ in group.order[: bisect.bisect_left(group.order, (cutoff,))]]
            for k in old:
                group.drop(k)
                self._run_group.pop(k, None)
            if old:
                changed.add(name)
        return changed

    # -- reading --------------------------------------------------------------------

    def job_keys(self) -> list[JobKey]:
        return list(self._jobs)

    def jobs(self, now: float | None = None, window_s: float = WINDOW_S) -> list[JobSummary]:
        """Every job's summary, newest activity first."""
        now = self.clock() if now is None else now
        out = [self.summary(k, now, window_s) for k in self._jobs]
        found = [s for s in out if s is not None]
        found.sort(key=lambda s: (-(s.last_at or 0.0), s.source, s.job))
        return found

    def summary(
        self, key: JobKey, now: float | None = None, window_s: float = WINDOW_S
    ) -> JobSummary | None:
        job = self._jobs.get(key)
        if job is None:
            return None
        now = self.clock() if now is None else now
        cached = self._summaries.get(key)
        if cached is not None and cached[1] == job.version and now - cached[0] < SUMMARY_TTL_S:
            made = cached[2]
        else:
            made = self._summarize(job, now, window_s)
            self._summaries[key] = (now, job.version, made)
        made.late = self.late_of(key)  # moves with the clock, not with the runs: never cached
        return made

    def tally(self) -> tuple[int, int, int]:
        """``(jobs, failing now, active runs)`` for a screen's headline, from the
        kept state alone: no summary is computed (a busy poll touches hundreds)."""
        failing = active = 0
        for job in self._jobs.values():
            active += len(job.active)
            if not job.active and job.order and job.order[-1][2].status.is_fault:
                failing += 1
        return len(self._jobs), failing, active

    def _summarize(self, job: _Job, now: float, window_s: float) -> JobSummary:
        entries = job.order
        recent = job.newest(SPARK)
        start = now - window_s
        wins = job.wins[job.at_or_after(start) :]
        ok = wins.count(1)
        outcomes = ok + wins.count(0)
        durations = job.baseline
        last_status: Status | None = None
        last_at: float | None = None
        if job.active:
            newest = max(job.active.values(), key=lambda r: r.started_at or r.created_at or 0.0)
            last_status, last_at = newest.status, newest.started_at or newest.created_at
        elif recent:
            last_status, last_at = recent[-1].status, recent[-1].at
        return JobSummary(
            source=job.source,
            job=job.name,
            last_status=last_status,
            last_at=last_at,
            active=len(job.active),
            runs_in_window=len(wins),
            window_full=len(entries) >= self.history and entries[0][0] >= start,
            success_rate=ok / outcomes if outcomes else None,
            p50_ms=percentile(durations, 0.5),
            p95_ms=percentile(durations, 0.95),
            spark=tuple([(e.duration_ms, e.status) for e in recent]),
            last_success_at=job.last_success,
            trend=_trend(job, now),
        )

    def failures(self, since: float, now: float | None = None) -> list[FailureGroup]:
        """Failure groups with a failure at or after ``since``, most failures first."""
        found = [g for name in self._groups if (g := self.group(name, since)) is not None]
        found.sort(key=lambda g: (-g.count, -g.last_seen, g.text))
        return found

    def group(self, name: str, since: float) -> FailureGroup | None:
        group = self._groups.get(name)
        if group is None:
            return None
        inside = group.since(since)
        if not inside:
            return None
        inside.reverse()
        first = min(group.first_seen, self._seen_before.get(name, group.first_seen))
        return FailureGroup(
            signature=group.sig,
            count=len(inside),
            first_seen=first,
            last_seen=inside[0][0],
            jobs=tuple(sorted({job for _, _, job in inside})),
            example=inside[0][1],
            keys=tuple(k for _, k, _ in inside[:GROUP_KEYS]),
            new=first >= since,
        )

    def group_of(self, key: RunKey) -> str | None:
        """The group a failure in the horizon is counted in."""
        return self._run_group.get(key)

    def slowness(self, row: RunRow, now: float | None = None) -> str | None:
        """``"3.2x this job's median"`` (with a real times sign) when the run took
        (or, running, has taken) at least :data:`SLOW_FACTOR` times its job's p50
        and more than its p95, judged against at least :data:`MIN_EARLIER` earlier
        succeeded runs."""
        job = self._jobs.get((row.source, job_name(row)))
        if job is None:
            return None
        running = row.status.is_active
        if not running:
            cached = self._slow.get(row.key)
            if cached is not None and cached[0] == job.version:
                return cached[2]
        now = self.clock() if now is None else now
        elapsed = row.elapsed_ms(now)
        said: str | None = None
        if elapsed is not None and elapsed > 0:
            if running:
                earlier = job.baseline
            else:
                at = when(row)
                earlier = sorted(
                    [ms for p in job.order if p[0] < at and p[1] != row.id and (ms := p[2].ok)]
                )
            said = _slow_text(elapsed, earlier)
        if not running:
            if len(self._slow) > 50_000:
                self._slow.clear()
            self._slow[row.key] = (job.version, now, said)
        return said


def _slow_text(elapsed: float, earlier: list[float]) -> str | None:
    if len(earlier) < MIN_EARLIER:
        return None
    p50 = percentile(earlier, 0.5)
    p95 = percentile(earlier, 0.95)
    if not p50 or p95 is None or elapsed < SLOW_FACTOR * p50 or elapsed <= p95:
        return None
    return f"{elapsed / p50:.1f}\N{MULTIPLICATION SIGN} this job's median"


def _trend(job: _Job, now: float) -> str | None:
    """One phrase for where a job is heading: a failure streak first, else the
    week's p50 against the week before."""
    streak = 0
    for place in reversed(job.order):
        if place[2].status in FAULTS:
            streak += 1
        else:
            break
    if streak >= 2:
        return f"{streak} failed in a row"
    said = "failed" if streak == 1 else None
    order, oks = job.order, job.oks
    lo = bisect.bisect_left(order, (now - 2 * WEEK_S,))
    mid = bisect.bisect_left(order, (now - WEEK_S,), lo)
    kept = job.week_before
    if kept is not None and kept[:2] == (lo, mid) and job.changed_from >= now - WEEK_S:
        then_p50 = kept[2]  # nothing in the week before changed: its p50 stands
    else:
        week_before = sorted([ms for ms in oks[lo:mid] if ms is not None])
        then_p50 = percentile(week_before, 0.5) if len(week_before) >= TREND_MIN_RUNS else None
        job.week_before = (lo, mid, then_p50)
    job.changed_from = float("inf")
    if then_p50 is None:
        return said
    this_week = sorted([ms for ms in oks[mid:] if ms is not None])
    if len(this_week) < TREND_MIN_RUNS:
        return said
    now_p50 = percentile(this_week, 0.5)
    if not now_p50 or not then_p50:
        return said
    pct = round((now_p50 - then_p50) / then_p50 * 100)
    if abs(pct) < TREND_MIN_PCT:
        return said
    return f"p50 {pct:+d} % vs the week before"
