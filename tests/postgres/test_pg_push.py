"""Push: a LISTENing poller is woken by the writer's NOTIFY, not by its timer."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from test_pg_store import make_run

from conftest import wait_for_async
from jobwatch.core import RunRow, Status
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import PostgresStore

NEVER_S = 3600.0
"""The poller's timer and the source's fallback pace: far beyond the test's own
timeout, so a change seen at all was seen because of its notification."""


async def test_notify_wakes_the_poller_not_its_timer(pg_dsn: str) -> None:
    seen: dict[str, RunRow] = {}

    def take(_feed: Any, rows: list[RunRow], _first: bool) -> None:
        seen.update((row.id, row) for row in rows)

    watcher = PostgresStore(pg_dsn, mode="write")
    watcher.pace = NEVER_S
    poller = Poller([watcher], on_rows=take, refresh=NEVER_S)
    stop = asyncio.Event()
    async with PostgresStore(pg_dsn) as writer:
        await writer.add(make_run(1, Status.RUNNING))
        await poller.open(strict=True)
        task = asyncio.create_task(poller.run(stop=stop))
        try:
            await wait_for_async(lambda: "run-0001" in seen)  # the first sync
            await wait_for_async(lambda: watcher._listener.connected.is_set())
            polls, pushes = poller.polls, poller.pushes
            await writer.add(make_run(1, Status.FAILED))
            await wait_for_async(lambda: seen["run-0001"].status is Status.FAILED, timeout=30)
            assert poller.pushes > pushes and poller.polls > polls
            assert watcher.notified >= 1
        finally:
            stop.set()
            poller.wake()
            await asyncio.wait_for(task, 30)
            await poller.close()


async def test_without_push_the_same_poller_waits_for_its_timer(pg_dsn: str) -> None:
    """The control: a source that does not push leaves the poller asleep, so the
    test above fails without the poller's hook."""
    seen: dict[str, RunRow] = {}

    def take(_feed: Any, rows: list[RunRow], _first: bool) -> None:
        seen.update((row.id, row) for row in rows)

    class Silent(PostgresStore):
        CAPABILITIES = dataclasses.replace(PostgresStore.CAPABILITIES, push=False)

    watcher = Silent(pg_dsn, mode="write")
    watcher.pace = NEVER_S
    poller = Poller([watcher], on_rows=take, refresh=NEVER_S)
    stop = asyncio.Event()
    async with PostgresStore(pg_dsn) as writer:
        await writer.add(make_run(1, Status.RUNNING))
        await poller.open(strict=True)
        task = asyncio.create_task(poller.run(stop=stop))
        try:
            await wait_for_async(lambda: "run-0001" in seen)
            await writer.add(make_run(1, Status.FAILED))
            await asyncio.sleep(1.0)  # a window for a wrong wake-up, not a timing claim
            assert seen["run-0001"].status is Status.RUNNING
            assert poller.pushes == 0
        finally:
            stop.set()
            poller.wake()
            await asyncio.wait_for(task, 30)
            await poller.close()
