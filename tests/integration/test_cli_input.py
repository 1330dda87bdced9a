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

import pytest

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


# -- bad arguments: one line, exit 2, nothing run ----------------------------------------


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobwatch: "), result.stderr
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--refresh", "0", "list"), "--refresh"),
        (("--refresh", "-1", "list"), "--refresh"),
        (("--refresh", "nan", "list"), "--refresh"),
        (("--refresh", "inf", "list"), "--refresh"),
        (("--refresh", "1e400", "list"), "--refresh"),
        (("--refresh", "soon", "list"), "--refresh"),
        (("watch", "run-x", "--interval", "0"), "--interval"),
        (("watch", "run-x", "--interval", "nan"), "--interval"),
        (("run", "--grace", "inf", "--", "true"), "--grace"),
        (("run", "--grace", "-5", "--", "true"), "--grace"),
        (("serve", "--port", "99999"), "--port"),
        (("serve", "--port", "-1"), "--port"),
        (("list", "--limit", str(10**23)), "--limit"),
        (("list", "--limit", "-3"), "--limit"),
        (("list", "--limit", "9" * 5000), "--limit"),
        (("logs", "run-x", "--tail", "-1"), "--tail"),
        (("demo", "--seconds", "nan"), "--seconds"),
        (("demo", "--runs", str(10**12)), "--runs"),
        (("list", "--lim", "5"), "unrecognized arguments: --lim"),  # no prefix matching
        (("serve", "--token-fi", "/tmp/t"), "unrecognized arguments: --token-fi"),
        (("bogus",), "invalid choice: 'bogus'"),
        (("show",), "the following arguments are required: RUN"),
        (("list", "--status", "exploded"), "unknown status 'exploded'"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(
    store_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = run_cli(store_path, *args, timeout=30)
    line = assert_one_line_usage_error(result)
    assert says in line and "(see jobwatch" in line
    assert not store_path.exists()  # nothing ran


@pytest.mark.parametrize(
    "setting",
    [
        "refresh = nan",
        "refresh = inf",
        "refresh = 0",
        '[sources.a]\nkind = "sqlite"\npath = "x.db"\nrefresh = nan',
        '[sources.a]\nkind = "jobwatch"\nurl = "http://127.0.0.1:9"\ntimeout = inf',
        "refresh = [",
    ],
)
def test_a_bad_config_value_is_one_line_and_exit_2(
    store_path: Path, tmp_path: Path, setting: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(setting + "\n")
    line = assert_one_line_usage_error(run_cli(store_path, "--config", str(config), "list"))
    assert str(config) in line


def test_config_nan_is_called_what_it_is(store_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("refresh = nan\n")
    line = assert_one_line_usage_error(run_cli(store_path, "--config", str(config), "list"))
    assert "finite" in line


# -- secrets typed on the command line are never echoed ----------------------------------

SECRET = "s3cr3t-TOKEN-value-0123456789"


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--token", SECRET),
        ("serve", "--token=" + SECRET),
        ("serve", "--token-f", SECRET),  # no longer taken for --token-file
        ("list", "--api-key", SECRET),
        ("--password=" + SECRET, "list"),
        ("list", "--source", f"https://jobs.example.com/#access_token={SECRET}"),
        ("list", "--source", f"https://jobs.example.com/#/callback?code={SECRET}&state=1"),
        ("list", "--source", f"https://jobs.example.com/?token={SECRET}"),
        ("list", "--source", f"https://user:{SECRET}@jobs.example.com/"),
        ("list", "--source", f"https://jobs.example.com/#access_token%3D{SECRET}"),
    ],
)
def test_a_secret_on_the_command_line_is_not_echoed(
    store_path: Path, args: tuple[str, ...]
) -> None:
    result = run_cli(store_path, *args, timeout=30)
    assert result.returncode in (1, 2)
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_serve_with_a_port_out_of_range_never_listens(store_path: Path) -> None:
    result = run_cli(store_path, "serve", "--store", str(store_path), "--port", "99999", timeout=20)
    assert_one_line_usage_error(result)
    assert "listening" not in result.stderr
