"""Whether a run's problem word (its error code, else its reason type) is a problem.

A reason is not always bad news: Letta says ``end_turn`` for a run that ended
normally, Intuned ``user-request`` for a pause somebody asked for, and a run a
person aborted is aborted on purpose. Drawn in the error colour, those hide the
real faults, so the monitor (and anything else that colours problems) asks here.
The lists follow ``shared/reference/vendor-apis.md``; anything not in them, and
anything on a failed, timed-out or unknown run, counts as a fault.
"""

from __future__ import annotations

from enum import Enum

from jobwatch.core.row import RunRow
from jobwatch.core.status import Status


class Severity(Enum):
    FAULT = "fault"
    """Something went wrong: the error colour."""
    NOTICE = "notice"
    """Worth a look, not a failure (Letta ``max_steps``, ``requires_approval``)."""
    NORMAL = "normal"
    """How runs end when nothing is wrong, or what a person asked for."""


NORMAL_REASONS: frozenset[str] = frozenset(
    {
        # Letta stop reasons whose run status is "completed" when nothing is wrong,
        # and a cancel (asked for through the API).
        "end_turn",
        "tool_rule",
        "cancelled",
        # Anthropic-style stop reasons some agents pass through.
        "stop_sequence",
        # Intuned: paused or terminated at the user's request.
        "user-request",
        "terminated",
        # Salesforce AiJobRun aborted by the user.
        "user_abort",
        # Modzy CANCELED.
        "canceled",
        # jobwatch's own: aborted by a person, or an abort that came after the end.
        "aborted",
        "abort-late",
    }
)

NOTICE_REASONS: frozenset[str] = frozenset(
    {
        # Letta: the agent waits for a tool call to be approved / hit its step limit.
        "requires_approval",
        "max_steps",
        # Matatika STOPPED: a timeout or a manual stop, it does not say which.
        "stopped",
    }
)

_FAULT_STATUSES = frozenset({Status.FAILED, Status.TIMED_OUT, Status.UNKNOWN})


def severity(problem: str | None, status: Status) -> Severity | None:
    """How bad ``problem`` is on a run in ``status``; None when there is none."""
    if not problem:
        return None
    if status in _FAULT_STATUSES:
        return Severity.FAULT
    word = problem.strip().lower()
    if word in NORMAL_REASONS:
        return Severity.NORMAL
    if word in NOTICE_REASONS:
        return Severity.NOTICE
    return Severity.FAULT


def row_severity(row: RunRow) -> Severity | None:
    """:func:`severity` of a table row's problem column (a stuck run is a fault)."""
    if row.stuck:
        return Severity.FAULT
    return severity(row.problem, row.status)
