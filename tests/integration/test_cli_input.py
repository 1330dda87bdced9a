"""Text and arguments from outside, through the real ``python -m jobwatch``.

Hidden characters in run data must not reach any output; a secret on the command
line must never be echoed back; a bad argument is one line on stderr and exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import jobwatch_env, run_cli
from jobwatch.core import Run, Status
from jobwatch.sources.local import SqliteStore

NOW = datetime.now(UTC)
TRICKY_JOB = "inv\u202egpj.exe\tnightly\u200b"
HIDDEN = ("\u202e", "\u200b", "\t")


def seed(store_path: Path) -> None:
    async def fill() -> None:
        async with SqliteStore(store_path) as store:
            await store.add_many(
                [
                    Run(
                        id="run-cccc00000001",
                        source="local",
                        job=TRICKY_JOB,
                        status=Status.FAILED,
                        created_at=NOW - timedelta(minutes=3),
                        started_at=NOW - timedelta(minutes=3),
                        ended_at=NOW - timedelta(minutes=2),
                    ),
                    Run(
                        id="run-cccc00000002",
                        source="local",
                        job="plain",
                        status=Status.SUCCEEDED,
                        created_at=NOW - timedelta(minutes=5),
                        started_at=NOW - timedelta(minutes=5),
                        ended_at=NOW - timedelta(minutes=4),
                    ),
                ]
            )
            await store.append_logs(
                "run-cccc00000001",
                [(NOW.timestamp(), "stdout", "info", "saved inv\u202egpj.exe\tdone")],
            )

    asyncio.run(fill())


def run_in_terminal(store_path: Path, *args: str) -> str:
    """The CLI with a real pseudo-terminal as stdout, so it prints its aligned table."""
    leader, follower = pty.openpty()
    env = jobwatch_env(store_path)
    env["COLUMNS"] = "200"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobwatch", *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(follower)
        chunks: list[bytes] = []
        while True:  # ends at EOF (EIO on Linux) once the child has exited
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_hidden_characters_and_tabs_reach_no_output(store_path: Path) -> None:
    seed(store_path)
    listed = run_cli(store_path, "list")
    data = json.loads(run_cli(store_path, "list", "--json").stdout)
    shown = run_cli(store_path, "show", "cccc00000001")
    shown_json = json.loads(run_cli(store_path, "show", "cccc00000001", "--json").stdout)
    logs = run_cli(store_path, "logs", "run-cccc00000001")
    for out in (listed.stdout.replace("\t", " "), shown.stdout, logs.stdout):
        assert not any(c in out for c in HIDDEN[:2]), out
    # JSON keeps a tab (escaped as \t it cannot shift anything); hidden characters go
    assert data[0]["job"] == shown_json["job"] == "invgpj.exe\tnightly"
    assert "job: invgpj.exe\tnightly" in shown.stdout  # multi-line text may keep a tab
    assert logs.stdout.strip() == "saved invgpj.exe done"
    assert [len(line.split("\t")) for line in listed.stdout.splitlines()] == [8, 8]


def test_a_tab_in_a_job_name_keeps_the_table_aligned(store_path: Path) -> None:
    seed(store_path)
    screen = run_in_terminal(store_path, "list")
    lines = [line for line in screen.splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    assert len(rows) == 2 and "\t" not in screen and "\u202e" not in screen
    started = header.index("STARTED")
    for row in rows:
        assert row[started - 2 : started] == "  " and row[started] != " ", row
