"""The one interface every run source implements: local store, HTTP client, vendors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from jobwatch.core import LogLine, RecordError, Run


@dataclass(slots=True)
class ChangeSet:
    """What changed since a cursor: the first sync and every later poll look alike."""

    runs: list[Run]
    cursor: int | str | None
    errors: list[RecordError] = field(default_factory=list)
    more: bool = False


@dataclass(slots=True, frozen=True)
class LogBounds:
    """First and last sequence numbers of a run's log (0, 0 when it has none)."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return 0 if self.last == 0 else self.last - self.first + 1


@dataclass(slots=True, frozen=True)
class ActionResult:
    """What an abort/archive did: done now, or requested and left to the run's owner."""

    run: Run
    message: str


@runtime_checkable
class Source(Protocol):
    """A place runs come from. Implementations translate; they never decide rules."""

    name: str
    read_only: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """Runs changed after ``cursor`` (``None`` = everything) and the next cursor."""
        ...

    async def get(self, run_id: str) -> Run: ...

    async def log_bounds(self, run_id: str) -> LogBounds: ...

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        """Lines with ``seq > after`` in order, at most ``limit`` of them."""
        ...

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        """The last ``count`` lines, in order."""
        ...

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        """Seq of the next line after (or before) ``start`` containing ``needle``
        (case-insensitive), so search never loads the whole log."""
        ...

    async def first_error(self, run_id: str) -> int | None:
        """Seq of the first line whose level is ``error``."""
        ...

    async def abort(self, run_id: str, by: str) -> ActionResult: ...

    async def archive(self, run_id: str) -> ActionResult: ...

    async def unarchive(self, run_id: str) -> ActionResult: ...
