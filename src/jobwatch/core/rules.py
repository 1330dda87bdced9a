"""The one place that decides which runs may be aborted, archived or unarchived.

Stores, HTTP servers, vendor adapters, the CLI and the TUI all ask here; none of
them carries its own copy of the rules, so a refusal reads the same everywhere.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from jobwatch.core.errors import TransitionRefused
from jobwatch.core.status import Status


class HasState(Protocol):
    """What the rules look at: a full :class:`Run` or a table row both qualify."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> Status: ...

    @property
    def archived(self) -> bool: ...


class Action(StrEnum):
    ABORT = "abort"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"


# What may be aborted: anything that has not finished yet.
ABORTABLE = frozenset({Status.NEW, Status.QUEUED, Status.RUNNING, Status.PAUSED})
# What may be archived: finished runs, plus ``unknown`` ones. A lost run can never
# finish by itself, so refusing to archive it would leave it on screen forever.
ARCHIVABLE = frozenset(
    {Status.SUCCEEDED, Status.FAILED, Status.ABORTED, Status.TIMED_OUT, Status.UNKNOWN}
)

_ENDED_AS = {
    Status.SUCCEEDED: "it has already succeeded",
    Status.FAILED: "it has already failed",
    Status.ABORTED: "it has already been aborted",
    Status.TIMED_OUT: "it has already timed out",
    Status.UNKNOWN: "its state is unknown (it was lost or its source cannot tell)",
}
_STILL = {
    Status.NEW: "it has not started yet",
    Status.QUEUED: "it is still queued",
    Status.RUNNING: "it is still running",
    Status.PAUSED: "it is paused, not finished",
}


def refusal(action: Action, run: HasState) -> str | None:
    """Why ``action`` may not be applied to ``run``, or None when it may."""
    status = run.status
    if action is Action.ABORT:
        if status in ABORTABLE:
            return None
        return f"cannot abort {run.id}: {_ENDED_AS.get(status, f'it is {status}')}"
    if action is Action.ARCHIVE:
        if run.archived:
            return f"cannot archive {run.id}: it is already archived"
        if status in ARCHIVABLE:
            return None
        return f"cannot archive {run.id}: {_STILL.get(status, f'it is {status}')}"
    if action is Action.UNARCHIVE:
        return None if run.archived else f"cannot unarchive {run.id}: it is not archived"
    raise ValueError(f"unknown action {action!r}")


def check(action: Action, run: HasState) -> None:
    """Raise :class:`TransitionRefused` with a readable message when not allowed."""
    message = refusal(action, run)
    if message is not None:
        raise TransitionRefused(message)


def allowed(action: Action, run: HasState) -> bool:
    return refusal(action, run) is None
