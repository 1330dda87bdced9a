"""Quitting while a query runs: psycopg's word about it stays off the terminal.

Textual cancels the monitor's workers at quit and ``asyncio.run`` cancels what is
left; a query cancelled twice made psycopg log "query cancellation interrupted
(CancelledError): closing connection", which reached the user's terminal on stderr
just after the screen was restored (seen after every quit of a monitor over a
1M-run store whose jobs index was still loading).
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from jobwatch.sources.postgres.store import PostgresStore

WAIT_S = 10.0


async def _until_active(dsn: str, text: str) -> None:
    """Wait (bounded) until the server runs a query containing ``text``."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        for _ in range(int(WAIT_S / 0.01)):
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                (f"%{text}%",),
            )
            row = await cur.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"the query {text!r} never started")


async def test_a_query_cancelled_twice_at_quit_logs_nothing(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with PostgresStore(pg_dsn) as store:

        async def slow() -> None:
            async with store._conn() as conn:
                await conn.execute("SELECT pg_sleep(30) /* quit-probe */")

        task = asyncio.create_task(slow())
        await _until_active(pg_dsn, "quit-probe")
        task.cancel()
        for _ in range(3):  # into psycopg's own cancellation of the query
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    words = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("psycopg") and r.levelno >= logging.WARNING
    ]
    assert words == []
