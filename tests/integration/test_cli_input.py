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

import httpx
import pytest

from conftest import TEST_TOKEN, jobwatch_env, run_cli, serve_cli
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


# -- the shapes that leaked, on every output path -----------------------------------------

PEM_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "bwKfBstIs+bMY2Zkp18gnTxK==",
]
LEAKED: list[tuple[str, str]] = [  # (log line, the secret in it)
    ("deploy --api-key=Zx9Qw8Er7Ty6", "Zx9Qw8Er7Ty6"),
    ("gh auth --token ghx9f8e7d6c5 ok", "ghx9f8e7d6c5"),
    ("oauth --client-secret=cs8f7e6d5c4b3a", "cs8f7e6d5c4b3a"),
    ("psql --password hunter2pw -h db", "hunter2pw"),
    ("mysql -u root -pS3cr3tPw db1", "S3cr3tPw"),
    ("curl -u alice:curlPw123 https://api.example.com", "curlPw123"),
    ("sshpass -p sshPw456 ssh user@host", "sshPw456"),
    ("DB_PASS=dbPass789 psql", "dbPass789"),
    ("SMTP_PASSWORD=smtpPw1 APP_SECRET=appSec2 GH_TOKEN=ghTok3 STRIPE_KEY=strK4", "smtpPw1"),
    ("AccountName=a;AccountKey=Eby8vdM02xNOcqFlqUwJPLlm==;EndpointSuffix=x", "Eby8vdM02xNOcqFl"),
    ("VAULT_TOKEN is hvs.CAESIJqm0x5GZfG1aaBbCcDdEeFfGgHh", "hvs.CAESIJqm0x5GZfG1"),
    ("mail SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzr", "ngeVfQFYQlKU0ufo8x5d1A"),
    ("post https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXX"),
    ("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("aws_secret_access_key je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "je7MtGbClwBF"),
    ("-----BEGIN RSA PRIVATE KEY-----", ""),
    *((line, line) for line in PEM_BODY),
    ("-----END RSA PRIVATE KEY-----", ""),
]


def seed_leaks(store_path: Path) -> None:
    async def fill() -> None:
        async with SqliteStore(store_path) as store:
            await store.add_many(
                [
                    Run(
                        id="run-dddd00000001",
                        source="local",
                        job="leaky",
                        label=LEAKED[0][0],
                        status=Status.FAILED,
                        created_at=NOW,
                        config={
                            "env": {"DB_PASS": "dbPass789"},
                            "args": ["--token", "ghx9f8e7d6c5"],
                        },
                    )
                ]
            )
            rows = [(NOW.timestamp(), "stdout", "info", line) for line, _ in LEAKED]
            await store.append_logs("run-dddd00000001", rows)

    asyncio.run(fill())


def test_the_leaked_shapes_reach_no_output(store_path: Path) -> None:
    seed_leaks(store_path)
    outputs = {
        "logs": run_cli(store_path, "logs", "run-dddd00000001", "--timestamps").stdout,
        "show": run_cli(store_path, "show", "run-dddd00000001").stdout,
        "show --json": run_cli(store_path, "show", "run-dddd00000001", "--json").stdout,
        "list": run_cli(store_path, "list").stdout,
        "list --json": run_cli(store_path, "list", "--json").stdout,
    }
    with serve_cli(store_path) as served:
        auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
        base = served.url + "/api/v1/runs/run-dddd00000001"
        with httpx.Client(headers=auth, trust_env=False, timeout=10) as http:
            outputs["api logs"] = http.get(base + "/logs").text
            outputs["api run"] = http.get(base).text
    assert len(outputs["logs"].splitlines()) == len(LEAKED)
    for where, text in outputs.items():
        for line, secret in LEAKED:
            if secret:
                assert secret not in text, (where, line)
    assert "--api-key=***" in outputs["logs"] and "DB_PASS=***" in outputs["logs"]
