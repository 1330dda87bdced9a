"""Many machines on one real PostgreSQL: writer "hosts" are real ``jobwatch run``
processes with host ids of their own (``JOBWATCH_HOST_ID``), a third process
aborts through the commands table, a killed host's runs turn lost once, and a
server restart loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_pg_store import make_run

from conftest import wait_for_async
from jobwatch.core import RunRow, Status
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import HOST_ENV, PostgresStore

PY = sys.executable
STOPPABLE = (
    "import pathlib, signal, sys, time\n"
    "def stop(*_):\n"
    "    pathlib.Path(sys.argv[1]).write_text('TERM')\n"
    "    sys.exit(143)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('ready', flush=True)\n"
    "for _ in range(6000):\n"
    "    time.sleep(0.01)\n"
)


def env_for(dsn: str, host: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JOBWATCH_STORE"] = dsn
    env[HOST_ENV] = host
    return env


def wrapper(dsn: str, host: str, *command: str, job: str = "job") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "jobwatch", "run", "--job", job, "--grace", "5", "--", *command],
        env=env_for(dsn, host),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(dsn: str, host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "jobwatch", *args],
        env=env_for(dsn, host),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def running(store: PostgresStore, job: str) -> str:
    async def find() -> str | None:
        rows = await store._fetch(
            "SELECT id FROM runs WHERE job = %s AND status = 'running' "
            "AND heartbeat_at IS NOT NULL",
            (job,),
        )
        return str(rows[0][0]) if rows else None

    return str(await wait_for_async(find, timeout=30))


def stop_group(proc: subprocess.Popen[str], run: dict[str, Any] | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=30)
    pgid = ((run or {}).get("metadata") or {}).get("pgid")
    if isinstance(pgid, int):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


class Monitor:
    """A poller in rows mode, as the monitor runs it, with its rows by id."""

    def __init__(self, dsn: str) -> None:
        self.rows: dict[str, RunRow] = {}
        self.store = PostgresStore(dsn, mode="write")
        self.poller = Poller([self.store], on_rows=self._take, refresh=0.2)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _take(self, _feed: Any, rows: list[RunRow], _first: bool) -> None:
        for row in rows:
            self.rows[row.id] = row

    async def __aenter__(self) -> Monitor:
        await self.poller.open(strict=True)
        self.task = asyncio.create_task(self.poller.run(stop=self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)
        await self.poller.close()

    async def status(self, run_id: str, status: Status) -> RunRow:
        async def seen() -> RunRow | None:
            row = self.rows.get(run_id)
            return row if row is not None and row.status is status else None

        return await wait_for_async(seen, timeout=40)  # type: ignore[no-any-return]


async def test_two_hosts_write_and_one_monitor_sees_both(pg_dsn: str) -> None:
    async with Monitor(pg_dsn) as monitor:
        a = wrapper(pg_dsn, "host-a", PY, "-c", "print('from a'); raise SystemExit(0)", job="ja")
        b = wrapper(pg_dsn, "host-b", PY, "-c", "print('from b'); raise SystemExit(4)", job="jb")
        assert a.wait(timeout=60) == 0 and b.wait(timeout=60) == 4
        rows = await monitor.store._fetch("SELECT id, job, host_id FROM runs ORDER BY job")
        assert [(job, host) for _, job, host in rows] == [("ja", "host-a"), ("jb", "host-b")]
        ids = {job: run_id for run_id, job, _ in rows}
        assert (await monitor.status(ids["ja"], Status.SUCCEEDED)).job == "ja"
        assert (await monitor.status(ids["jb"], Status.FAILED)).job == "jb"
        hosts = await monitor.store._fetch("SELECT host_id FROM hosts ORDER BY host_id")
        assert hosts == [("host-a",), ("host-b",)]
        tail = await monitor.store.log_tail(ids["jb"], 5)
        assert [line.text for line in tail] == ["from b"]


async def test_abort_from_a_third_host_reaches_the_wrapper(pg_dsn: str, tmp_path: Path) -> None:
    marker = tmp_path / "signal"
    async with Monitor(pg_dsn) as monitor:
        proc = wrapper(pg_dsn, "host-a", PY, "-c", STOPPABLE, str(marker), job="long")
        run_id = await running(monitor.store, "long")
        await monitor.status(run_id, Status.RUNNING)
        asked = cli(pg_dsn, "host-c", "abort", run_id, "--yes")
        assert asked.returncode == 0, asked.stderr
        assert "its host host-a stops it" in asked.stdout
        assert proc.wait(timeout=60) == 143  # the command's own exit, after SIGTERM
        row = await monitor.status(run_id, Status.ABORTED)
        assert row.status is Status.ABORTED
    assert marker.read_text() == "TERM"  # the wrapped command really got SIGTERM
    async with PostgresStore(pg_dsn) as store:
        commands = await store.pending_commands(run_id)
        run = await store.get(run_id)
    assert len(commands) == 1
    kind, claimed_by, done = commands[0]
    assert kind == "abort" and done
    assert claimed_by is not None and claimed_by.startswith("host-a:")
    assert run.reason is not None and "jobwatch cli" in (run.reason.message or "")


REAPER = """
import asyncio, json, sys
from jobwatch.sources.postgres.store import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1], mode="write", lost_after=1.0)
    await store.open()
    marked = []
    for _ in range(400):
        marked += await store.reap_lost()
        rows = await store._fetch("SELECT status FROM runs WHERE id = %s", (sys.argv[2],))
        if rows and rows[0][0] == "unknown":
            break
        await asyncio.sleep(0.05)
    await store.close()
    print(json.dumps(marked))

asyncio.run(main())
"""


async def test_a_killed_hosts_runs_turn_lost_once(pg_dsn: str, tmp_path: Path) -> None:
    marker = tmp_path / "signal"
    async with PostgresStore(pg_dsn) as store:
        proc = wrapper(pg_dsn, "host-a", PY, "-c", STOPPABLE, str(marker), job="doomed")
        run_id = await running(store, "doomed")
        run = (await store.get(run_id)).model_dump(mode="json")
        stop_group(proc, run)  # the host dies: no more heartbeats, ever
        watchers = [
            subprocess.Popen(
                [PY, "-c", REAPER, pg_dsn, run_id],
                env=env_for(pg_dsn, f"watcher-{n}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in (1, 2)
        ]
        outputs = [w.communicate(timeout=60) for w in watchers]
        assert all(w.returncode == 0 for w in watchers), outputs
        marked = [json.loads(out) for out, _ in outputs]
        assert sorted(len(m) for m in marked) == [0, 1], outputs  # one noticed, one did not
        lost = await store.get(run_id)
        feed = await store._fetch(
            "SELECT status FROM run_changes WHERE run_id = %s ORDER BY revision", (run_id,)
        )
    assert lost.status is Status.UNKNOWN and lost.reason is not None
    assert "no heartbeat from its host host-a" in (lost.reason.message or "")
    assert [s for (s,) in feed].count("unknown") == 1  # one transition in the feed


LINES = (
    "import time\nfor i in range(150):\n    print(f'line {i}', flush=True)\n    time.sleep(0.02)\n"
)


async def test_server_restart_loses_nothing(pg_server: Any, pg_dsn: str) -> None:
    async with Monitor(pg_dsn) as monitor:
        proc = wrapper(pg_dsn, "host-a", PY, "-c", LINES, job="steady")
        run_id = await running(monitor.store, "steady")
        await monitor.status(run_id, Status.RUNNING)
        connects = monitor.store._listener.connects
        await asyncio.to_thread(pg_server.restart)
        assert proc.wait(timeout=90) == 0, proc.stderr.read() if proc.stderr else ""
        row = await monitor.status(run_id, Status.SUCCEEDED)  # caught up after reconnect
        assert row.status is Status.SUCCEEDED

        async def relistened() -> bool:
            return monitor.store._listener.connects > connects

        await wait_for_async(relistened, timeout=40)
        lines = await monitor.store.log_lines(run_id, 0, 1000)
    assert [line.text for line in lines] == [f"line {i}" for i in range(150)]


async def test_server_down_at_start_spools_then_imports(pg_server: Any, pg_dsn: str) -> None:
    await asyncio.to_thread(pg_server.stop)
    try:
        proc = wrapper(pg_dsn, "host-a", PY, "-c", "print('kept'); raise SystemExit(2)")
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 2
        assert "is kept in" in err and "until a later `jobwatch run` imports it" in err
    finally:
        await asyncio.to_thread(pg_server.start)
    later = wrapper(pg_dsn, "host-a", PY, "-c", "pass", job="later")
    assert later.wait(timeout=60) == 0
    async with PostgresStore(pg_dsn) as store:
        rows = await store._fetch("SELECT id, job, status FROM runs ORDER BY job")
        jobs = {job: (run_id, status) for run_id, job, status in rows}
        assert jobs["job"][1] == "failed" and jobs["later"][1] == "succeeded"
        tail = await store.log_tail(jobs["job"][0], 5)
    assert [line.text for line in tail] == ["kept"]


async def test_a_server_going_away_marks_the_source_stale_until_it_is_back(
    pg_server: Any, pg_dsn: str
) -> None:
    async with Monitor(pg_dsn) as monitor:
        monitor.store.pace = 0.5  # the fallback poll, quick for the test
        feed = monitor.poller.feeds[0]
        async with PostgresStore(pg_dsn) as writer:
            await writer.add(make_run(1, Status.RUNNING))
        await monitor.status("run-0001", Status.RUNNING)
        await asyncio.to_thread(pg_server.stop)
        try:
            await wait_for_async(lambda: feed.health.stale, timeout=60)
            assert "cannot reach postgresql" in (feed.health.error or "")
        finally:
            await asyncio.to_thread(pg_server.start)
        async with PostgresStore(pg_dsn) as writer:
            await writer.add(make_run(1, Status.SUCCEEDED))
        await monitor.status("run-0001", Status.SUCCEEDED)  # retried, caught up
        await wait_for_async(lambda: not feed.health.stale, timeout=60)
