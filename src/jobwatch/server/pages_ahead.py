"""The next ``/rows`` page of a first sync, read before the client asks for it.

A first sync of 100k rows is two pages of 50k; the server spends about 0.45 s
on each (reading the store, encoding ``rows/1``), and the client about as long
on decoding and drawing one. Read one after the other, the client waits for the
second page after it has drawn the first. So when a page says ``more``, the page
after it is read at once, on the server's own core, while the first travels and
is decoded; the client's request for it then finds it ready (or under way).

A page read ahead may be a few seconds old when it is handed out. Nothing is
lost by that: a run changed meanwhile has a newer revision than the cursor the
page ends at, so the next page (or poll) brings it again, as it is now. Bounded:
a few pages, each handed out once, dropped after ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Cursor = int | str | None


@dataclass(frozen=True, slots=True)
class Page:
    """An encoded answer and where it leaves the reader."""

    body: bytes
    cursor: Cursor
    more: bool


Reader = Callable[[Cursor, int], Awaitable[Page]]


class PagesAhead:
    """Hands out pages by ``(cursor, limit)``, reading the next one ahead."""

    def __init__(
        self,
        read: Reader,
        *,
        size: int = 4,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._ahead: dict[tuple[Cursor, int], tuple[float, asyncio.Task[Page]]] = {}
        self.hits = 0
        """Pages handed out from a read ahead: what tests and benchmarks count."""

    async def page(self, cursor: Cursor, limit: int) -> Page:
        """The page after ``cursor``; starts reading the one after it if there is more."""
        self._expire()
        found = self._ahead.pop((cursor, limit), None)
        page: Page | None = None
        if found is not None:
            with contextlib.suppress(Exception):  # read again now, with its own error
                page = await found[1]
                self.hits += 1
        if page is None:
            page = await self._read(cursor, limit)
        if page.more and self.size > 0:
            self._start(page.cursor, limit)
        return page

    def prefetch(self, cursor: Cursor, limit: int) -> None:
        """Start reading the page a client is about to ask for (after the newest
        rows of a first screen, the first page of its sync)."""
        self._expire()
        if self.size > 0:
            self._start(cursor, limit)

    def _start(self, cursor: Cursor, limit: int) -> None:
        key = (cursor, limit)
        if key in self._ahead:
            return
        while len(self._ahead) >= self.size:
            self._drop(next(iter(self._ahead)))
        task = asyncio.ensure_future(self._read(cursor, limit))
        task.add_done_callback(_retrieve)
        self._ahead[key] = (self._clock(), task)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, (at, _) in self._ahead.items() if now - at > self.ttl]:
            self._drop(key)

    def _drop(self, key: tuple[Cursor, int]) -> None:
        _, task = self._ahead.pop(key)
        task.cancel()

    def close(self) -> None:
        """Cancel every page still being read (the server is stopping)."""
        for key in list(self._ahead):
            self._drop(key)


def _retrieve(task: asyncio.Task[Page]) -> None:
    """A read ahead that failed or was dropped is not an error of its own."""
    if not task.cancelled():
        task.exception()
