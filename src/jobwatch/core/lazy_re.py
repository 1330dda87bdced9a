"""Regular expressions compiled on first use, for modules that hold many.

``redact`` holds some fifty secret shapes and ``triage.signature`` a dozen
placeholders; compiling them at import cost 25-35 ms of CPU at every start of
every verb (the monitor's first paint included), and most processes use few or
none of them before their first screen is drawn.
"""

from __future__ import annotations

import re
from collections.abc import Callable


class LazyPattern:
    """A pattern compiled on its first use; only the methods jobwatch calls."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    def _get(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled

    def sub(self, repl: str | Callable[[re.Match[str]], str], text: str) -> str:
        return self._get().sub(repl, text)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self._get().search(text, pos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self._get().match(text, pos)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self._get().fullmatch(text)

    def split(self, text: str) -> list[str]:
        return self._get().split(text)
