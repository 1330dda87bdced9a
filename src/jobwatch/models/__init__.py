"""Headless data model: runs, statuses and the transition rules."""

from jobwatch.models.row import RunRow
from jobwatch.models.run import (
    Callback,
    LogLine,
    Progress,
    Reason,
    RecordError,
    Run,
    RunError,
    utcnow,
)
from jobwatch.models.status import ACTIVE, FAULTS, TERMINAL, Status
from jobwatch.models.transitions import Action, allowed, check, refusal

__all__ = [
    "ACTIVE",
    "FAULTS",
    "TERMINAL",
    "Action",
    "Callback",
    "LogLine",
    "Progress",
    "Reason",
    "RecordError",
    "Run",
    "RunError",
    "RunRow",
    "Status",
    "allowed",
    "check",
    "refusal",
    "utcnow",
]
