"""The scripting CLI against a real store, as a script would call it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import jobwatch_env, run_cli, runs_json, spawn_cli, wait_for
from jobwatch.core import Progress, Run, RunError, Status
from jobwatch.sources.local import SqliteStore

NOW = datetime.now(UTC)


def seed(store_path: Path) -> None:
    async def fill() -> None:
        async with SqliteStore(store_path) as store:
            await store.add_many(
                [
                    Run(
                        id="run-aaaa00000001",
                        source="local",
                        job="backup",
                        status=Status.RUNNING,
                        created_at=NOW - timedelta(minutes=5),
                        started_at=NOW - timedelta(minutes=5),
                    ),
                    Run(
                        id="run-aaaa00000002",
                        source="local",
                        job="etl",
                        status=Status.FAILED,
                        created_at=NOW - timedelta(hours=1),
                        started_at=NOW - timedelta(hours=1),
                        ended_at=NOW - timedelta(minutes=50),
                        error=RunError(code="exit-2", message="disk \x1b[31mfull\x1b[0m"),
                        config={
                            "password": "hunter2",
                            "url": "https://u:pw@db.example.com/x?token=abc",
                            "retries": 3,
                        },
                    ),
                    Run(
                        id="run-bbbb00000003",
                        source="other",
                        job="etl",
                        status=Status.SUCCEEDED,
                        created_at=NOW - timedelta(hours=2),
                        progress=Progress(total=10, succeeded=9, failed=1),
                    ),
                ]
            )
            await store.append_logs(
                "run-aaaa00000002",
                [
                    (NOW.timestamp(), "stdout", "info", "start"),
                    (
                        NOW.timestamp(),
                        "stderr",
                        "error",
                        "\x1b]0;pwned\x07oops \x1b[2Jtoken=sk-abcdefghijklmnopqrstuv",
                    ),
                ],
            )

    asyncio.run(fill())


def first_run_id(store_path: Path) -> str | None:
    if not store_path.exists():
        return None
    runs = runs_json(store_path)
    return runs[0]["id"] if runs else None


def test_list_tsv_when_piped(store_path: Path) -> None:
    seed(store_path)
    result = run_cli(store_path, "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[1] for r in rows] == ["run-aaaa00000001", "run-aaaa00000002", "run-bbbb00000003"]
    assert [r[0] for r in rows] == ["running", "failed", "succeeded"]
    assert rows[1][7] == "exit-2"
    assert rows[2][6] == "9/10 ✗1 partial"


def test_list_filters(store_path: Path) -> None:
    seed(store_path)
    assert [r["id"] for r in runs_json(store_path, "--status", "failed")] == ["run-aaaa00000002"]
    assert [r["id"] for r in runs_json(store_path, "--job", "etl", "--source", "other")] == [
        "run-bbbb00000003"
    ]
    assert [r["id"] for r in runs_json(store_path, "--faults")] == ["run-aaaa00000002"]
    limited = run_cli(store_path, "list", "--limit", "1")
    assert len(limited.stdout.splitlines()) == 1
    bad = run_cli(store_path, "list", "--status", "exploded")
    assert bad.returncode == 2 and "unknown status" in bad.stderr


def test_list_sort_by_last_change_before_the_limit(store_path: Path) -> None:
    """A long run that just failed comes first by last change, also with a limit
    (which then cuts after sorting, not the newest starts first)."""

    async def fill() -> None:
        async with SqliteStore(store_path) as store:
            await store.add_many(
                [
                    Run(id="fresh", source="local", status=Status.RUNNING, started_at=NOW),
                    Run(
                        id="long",
                        source="local",
                        status=Status.FAILED,
                        started_at=NOW - timedelta(hours=3),
                        ended_at=NOW + timedelta(minutes=1),
                    ),
                ]
            )

    asyncio.run(fill())
    assert [r["id"] for r in runs_json(store_path)] == ["fresh", "long"]
    assert [r["id"] for r in runs_json(store_path, "--sort", "changed")] == ["long", "fresh"]
    one = run_cli(store_path, "list", "--sort", "changed", "--limit", "1")
    assert [line.split("\t")[1] for line in one.stdout.splitlines()] == ["long"]
    bad = run_cli(store_path, "list", "--sort", "nonsense")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_show_json_is_redacted_and_sanitized(store_path: Path) -> None:
    seed(store_path)
    result = run_cli(store_path, "show", "aaaa00000002", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["config"]["password"] == "***"
    assert data["config"]["retries"] == 3
    assert "pw@" not in data["config"]["url"] and "token=abc" not in data["config"]["url"]
    assert data["error"]["message"] == "disk full"
    human = run_cli(store_path, "show", "aaaa00000002")
    assert "hunter2" not in human.stdout and "\x1b" not in human.stdout
    assert "exit-2" in human.stdout and "logs: 2 lines" in human.stdout


def test_logs_are_sanitized_and_redacted(store_path: Path) -> None:
    seed(store_path)
    result = run_cli(store_path, "logs", "run-aaaa00000002")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "sk-abcdefghijklmnopqrstuv" not in result.stdout
    assert result.stdout.splitlines()[0] == "start"
    tail = run_cli(store_path, "logs", "run-aaaa00000002", "--tail", "1")
    assert len(tail.stdout.splitlines()) == 1 and tail.stdout.startswith("oops")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "jobwatch: no run 'nope'"),
        (("show", "aaaa"), "matches several runs"),
        (("archive", "run-aaaa00000001", "--yes"), "it is still running"),
        (("unarchive", "run-aaaa00000002"), "it is not archived"),
        (("abort", "run-aaaa00000002", "--yes"), "it has already failed"),
        (("abort", "run-aaaa00000001"), "pass --yes"),
    ],
)
def test_errors_are_one_line(store_path: Path, args: tuple[str, ...], message: str) -> None:
    seed(store_path)
    result = run_cli(store_path, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unreadable_and_missing_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"garbage" * 1000)
    result = run_cli(junk, "list")
    assert result.returncode == 1 and "not a jobwatch store" in result.stderr
    missing = run_cli(tmp_path / "missing.db", "list")
    assert missing.returncode == 1 and "no store at" in missing.stderr
    assert not (tmp_path / "missing.db").exists()


def test_newer_store_refused_by_cli(store_path: Path) -> None:
    seed(store_path)
    with sqlite3.connect(store_path) as db:
        db.execute("PRAGMA user_version = 999")
    result = run_cli(store_path, "list")
    assert result.returncode == 1
    assert "newer jobwatch" in result.stderr and "Traceback" not in result.stderr


def test_archive_and_unarchive(store_path: Path) -> None:
    seed(store_path)
    assert run_cli(store_path, "archive", "aaaa00000002", "--yes").returncode == 0
    assert "run-aaaa00000002" not in run_cli(store_path, "list").stdout
    archived = run_cli(store_path, "list", "--all", "--json")
    assert any(r["archived"] and r["status"] == "failed" for r in json.loads(archived.stdout))
    assert run_cli(store_path, "unarchive", "aaaa00000002").returncode == 0
    assert "run-aaaa00000002" in run_cli(store_path, "list").stdout


def test_watch_exit_status(store_path: Path) -> None:
    seed(store_path)
    assert run_cli(store_path, "watch", "aaaa00000002", "--exit-status").returncode == 1
    assert run_cli(store_path, "watch", "bbbb00000003", "--exit-status").returncode == 0
    assert run_cli(store_path, "watch", "bbbb00000003").returncode == 0


def test_watch_waits_for_a_live_run(store_path: Path) -> None:
    wrapper = spawn_cli(store_path, "run", "--", "sh", "-c", "sleep 4; exit 4")
    try:
        run_id = wait_for(lambda: first_run_id(store_path))
        watched = run_cli(store_path, "watch", run_id, "--exit-status", "--interval", "0.2")
        assert watched.returncode == 1
        lines = watched.stdout.splitlines()
        assert "running" in lines[0] and "failed" in lines[-1] and "exit-4" in lines[-1]
    finally:
        wrapper.wait(timeout=20)


def test_logs_follow_until_the_end(store_path: Path) -> None:
    script = "for i in 1 2 3; do echo tick $i; sleep 0.3; done"
    wrapper = spawn_cli(store_path, "run", "--", "sh", "-c", script)
    try:
        run_id = wait_for(lambda: first_run_id(store_path))
        followed = run_cli(store_path, "logs", run_id, "--follow")
        assert followed.stdout.splitlines() == ["tick 1", "tick 2", "tick 3"]
    finally:
        wrapper.wait(timeout=20)


def test_demo_headless_has_all_flavours_and_live_changes(store_path: Path) -> None:
    demo = spawn_cli(
        store_path,
        "demo",
        "--headless",
        "--seconds",
        "6",
        "--runs",
        "60",
        "--store",
        str(store_path),
    )
    try:

        def first_listing() -> list[dict[str, object]] | None:
            if not store_path.exists():
                return None
            result = run_cli(store_path, "list", "--json", "--limit", "0", "--all")
            return json.loads(result.stdout) if result.returncode == 0 else None

        before = wait_for(lambda: (r := first_listing()) and len(r) >= 65 and r)
        by_id = {r["id"]: r for r in before}

        def moved_on() -> list[dict[str, object]] | None:
            listing = first_listing()
            if listing and any(r["id"] not in by_id or by_id[r["id"]] != r for r in listing):
                return listing
            return None

        after = wait_for(moved_on)  # the simulation ticks every 0.5 s
        sources = {r["source"] for r in after}
        assert sources == {
            "salesforce-demo",
            "letta-demo",
            "intuned-demo",
            "modzy-demo",
            "matatika-demo",
        }
        changed = [r for r in after if r["id"] not in by_id or by_id[r["id"]] != r]
        assert changed, "two listings a few seconds apart should differ"
        assert {r["status_raw"] for r in after} & {
            "InProgress",
            "running",
            "PENDING",
            "IN_PROGRESS",
            "RUNNING",
        }
        text = json.dumps(after)
        for secret in (
            "wJalrXUtnFEMI",
            "hunter2",
            "Sup3rS3cret",
            "AKIAIOSFODNN7EXAMPLE",
            "demo-cb-Z2l2",
            "AQ0AQFakeSession",
        ):
            assert secret not in text
        listed_at = datetime.now(UTC)
        for run in after:  # times read like real ones: nothing starts or ends in the future
            times = [run.get(k) for k in ("created_at", "started_at", "ended_at")]
            stamps = [datetime.fromisoformat(str(t)) for t in times if t]
            assert stamps == sorted(stamps), run["id"]
            assert stamps[-1] <= listed_at, run["id"]
    finally:
        assert demo.wait(timeout=30) == 0


def test_demo_without_a_store_fills_a_fresh_temporary_one(tmp_path: Path) -> None:
    """The README's first command: ``jobwatch demo`` with no ``--store`` at all."""
    env = jobwatch_env(tmp_path / "unused.db")
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "jobwatch", "demo", "--headless", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    made = list(tmp_path.glob("jobwatch-demo-*/runs.db"))
    assert len(made) == 1 and str(made[0]) in result.stderr
    listed = run_cli(made[0], "list", "--json", "--limit", "0", "--store", str(made[0]))
    assert len(json.loads(listed.stdout)) >= 5
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--read-only", "abort", "run-aaaa00000001", "--yes"),  # before the verb
        ("abort", "run-aaaa00000001", "--yes", "--read-only"),  # after it
        ("--read-only", "archive", "run-aaaa00000002", "--yes"),
        ("unarchive", "run-aaaa00000002", "--read-only"),
        ("config", "abort", "run-aaaa00000001", "--yes"),  # read_only = true in the config
    ],
)
def test_read_only_refuses_every_write(
    store_path: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    seed(store_path)
    if args[0] == "config":
        config = tmp_path / "config.toml"
        config.write_text("read_only = true\n")
        args = ("--config", str(config), *args[1:])
    before = {r["id"]: (r["status"], r["archived"]) for r in runs_json(store_path)}
    result = run_cli(store_path, *args)
    assert result.returncode == 1, result
    assert "read-only mode" in result.stderr and result.stderr.count("\n") == 1
    assert {r["id"]: (r["status"], r["archived"]) for r in runs_json(store_path)} == before
