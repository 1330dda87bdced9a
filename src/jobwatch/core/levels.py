"""The level of a log line, whatever words its source uses for it.

Vendors write ``warning``, ``WARN``, ``fatal`` or ``critical``; wrapped commands
print anything. Every line is given one of four levels when it is built, so the
log pane styles, the first-error jump and the store's index agree on them.
"""

from __future__ import annotations

from enum import StrEnum


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"

    @classmethod
    def of(cls, value: object) -> LogLevel:
        """The level a word names (``warning`` → warn, ``fatal`` → error); anything
        unknown is info, so a strange word never hides a line."""
        if isinstance(value, LogLevel):
            return value
        if not isinstance(value, str):
            return cls.INFO
        return _WORDS.get(value.strip().lower(), cls.INFO)


_WORDS: dict[str, LogLevel] = {
    "debug": LogLevel.DEBUG,
    "trace": LogLevel.DEBUG,
    "verbose": LogLevel.DEBUG,
    "info": LogLevel.INFO,
    "information": LogLevel.INFO,
    "notice": LogLevel.INFO,
    "warn": LogLevel.WARN,
    "warning": LogLevel.WARN,
    "error": LogLevel.ERROR,
    "err": LogLevel.ERROR,
    "fatal": LogLevel.ERROR,
    "critical": LogLevel.ERROR,
    "crit": LogLevel.ERROR,
    "alert": LogLevel.ERROR,
    "emergency": LogLevel.ERROR,
    "emerg": LogLevel.ERROR,
    "panic": LogLevel.ERROR,
}
