"""Push: one dedicated connection that ``LISTEN``s for state changes.

It runs as a background task for the source's lifetime and sets an event on
every notification, so :meth:`PostgresStore.wait_change` is a plain event wait
(cancelling it, as the poller does when its timer wins, never cancels a read
on the connection). After every (re)connect the event is set too: the poller
then catches up from its cursor, so nothing written while the connection was
down is missed. A dropped connection is retried with back-off; the slow poll
(the source's pace) goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from jobwatch.sources.postgres.connect import full_dsn
from jobwatch.sources.postgres.schema import CHANNEL

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0
"""How long one wait for notifications lasts before the connection is checked."""
BACKOFF_S = (0.2, 10.0)
MAX_ROUNDS = 10_000_000


class Listener:
    """Sets :attr:`changed` on each notification on ``channel`` (default
    :data:`CHANNEL`; a wrapper listens on its host's commands channel)."""

    def __init__(self, dsn: str, channel: str = CHANNEL) -> None:
        self.dsn = dsn
        self.channel = channel
        self.changed = asyncio.Event()
        self.notified = 0
        """Notifications received (what tests and the bench read)."""
        self.connects = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobwatch-pg-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _run(self) -> None:
        delay = BACKOFF_S[0]
        for _ in range(MAX_ROUNDS):
            try:
                conn = await psycopg.AsyncConnection.connect(full_dsn(self.dsn), autocommit=True)
            except psycopg.Error:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self.connects += 1
                self.connected.set()
                self.changed.set()  # catch up on what happened while away
                delay = BACKOFF_S[0]
                await self._receive(conn)
            except psycopg.Error as exc:
                log.debug("listen connection lost: %s", exc)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(delay)

    async def _receive(self, conn: psycopg.AsyncConnection[object]) -> None:
        for _ in range(MAX_ROUNDS):
            async for _note in conn.notifies(timeout=CHECK_EVERY_S):
                self.notified += 1
                self.changed.set()
            await conn.execute("SELECT 1")  # a dead server shows here, not as silence

    async def wait(self) -> None:
        """Return at the next notification (or reconnect), then re-arm."""
        self.start()
        await self.changed.wait()
        self.changed.clear()
