"""Which two runs a snapshot diff compares, and the diff itself, for every front end.

``jobwatch diff RUN`` and the monitor's ``D`` compare RUN with the last run of the
same job (in the same source) that succeeded before RUN started: "what changed
since it last worked?". The comparison itself is :mod:`jobwatch.core.snapshot_diff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobwatch.core import Status
from jobwatch.core.fingerprints import read_fingerprints
from jobwatch.core.redact import clean
from jobwatch.core.snapshot_diff import SnapshotDiff, diff_snapshots
from jobwatch.sources.protocol import ListQuery, Source

if TYPE_CHECKING:
    from jobwatch.core import Run

__all__ = ["Compared", "baseline", "compare"]

_FIRST_LOOK = 200
"""Succeeded runs of the job read first; all of them only if none is older."""


def _start(run: Run) -> datetime | None:
    return run.started_at or run.created_at


async def baseline(source: Source, run: Run) -> Run | None:
    """The last succeeded run of ``run``'s job, same source, started before it."""
    if run.job is None:
        return None
    start = _start(run)
    for limit in (_FIRST_LOOK, None):
        query = ListQuery(
            statuses=(Status.SUCCEEDED.value,),
            jobs=(run.job,),
            run_sources=(run.source,),
            include_archived=True,
            limit=limit,
        )
        runs, _errors = await source.list_runs(query)
        for other in runs:  # newest first
            when = _start(other)
            if other.id == run.id or other.status is not Status.SUCCEEDED:
                continue
            if start is None or when is None or when < start:
                return other
        if limit is None or len(runs) < limit:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Compared:
    run: Run
    other: Run | None
    chosen: bool
    """Whether OTHER was named by the user (else found by :func:`baseline`)."""
    diff: SnapshotDiff

    def header(self) -> list[str]:
        """What is compared with what, in words (ids and job cleaned)."""
        run = self.run
        lines = [f"snapshot of {clean(run.id)} ({clean(run.job or '-')}, {run.status.value})"]
        if self.other is None:
            lines.append(
                "nothing to compare with: no earlier succeeded run of the same job"
                if not self.chosen
                else "nothing to compare with"
            )
            return lines
        why = "" if self.chosen else ", the last succeeded run of the same job before it"
        other = self.other
        lines.append(f"against {clean(other.id)} ({other.status.value}{why})")
        for side in (run, other):
            if side.config is None:
                lines.append(f"{clean(side.id)} has no configuration snapshot")
        unsalted = (
            read_fingerprints(other.metadata) is None or read_fingerprints(run.metadata) is None
        )
        if unsalted and self.diff.not_comparable:
            lines.append(
                "secrets without fingerprints (another source or store) cannot be "
                "compared: a redacted value that reads the same is not known to be unchanged"
            )
        return lines

    def text_lines(self) -> list[str]:
        lines = [*self.header(), ""]
        if self.other is None:
            return lines[:-1]
        lines += self.diff.tree_lines()
        if self.diff.changes:
            lines.append("")
        lines.append(self.diff.summary())
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "run": clean(self.run.id),
            "other": clean(self.other.id) if self.other is not None else None,
            "other_chosen": self.chosen,
            **self.diff.as_json(),
        }


def _diff(run: Run, other: Run | None) -> SnapshotDiff:
    if other is None:
        return SnapshotDiff(())
    return diff_snapshots(
        other.config,
        run.config,
        old_fps=read_fingerprints(other.metadata),
        new_fps=read_fingerprints(run.metadata),
    )


async def compare(source: Source, run: Run, other: Run | None = None) -> Compared:
    """RUN against OTHER, or against its :func:`baseline` when OTHER is not given."""
    chosen = other is not None
    if other is None:
        other = await baseline(source, run)
    return Compared(run, other, chosen, _diff(run, other))
