"""Config for what happens live: stuck runs, schedules, hooks, terminal notices.

Plain dataclasses (no pydantic), so a monitor without a config file pays nothing;
:mod:`jobwatch.config.schema` validates the file's ``stuck_after``,
``[[schedules]]``, ``[hooks]`` and ``terminal_notify`` into these.

Hook commands: a list is the argv, run as it is; a string is split like a shell
would split words (``shlex``) and still run **without** a shell, so nothing in it
is expanded. Who wants a shell writes it: ``["sh", "-c", "… | …"]``.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

TerminalNotify = Literal["off", "osc9", "osc777"]
DEFAULT_HOOK_TIMEOUT_S = 10.0
DEFAULT_STUCK_AFTER_S = 900.0

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_span(value: str | float | int, *, what: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1h"``, ``"2d"``, ``"1w"``."""
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _SPAN.match(value)
        if m is None:
            raise ValueError(f"{what} {value!r} is not a duration such as 90s, 10m, 1h or 2d")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} {value!r} must be a positive duration")
    return seconds


def hook_argv(command: str | list[str] | None) -> tuple[str, ...] | None:
    """The argv a hook runs (see the module's docstring); None when unset."""
    if command is None:
        return None
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise ValueError("a hook command must not be empty")
    return tuple(argv)


@dataclass(frozen=True)
class Hooks:
    on_failure: tuple[str, ...] | None = None
    on_late: tuple[str, ...] | None = None
    on_stuck: tuple[str, ...] | None = None
    timeout: float = DEFAULT_HOOK_TIMEOUT_S
    """Seconds a hook may take; then it (and its process group) is killed."""

    def argv(self, event: str) -> tuple[str, ...] | None:
        return {"failure": self.on_failure, "late": self.on_late, "stuck": self.on_stuck}.get(event)

    def __bool__(self) -> bool:
        return bool(self.on_failure or self.on_late or self.on_stuck)


@dataclass(frozen=True)
class ScheduleEntry:
    """One ``[[schedules]]`` entry: ``source`` is what the SOURCE column shows."""

    job: str
    source: str = "local"
    every_s: float | None = None
    cron: str | None = None
    grace_s: float = 0.0


@dataclass(frozen=True)
class LiveConfig:
    stuck_after: float = DEFAULT_STUCK_AFTER_S
    schedules: tuple[ScheduleEntry, ...] = ()
    hooks: Hooks = field(default_factory=Hooks)
    terminal_notify: TerminalNotify = "off"
