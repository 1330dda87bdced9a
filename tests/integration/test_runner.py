"""``jobwatch run`` with real subprocesses on a real store."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

from conftest import only_run, run_cli, running_run, runs_json, spawn_cli, wait_for

PRINTER = (
    "import sys\n"
    "for i in range(200):\n"
    "    print(f'out {i}', flush=True)\n"
    "    print(f'err {i}', file=sys.stderr, flush=True)\n"
    "sys.exit(3)\n"
)


def group_alive(pgid: int) -> bool:
    """Any non-zombie process left in the process group?"""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def test_failed_command_keeps_every_line_and_exit_code(store_path: Path) -> None:
    result = run_cli(store_path, "run", "--job", "printer", "--", sys.executable, "-c", PRINTER)
    assert result.returncode == 3
    # The wrapper is transparent: the command's output still reaches its terminal.
    assert result.stdout.splitlines() == [f"out {i}" for i in range(200)]
    run = only_run(store_path)
    assert run["status"] == "failed"
    assert run["exit_code"] == 3
    assert run["job"] == "printer"
    assert run["error"]["code"] == "exit-3"
    assert run["error"]["message"].splitlines() == [f"err {i}" for i in range(195, 200)]
    assert run["started_at"] and run["ended_at"]

    logs = run_cli(store_path, "logs", run["id"], "--timestamps")
    assert logs.returncode == 0, logs.stderr
    lines = [line.split(None, 2)[1:] for line in logs.stdout.splitlines()]
    assert len(lines) == 400
    assert [t for s, t in lines if s == "stdout"] == [f"out {i}" for i in range(200)]
    assert [t for s, t in lines if s == "stderr"] == [f"err {i}" for i in range(200)]


def test_success_and_exit_code_passthrough(store_path: Path) -> None:
    ok = run_cli(store_path, "run", "--", "sh", "-c", "echo hello")
    assert ok.returncode == 0 and ok.stdout == "hello\n"
    assert runs_json(store_path)[0]["status"] == "succeeded"
    bad = run_cli(store_path, "run", "--", "sh", "-c", "exit 7")
    assert bad.returncode == 7


def test_missing_command_fails_cleanly(store_path: Path) -> None:
    result = run_cli(store_path, "run", "--", "/nonexistent/command-xyz")
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    run = only_run(store_path)
    assert run["status"] == "failed" and run["error"]["code"] == "exec-failed"


def test_abort_from_another_process_stops_the_group(store_path: Path) -> None:
    wrapper = spawn_cli(
        store_path, "run", "--grace", "3", "--", "sh", "-c", "sleep 60 & sleep 60; wait"
    )
    try:
        run = running_run(store_path)
        pgid = run["metadata"]["pid"]
        assert group_alive(pgid)
        aborted = run_cli(store_path, "abort", run["id"], "--yes")
        assert aborted.returncode == 0, aborted.stderr
        assert wrapper.wait(timeout=15) == 128 + signal.SIGTERM
        assert not group_alive(pgid)
        final = only_run(store_path)
        assert final["status"] == "aborted"
        assert final["reason"]["type"] == "aborted"
        assert "jobwatch cli" in final["reason"]["message"]
    finally:
        wrapper.kill()
        wrapper.wait()


def test_abort_kills_what_ignores_sigterm_after_grace(store_path: Path) -> None:
    script = "trap '' TERM; sleep 60 & wait; wait"
    wrapper = spawn_cli(store_path, "run", "--grace", "1", "--", "sh", "-c", script)
    try:
        run = running_run(store_path)
        pgid = run["metadata"]["pid"]
        assert run_cli(store_path, "abort", run["id"], "--yes").returncode == 0
        wrapper.wait(timeout=15)
        assert not group_alive(pgid)
        assert only_run(store_path)["status"] == "aborted"
    finally:
        wrapper.kill()
        wrapper.wait()


def test_ctrl_c_on_the_wrapper_aborts(store_path: Path) -> None:
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sleep", "60")
    try:
        run = running_run(store_path)
        wrapper.send_signal(signal.SIGINT)
        wrapper.wait(timeout=15)
        final = only_run(store_path)
        assert final["status"] == "aborted"
        assert "Ctrl-C" in final["reason"]["message"]
        assert not group_alive(run["metadata"]["pid"])
    finally:
        wrapper.kill()
        wrapper.wait()


def test_killed_wrapper_becomes_lost(store_path: Path) -> None:
    """Wrapper and command both gone: lost. (A command that outlives its wrapper
    is still running: see test_runner_faults.py.)"""
    wrapper = spawn_cli(store_path, "run", "--", "sleep", "60")
    pgid = None
    try:
        run = running_run(store_path)
        pgid = run["metadata"]["pid"]
        wrapper.send_signal(signal.SIGKILL)
        wrapper.wait(timeout=10)
        os.killpg(pgid, signal.SIGKILL)
        wait_for(lambda: not group_alive(pgid))
        final = only_run(store_path)
        assert final["status"] == "unknown"
        assert final["reason"]["type"] == "lost"
        assert "gone" in final["reason"]["message"]
    finally:
        wrapper.kill()
        wrapper.wait()
        if pgid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_eight_concurrent_writers_lose_nothing(store_path: Path) -> None:
    script = (
        "import sys\n"
        "n = int(sys.argv[1])\n"
        "for i in range(1500):\n"
        "    print(f'w{n} line {i}', flush=(i % 50 == 0))\n"
    )
    wrappers = [
        spawn_cli(store_path, "run", "--job", f"w{n}", "--", sys.executable, "-c", script, str(n))
        for n in range(8)
    ]
    outputs = [w.communicate(timeout=120) for w in wrappers]
    for wrapper, (_out, err) in zip(wrappers, outputs, strict=True):
        assert wrapper.returncode == 0, err
        assert "locked" not in err.lower() and "jobwatch:" not in err
    runs = runs_json(store_path)
    assert sorted(r["job"] for r in runs) == [f"w{n}" for n in range(8)]
    assert all(r["status"] == "succeeded" for r in runs)
    for run in runs:
        logs = run_cli(store_path, "logs", run["id"])
        n = run["job"][1:]
        assert logs.stdout.splitlines() == [f"w{n} line {i}" for i in range(1500)]


def test_cli_abort_of_lost_or_finished_run_is_refused(store_path: Path) -> None:
    assert run_cli(store_path, "run", "--", "true").returncode == 0
    run = only_run(store_path)
    refused = run_cli(store_path, "abort", run["id"], "--yes")
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"jobwatch: cannot abort {run['id']}: it has already succeeded"
