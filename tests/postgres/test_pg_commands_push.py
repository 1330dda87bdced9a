"""An abort reaches its wrapper by a NOTIFY on the host's commands channel, not
by the wrapper's poll: the wait wakes long before its fallback timer, only the
owner's host is woken, and a wrapper on a real ``jobwatch run`` is reached so
while its fallback poll is minutes away. Real server, real processes."""

from __future__ import annotations

import asyncio

from test_pg_hosts import PY, STOPPABLE, running, stop_group, wrapper

from jobwatch.apps import runner
from jobwatch.core import Run, Status, utcnow
from jobwatch.sources.postgres import schema
from jobwatch.sources.postgres.store import PostgresStore

FALLBACK_S = 600.0
"""Far longer than any wait below: a wake-up in time is the notification's doing."""


def test_each_host_has_a_channel_of_its_own() -> None:
    one, other = schema.commands_channel("host-a"), schema.commands_channel("host-b")
    assert one != other and one.startswith("jobwatch_cmd_")
    assert len(schema.commands_channel("h" * 500).encode()) <= 63  # a Postgres identifier


async def test_an_abort_wakes_the_owners_wait_not_the_others(pg_dsn: str) -> None:
    async with (
        PostgresStore(pg_dsn) as owner,
        PostgresStore(pg_dsn) as other,
        PostgresStore(pg_dsn) as monitor,
    ):
        owner.host, other.host, monitor.host = "host-a", "host-b", "host-c"
        run = Run(id="run-cmd-1", source="local", status=Status.RUNNING, created_at=utcnow())
        await owner.add(run, managed_by=12345)
        # the first wait connects its listener and returns at once (a catch-up)
        await owner.wait_command(FALLBACK_S)
        await other.wait_command(FALLBACK_S)
        woken = asyncio.create_task(owner.wait_command(FALLBACK_S))
        idle = asyncio.create_task(other.wait_command(FALLBACK_S))
        await asyncio.sleep(0.05)  # both are waiting
        await monitor.abort(run.id, "alice")
        await asyncio.wait_for(woken, 30)  # not the 600 s timer
        assert owner.command_notifies == 1
        assert await owner.abort_requested(run.id) == "alice"
        await asyncio.sleep(0.2)
        assert not idle.done() and other.command_notifies == 0
        idle.cancel()


async def test_a_wrapper_waits_on_its_channel_and_claims_the_abort(pg_dsn: str) -> None:
    """``jobwatch run`` on PostgreSQL waits on its host's channel (its slow poll
    is the fallback) and claims the command; the latency is bench_postgres.py's."""
    assert runner.COMMANDS_FALLBACK_S > runner.POLL_ABORT_EVERY_S
    proc = wrapper(pg_dsn, "host-w", PY, "-c", STOPPABLE, "/dev/null", job="pushed")
    try:
        async with PostgresStore(pg_dsn) as monitor:
            monitor.host = "host-m"
            run_id = await running(monitor, "pushed")
            await monitor.abort(run_id, "bob")
            status = None
            for _ in range(400):  # bounded: 40 s at most
                status = (await monitor.get(run_id)).status
                if status is Status.ABORTED:
                    break
                await asyncio.sleep(0.1)
            assert status is Status.ABORTED, "the abort never reached the wrapper"
            commands = await monitor.pending_commands(run_id)
            assert [(k, (c or "").split(":")[0], d) for k, c, d in commands] == [
                ("abort", "host-w", True)
            ]
        assert proc.wait(timeout=30) != 0
    finally:
        stop_group(proc)
