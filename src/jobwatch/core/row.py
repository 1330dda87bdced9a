"""The light record the runs table is built from.

Validating a full :class:`Run` costs tens of microseconds, which is seconds at
100k runs; the table only needs a dozen scalar fields. The store reads these
straight from indexed columns, other sources derive them with :meth:`from_run`,
and the detail pane fetches the full run only for the selected row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobwatch.core.status import Status

if TYPE_CHECKING:
    from jobwatch.core.run import Run

MESSAGE_CHARS = 300
"""Characters of an error message a row carries: enough to tell failures apart,
little enough that 100k rows stay a few MB."""


def short_message(text: str | None) -> str | None:
    """An error message as a row carries it: redacted and cleaned first (a secret is
    masked whole, never cut in two and then missed), then cut."""
    if not text:
        return None
    from jobwatch.core.redact import clean

    return clean(text)[:MESSAGE_CHARS] or None


@dataclass(slots=True)
class RunRow:
    """Treated as immutable; not ``frozen`` because frozen dataclasses construct
    about three times slower, which is most of the cost of loading 100k rows."""

    source: str
    id: str
    job: str | None
    label: str | None
    status: Status
    status_raw: str | None
    created_at: float | None
    """Epoch seconds: cheap to compare, sort and turn into "3m ago"."""
    started_at: float | None
    ended_at: float | None
    duration_ms: float | None
    total: int | None
    succeeded: int | None
    failed: int | None
    partial: bool
    archived: bool
    problem: str | None
    """The error code, else the reason type: what went wrong in one word."""
    aborting: bool = False
    deleted: bool = False
    """The system no longer has it (see :attr:`Run.deleted`)."""
    error: str | None = None
    """Set when the record could not be read: the row shows this instead of data."""
    message: str | None = None
    """The start of the run's error message (:data:`MESSAGE_CHARS`), redacted: what
    failure groups are told apart by (``jobwatch.triage.signature``)."""
    stuck_since: float | None = None
    """Set on a running run found stuck (``triage/stuck.py``): its last sign of life.
    Not from the store: the monitor stamps it after each check."""

    @property
    def stuck(self) -> bool:
        return self.stuck_since is not None and self.status is Status.RUNNING

    @property
    def key(self) -> tuple[str, str]:
        """Runs of different sources may share an id; the pair never collides."""
        return (self.source, self.id)

    def elapsed_ms(self, now: float) -> float | None:
        if self.duration_ms is not None:
            return self.duration_ms
        if self.started_at is None or (self.ended_at is None and not self.status.is_active):
            return None  # over without a known end: unknown, not ticking
        return max(0.0, ((self.ended_at or now) - self.started_at) * 1000.0)

    @classmethod
    def from_run(cls, run: Run, *, aborting: bool = False) -> RunRow:
        p = run.progress
        problem = (run.error.code if run.error else None) or (
            run.reason.type if run.reason else None
        )
        meta = run.metadata or {}
        return cls(
            source=run.source,
            id=run.id,
            job=run.job,
            label=run.label,
            status=run.status,
            status_raw=run.status_raw,
            created_at=run.created_at.timestamp() if run.created_at else None,
            started_at=run.started_at.timestamp() if run.started_at else None,
            ended_at=run.ended_at.timestamp() if run.ended_at else None,
            duration_ms=run.duration_ms,
            total=p.total if p else None,
            succeeded=p.succeeded if p else None,
            failed=p.failed if p else None,
            partial=run.partial,
            archived=run.archived,
            problem="deleted" if run.deleted else problem,
            aborting=aborting or bool(meta.get("abort_requested_at")),
            deleted=run.deleted,
            message=short_message(run.error.message if run.error else None),
        )

    @classmethod
    def broken(cls, source: str, run_id: str, message: str) -> RunRow:
        """A visible row for a record that could not be read (nothing is dropped)."""
        return cls(
            source=source,
            id=run_id,
            job=None,
            label=None,
            status=Status.UNKNOWN,
            status_raw=None,
            created_at=None,
            started_at=None,
            ended_at=None,
            duration_ms=None,
            total=None,
            succeeded=None,
            failed=None,
            partial=False,
            archived=False,
            problem="unreadable",
            error=message,
        )
