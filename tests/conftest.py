"""Shared fixtures: a real store file and the real ``jobwatch`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from jobwatch.sources.local import SqliteStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(store_path) as opened:
        yield opened


def jobwatch_env(store_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["JOBWATCH_STORE"] = str(store_path)
    env.pop("NO_COLOR", None)
    return env


def run_cli(
    store_path: Path, *args: str, timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process, against ``store_path``."""
    return subprocess.run(
        [sys.executable, "-m", "jobwatch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=jobwatch_env(store_path),
        stdin=subprocess.DEVNULL,
        **kw,
    )


def spawn_cli(store_path: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobwatch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=jobwatch_env(store_path),
        **kw,
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def runs_json(store_path: Path, *extra: str) -> list[dict[str, Any]]:
    result = run_cli(store_path, "list", "--json", "--all", "--limit", "0", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def only_run(store_path: Path) -> dict[str, Any]:
    """The store's one run, as ``jobwatch list --json`` shows it."""
    runs = runs_json(store_path)
    assert len(runs) == 1, runs
    return runs[0]


def running_run(store_path: Path) -> dict[str, Any]:
    """Wait until a ``jobwatch run`` wrapper has recorded its run and the command's pid."""

    def ready() -> dict[str, Any] | None:
        if not store_path.is_file():
            return None
        result = run_cli(store_path, "list", "--json")
        if result.returncode != 0 or not result.stdout.strip():
            return None
        runs = json.loads(result.stdout)
        if runs and runs[0]["status"] == "running" and (runs[0]["metadata"] or {}).get("pid"):
            return runs[0]
        return None

    return wait_for(ready)


# -- remote sources: isolation, `jobwatch serve`, an in-process server with faults ------

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import re  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from standins.server import AsgiServer  # noqa: E402

TEST_TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the developer's own config file, tokens or default store."""
    home = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("JOBWATCH_STORE", raising=False)
    monkeypatch.delenv("JOBWATCH_CONFIG", raising=False)
    monkeypatch.delenv("JOBWATCH_TOKEN", raising=False)


@dataclass
class Served:
    """A real ``jobwatch serve`` child process and where it listens."""

    proc: subprocess.Popen[str]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve_cli(
    store_path: Path,
    *args: str,
    token: str | None = TEST_TOKEN,
    tmp: Path | None = None,
    store: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """``jobwatch serve --port 0`` on 127.0.0.1; its output goes to a file (a pipe
    nobody reads could fill up and stall the server). ``store=False`` leaves out
    ``--store`` (a configured ``--source`` is served instead)."""
    log = (tmp or store_path.parent) / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
    env = {**jobwatch_env(store_path), **(env or {})}
    if token is not None:
        env["JOBWATCH_TOKEN"] = token
    where = ["--store", str(store_path)] if store else []
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobwatch",
                "serve",
                *where,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    try:

        def listening() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"jobwatch serve exited: {log.read_text()}")
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())
            return m.group(1) if m else None

        url = wait_for(listening)
        yield Served(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Faults:
    """What the in-process server does wrong, switched by the test at any time.

    ``times`` limits how many requests a fault hits (``None``: all of them).
    """

    delay: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    garbage: str | None = None  # "html", "shape" or "bad-record"
    times: int | None = None
    hits: int = 0
    methods: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.delay, self.status, self.retry_after = 0.0, None, None
        self.garbage, self.times = None, None

    def reset_hits(self) -> None:
        self.hits = 0
        self.methods.clear()
        self.paths.clear()


class FaultyApp:
    """ASGI middleware in front of the real app: slow, 500/429, garbage JSON."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        f = self.faults
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        f.hits += 1
        f.methods.append(scope["method"])
        f.paths.append(scope["path"])
        active = f.times is None or f.times > 0
        if f.times is not None and f.times > 0:
            f.times -= 1
        if not active:
            await self.app(scope, receive, send)
            return
        if f.delay:
            await asyncio.sleep(f.delay)  # the server being slow, not the test waiting
        if f.status is not None:
            headers = [(b"content-type", b"application/json")]
            if f.retry_after is not None:
                headers.append((b"retry-after", f.retry_after.encode()))
            body = json.dumps({"error": "fault", "message": f"injected {f.status}"}).encode()
            await send({"type": "http.response.start", "status": f.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if f.garbage in ("html", "shape"):
            body = b"<html>oops</html>" if f.garbage == "html" else b'{"runs": 5}'
            kind = b"text/html" if f.garbage == "html" else b"application/json"
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if f.garbage == "bad-record":
            await self.app(scope, receive, self._with_bad_record(send))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _with_bad_record(send: Any) -> Any:
        start: dict[str, Any] = {}

        async def patched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            data = json.loads(message["body"])
            if isinstance(data, dict) and isinstance(data.get("runs"), list):
                data["runs"].append({"id": "run-broken", "source": "x", "status": "exploded"})
            body = json.dumps(data).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return patched


class LoopbackServer(AsgiServer):
    """The real API app over a real store file, served by uvicorn on 127.0.0.1 in
    a thread of its own; it can be stopped and started again on the same port."""

    def __init__(
        self,
        store_path: Path,
        *,
        token: str | None = TEST_TOKEN,
        read_only: bool = False,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        cert, key = tls or (None, None)
        super().__init__(ssl_certfile=cert, ssl_keyfile=key)
        self.store_path = store_path
        self.tls = tls
        self.token = token
        self.read_only = read_only
        self.faults = Faults()

    @contextlib.asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        """The store opens in the server's own event loop, as ``jobwatch serve`` does."""
        from jobwatch.server.app import create_app

        async with SqliteStore(self.store_path, read_only=self.read_only) as store:
            yield FaultyApp(
                create_app(store, token=self.token, read_only=self.read_only), self.faults
            )


@pytest.fixture
def loopback_server(store_path: Path) -> Iterator[LoopbackServer]:
    server = LoopbackServer(store_path).start()
    try:
        yield server
    finally:
        server.stop()


async def wait_for_async(
    predicate: Callable[[], Any], *, timeout: float = 20, every: float = 0.05
) -> Any:
    """:func:`wait_for` for async tests: ``predicate`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


async def polled(source: Any, cursor: int | str | None = None, limit: int | None = None) -> Any:
    """What the poller does on each poll: ask upstream, then read what changed."""
    await source.refresh()
    return await source.changes(cursor, limit)


def run_in_pty(
    args: list[str],
    env: dict[str, str],
    *,
    answer: str | None = None,
    until: str = "[y/N]",
    timeout: float = 60,
    columns: int = 200,
) -> tuple[int, str]:
    """The real command line on a terminal (a pseudo-terminal): what a person sees.
    With ``answer``, it is typed once ``until`` has appeared. Bounded in time."""
    import pty
    import select
    import struct
    import termios
    from fcntl import ioctl

    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobwatch", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "COLUMNS": str(columns)},
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    answered = answer is None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and until.encode() in seen:
                os.write(master, (answer or "").encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, seen.decode("utf-8", "replace").replace("\r\n", "\n")


# -- a real PostgreSQL server (tests/pg_support.py) ---------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One server for the session; every test gets a database of its own."""
    from pg_support import PgServer

    server = PgServer()
    try:
        server.start()
        server.make_template()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: Any) -> str:
    """A fresh, migrated database on the session's server."""
    return str(pg_server.new_database())
