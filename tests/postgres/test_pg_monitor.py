"""The monitor (the real Textual app) over a PostgreSQL store: its first screen
from the store, and a change written by another process shown by push, with the
monitor's own timer at an hour."""

from __future__ import annotations

from conftest import wait_for_async
from jobwatch.core import Status
from jobwatch.sources.postgres.store import PostgresStore
from tui_support import make_app, ready, seed_runs


async def test_monitor_shows_a_change_pushed_by_another_host(pg_dsn: str) -> None:
    runs = seed_runs()
    async with PostgresStore(pg_dsn) as writer:
        await writer.add_many(runs)
        source = PostgresStore(pg_dsn, mode="write")
        source.pace = 3600.0
        app = make_app(source, refresh=3600)
        async with app.run_test(size=(140, 40)) as pilot:
            await ready(app, pilot)
            assert {key[1] for key in app.runs.rows} == {run.id for run in runs}
            running = next(run for run in runs if run.status is Status.RUNNING)
            await wait_for_async(lambda: source._listener.connected.is_set())
            await writer.add(running.evolve(status=Status.FAILED))
            key = next(k for k in app.runs.rows if k[1] == running.id)
            await wait_for_async(lambda: app.runs.rows[key].status is Status.FAILED, timeout=30)
            assert app.poller.pushes >= 1
        await source.close()
