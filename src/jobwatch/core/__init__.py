"""Headless data model: runs, statuses and the transition rules.

The pydantic models (:mod:`jobwatch.core.run`) load on first use: importing
pydantic and building the models takes about 0.1 s, which the monitor's first
paint does not need, as the runs table is drawn from :class:`RunRow`. A test
keeps pydantic off the monitor's start path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobwatch.core.clock import utcnow
from jobwatch.core.row import RunRow
from jobwatch.core.rules import Action, allowed, check, refusal
from jobwatch.core.status import ACTIVE, FAULTS, TERMINAL, Status

if TYPE_CHECKING:
    from jobwatch.core.run import (
        Callback,
        LogLine,
        Progress,
        Reason,
        RecordError,
        Run,
        RunError,
    )

_LAZY = frozenset({"Callback", "LogLine", "Progress", "Reason", "RecordError", "Run", "RunError"})

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


def __getattr__(name: str) -> Any:
    """Load the pydantic models when one is first asked for (PEP 562)."""
    if name in _LAZY:
        from jobwatch.core import run

        value = getattr(run, name)
        globals()[name] = value  # later lookups are plain attribute hits
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
