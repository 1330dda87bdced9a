"""The HTTP client against a real loopback server that misbehaves on purpose.

Whatever the server does (slow, 500, 429 with Retry-After, garbage, gone and back)
the client raises only SourceError (or the refusals it is meant to pass on), and
the poller turns that into "stale", backs off, and catches up with nothing lost.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import TEST_TOKEN, LoopbackServer, wait_for_async
from jobwatch.core import Run, Status
from jobwatch.core.errors import SourceError
from jobwatch.sources.http.client import HttpSource, RemoteUnavailable, parse_retry_after
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.poller import Poller

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def runs(prefix: str, count: int, status: Status = Status.SUCCEEDED) -> list[Run]:
    return [
        Run(
            id=f"run-{prefix}{i:05d}",
            source="local",
            status=status,
            created_at=T0 + timedelta(seconds=i),
        )
        for i in range(count)
    ]


async def add(store_path: Path, new: list[Run]) -> None:
    async with SqliteStore(store_path) as store:
        await store.add_many(new)


class Sleeps:
    """Records the client's back-off delays (and really sleeps them)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(delay)


def client(server: LoopbackServer, **kw: object) -> HttpSource:
    kw.setdefault("token", TEST_TOKEN)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("retry_base", 0.01)
    kw.setdefault("retry_cap", 0.05)
    return HttpSource(server.url, **kw)  # type: ignore[arg-type]


async def test_500_is_retried_a_bounded_number_of_times(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("a", 3))
    faults = loopback_server.faults
    async with client(loopback_server, attempts=3) as remote:
        faults.status = 500
        with pytest.raises(SourceError, match="answered 500: injected 500"):
            await remote.changes(None)
        assert faults.hits == 3
        faults.clear()
        faults.reset_hits()
        faults.status, faults.times = 502, 2  # two failures, then fine: the call succeeds
        assert len((await remote.changes(None)).runs) == 3
        assert faults.hits == 3


async def test_429_and_503_honour_retry_after(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("b", 2))
    faults = loopback_server.faults
    sleeps = Sleeps()
    async with client(loopback_server, sleep=sleeps, max_retry_after=5.0) as remote:
        faults.status, faults.retry_after, faults.times = 429, "1", 1
        assert len((await remote.changes(None)).runs) == 2
        assert sleeps.delays and sleeps.delays[0] >= 1.0  # waited as long as asked

        faults.reset_hits()
        faults.status, faults.retry_after, faults.times = 503, "3600", None
        with pytest.raises(RemoteUnavailable) as unavailable:
            await remote.changes(None)
        assert unavailable.value.retry_after == 3600  # told to the poller, not slept here
        assert faults.hits == 1


async def test_posts_are_retried_only_when_the_server_did_nothing(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("c", 2, Status.RUNNING))
    faults = loopback_server.faults
    async with client(loopback_server) as remote:
        faults.status, faults.times = 503, 1
        result = await remote.abort("run-c00000", by="t")
        assert result.run.status is Status.ABORTED and faults.methods == ["POST", "POST"]
        faults.reset_hits()
        faults.status, faults.times = 500, None
        with pytest.raises(SourceError):
            await remote.abort("run-c00001", by="t")
        assert faults.methods == ["POST"]  # a 500 may have half-happened: never repeated


async def test_slow_server_times_out_then_recovers(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("d", 2))
    faults = loopback_server.faults
    async with client(loopback_server, timeout=0.3, attempts=2) as remote:
        faults.delay = 2.0
        with pytest.raises(SourceError, match=r"did not answer within 0\.3s"):
            await remote.changes(None)
        assert faults.hits == 2
        faults.clear()
        assert len((await remote.changes(None)).runs) == 2


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("html", "not JSON"),
        ("shape", "unexpected response"),
    ],
)
async def test_garbage_is_a_source_error(
    loopback_server: LoopbackServer, store_path: Path, garbage: str, message: str
) -> None:
    await add(store_path, runs("e", 1))
    loopback_server.faults.garbage = garbage
    async with client(loopback_server) as remote:
        with pytest.raises(SourceError, match=message):
            await remote.changes(None)
        with pytest.raises(SourceError):
            await remote.get("run-e00000")
    assert loopback_server.faults.hits == 2  # garbage is not worth asking again


async def test_a_bad_record_is_an_error_row_not_a_lost_page(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("f", 2))
    loopback_server.faults.garbage = "bad-record"
    async with client(loopback_server) as remote:
        changes = await remote.changes(None)
    assert sorted(r.id for r in changes.runs) == ["run-f00000", "run-f00001"]
    assert [e.id for e in changes.errors] == ["run-broken"]
    assert "status" in changes.errors[0].message


async def test_poller_marks_stale_backs_off_and_catches_up(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    await add(store_path, runs("g", 50))
    remote = client(loopback_server, attempts=1, timeout=2.0)
    multi = Poller(
        [remote], mode="runs", keep=True, page=20, pages=20, backoff_base=0.05, backoff_cap=0.2
    )
    async with multi:
        report = await multi.poll_once()
        assert not report.failed and len(multi) == 50 and multi.synced()
        health = multi.health()[remote.name]
        assert health.ok and health.last_ok is not None

        # 500s: stale, the runs stay, retried after a back-off.
        loopback_server.faults.status = 500
        await add(store_path, runs("h", 5))
        report = await multi.poll_once()
        assert remote.name in report.failed and "500" in report.failed[remote.name]
        assert not health.ok and health.stale_since is not None and "500" in (health.error or "")
        assert health.next_retry_at is not None and health.next_retry_at > health.stale_since
        assert len(multi) == 50
        assert (await multi.poll_once()).failed == {}  # not due yet: no request at all

        # Gone entirely, and more runs written meanwhile.
        loopback_server.stop()
        await add(store_path, runs("i", 5))
        await wait_for_async(lambda: _failed_with(multi, remote.name, "cannot connect"))
        assert health.failures >= 2 and len(multi) == 50

        # Back on the same port: recovers by itself, nothing lost.
        loopback_server.faults.clear()
        loopback_server.start()
        await wait_for_async(lambda: _recovered(multi, remote.name))
        ids = {key.id for key, _ in multi.entries()}
        assert len(ids) == 60
        assert {f"run-h{i:05d}" for i in range(5)} <= ids
        assert {f"run-i{i:05d}" for i in range(5)} <= ids
        assert health.ok and health.stale_since is None and health.failures == 0


async def _failed_with(multi: Poller, name: str, text: str) -> bool:
    await multi.poll_once()
    return text in (multi.health()[name].error or "")


async def _recovered(multi: Poller, name: str) -> bool:
    report = await multi.poll_once()
    return name in report.recovered or (multi.health()[name].ok and multi.synced())


async def test_retry_after_beyond_the_cap_schedules_the_next_poll(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    remote = client(loopback_server, attempts=3)
    multi = Poller([remote], mode="runs", keep=True, backoff_base=0.05, backoff_cap=30.0)
    async with multi:
        loopback_server.faults.status, loopback_server.faults.retry_after = 429, "20"
        report = await multi.poll_once()
        assert "asked to retry in 20s" in report.failed[remote.name]
        health = multi.health()[remote.name]
        assert health.next_retry_at is not None and health.stale_since is not None
        assert (health.next_retry_at - health.stale_since).total_seconds() >= 19.9
        assert loopback_server.faults.hits == 1


async def test_logs_longer_than_one_server_page_are_read_whole(
    loopback_server: LoopbackServer, store_path: Path
) -> None:
    """The server hands out at most LOG_PAGE lines per request; asking for more must
    page, not fail with the server's 400."""
    from jobwatch.server.app import MAX_LOG_PAGE

    total = MAX_LOG_PAGE + 3
    await add(store_path, runs("l", 1))
    async with SqliteStore(store_path) as store:
        lines = [(1.0, "stdout", "info", f"line {i}") for i in range(1, total + 1)]
        await store.append_logs("run-l00000", lines)
    async with client(loopback_server) as remote:
        every = await remote.log_lines("run-l00000", 0, limit=total + 100)
        assert [line.seq for line in every] == list(range(1, total + 1))
        tail = await remote.log_tail("run-l00000", total - 1)
        assert [line.seq for line in tail] == list(range(2, total + 1))
        assert [ln.seq for ln in await remote.log_lines("run-l00000", 5, limit=2)] == [6, 7]
        assert await remote.log_lines("run-l00000", 0, limit=0) == []

    from jobwatch.sources.http.client import LOG_PAGE

    assert LOG_PAGE == MAX_LOG_PAGE  # the client pages as the server serves


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=base) == 30.0


async def test_tls_is_verified_by_default(store_path: Path, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    await add(store_path, runs("t", 1))
    server = LoopbackServer(store_path, tls=(cert, key)).start()
    try:
        url = server.url.replace("http://", "https://")
        async with HttpSource(url, token=TEST_TOKEN, attempts=1) as untrusted:
            with pytest.raises(SourceError, match=r"(?i)certificate"):
                await untrusted.changes(None)
        async with HttpSource(url, token=TEST_TOKEN, verify=str(cert)) as trusted:
            assert len((await trusted.changes(None)).runs) == 1
    finally:
        server.stop()
