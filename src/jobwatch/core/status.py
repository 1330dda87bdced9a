"""The normalized run status every source is translated into."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a run is in its life, whatever system it came from.

    ``archived`` is deliberately not a status: it is a separate flag so that
    archiving never hides (and can always undo back to) the final outcome.
    """

    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"
    UNKNOWN = "unknown"

    @property
    def is_active(self) -> bool:
        """Not finished yet: it may still change (and may be aborted)."""
        return self in ACTIVE

    @property
    def is_terminal(self) -> bool:
        """Finished with a known outcome."""
        return self in TERMINAL

    @property
    def is_fault(self) -> bool:
        """Worth a human's attention at 2 a.m."""
        return self in FAULTS


ACTIVE = frozenset({Status.NEW, Status.QUEUED, Status.RUNNING, Status.PAUSED})
TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.ABORTED, Status.TIMED_OUT})
FAULTS = frozenset({Status.FAILED, Status.TIMED_OUT, Status.UNKNOWN})
