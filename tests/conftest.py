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

from jobwatch.store import SqliteStore


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
