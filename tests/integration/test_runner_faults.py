"""``jobwatch run`` under faults: nothing lost, nothing false.

Real wrappers (``python -m jobwatch run``), real SQLite files, real signals; the
database lock is held by a second connection, a full disk is a real small tmpfs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import jobwatch_env, only_run, run_cli, running_run, runs_json, spawn_cli, wait_for
from jobwatch.core import Run, Status, utcnow
from jobwatch.sources.local import SqliteStore, procs
from jobwatch.sources.local.spool import import_spools, spool_dirs


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data directory (the second spool folder) lives in the test's tmp."""
    data = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data


# -- helpers -----------------------------------------------------------------------


def wrapper_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobwatch", "run", *args]


def stored(store_path: Path, run_id: str) -> list[tuple[int, str, str, str]]:
    """``(seq, stream, level, text)`` of every stored line, read with plain sqlite3."""
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        return db.execute(
            "SELECT seq, stream, level, text FROM logs WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()


def column(store_path: Path, run_id: str, name: str) -> Any:
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        row = db.execute(f"SELECT {name} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return None


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def make_store(store_path: Path) -> None:
    async def create() -> None:
        async with SqliteStore(store_path):
            pass

    asyncio.run(create())


class Drain:
    """Reads a pipe to the end in a thread, so the writer never blocks on it."""

    def __init__(self, pipe: Any) -> None:
        self.data = bytearray()
        self._pipe = pipe
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while chunk := self._pipe.read1(65536):
            self.data += chunk

    def join(self, timeout: float = 60) -> bytes:
        self._thread.join(timeout)
        return bytes(self.data)


@contextlib.contextmanager
def write_lock(store_path: Path) -> Iterator[sqlite3.Connection]:
    """The store's write lock, held for real by a second connection."""
    db = sqlite3.connect(store_path, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        db.close()


def peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1])


def spool_files(store_path: Path) -> list[Path]:
    return sorted(p for d in spool_dirs(store_path) if d.is_dir() for p in d.glob("*.jsonl"))


# -- lost output -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "n"),
    [("seq 1 300000; sleep 0.7", 300_000), ("seq 1 1000000", 1_000_000)],
    ids=["then-sleep", "then-exit"],
)
def test_every_line_of_a_burst_is_stored(store_path: Path, script: str, n: int) -> None:
    done = subprocess.run(
        wrapper_cmd("--", "sh", "-c", script),
        env=jobwatch_env(store_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = only_run(store_path)
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        count, in_place, first, last = db.execute(
            "SELECT COUNT(*), SUM(CAST(text AS INTEGER) = seq), MIN(seq), MAX(seq) "
            "FROM logs WHERE run_id = ?",
            (run["id"],),
        ).fetchone()
    assert (count, first, last) == (n, 1, n)
    assert in_place == n  # every line at its place


def test_a_long_line_without_newline_is_kept_to_the_byte(store_path: Path) -> None:
    text = "€" * 2_000_000 + "x" * 4_000_001  # 10 MB; 3-byte characters first
    script = "import sys; sys.stdout.buffer.write(('€' * 2_000_000 + 'x' * 4_000_001).encode())"
    done = subprocess.run(
        wrapper_cmd("--", sys.executable, "-c", script),
        env=jobwatch_env(store_path),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == text.encode()
    pieces = stored(store_path, only_run(store_path)["id"])
    joined = "".join(p[3] for p in pieces)
    whole = joined == text  # (not compared in the assert: pytest would diff 10 MB)
    assert whole, f"stored {len(joined)} characters of {len(text)}, or garbled"
    assert max(len(p[3].encode()) for p in pieces) <= 64 * 1024


def test_a_store_that_falls_behind_blocks_the_command_not_memory(
    store_path: Path, tmp_path: Path
) -> None:
    """While another process holds the write lock the wrapper stops reading: the
    command blocks on its own writes, the wrapper's memory stays bounded, and once
    the lock is gone every line is stored."""
    go = tmp_path / "go"
    lines = 2_000_000
    script = (  # big writes: a command flushing every line is held back even sooner
        "import os, time\n"
        "os.write(1, b'ready\\n')\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
        f"data = ''.join(f'{{i}}\\n' for i in range({lines})).encode()\n"
        "for at in range(0, len(data), 65536): os.write(1, data[at : at + 65536])\n"
    )
    total = len("ready\n") + sum(len(f"{i}\n") for i in range(lines))
    wrapper = subprocess.Popen(
        wrapper_cmd("--", sys.executable, "-c", script),
        env=jobwatch_env(store_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = Drain(wrapper.stdout), Drain(wrapper.stderr)
    try:
        run = running_run(store_path)
        command = run["metadata"]["pid"]
        with write_lock(store_path):
            go.touch()
            wait_for(lambda: len(out.data) > 1_000_000)
            samples: list[int] = []

            def stalled() -> bool:
                samples.append(len(out.data))
                return len(samples) > 8 and len(set(samples[-8:])) == 1

            wait_for(stalled, every=0.1)
            teed = len(out.data)
            assert teed < total // 2, "the wrapper read on although nothing could be stored"
            assert state(command) not in (None, "Z"), "the command was not held back"
            assert peak_rss_kb(wrapper.pid) < 150_000
        assert wrapper.wait(timeout=120) == 0
        assert len(out.join()) == total
        assert b"jobwatch:" not in err.join()
    finally:
        wrapper.kill()
        wrapper.wait()
    rows = stored(store_path, run["id"])
    assert len(rows) == lines + 1
    assert [r[3] for r in rows[:3]] == ["ready", "0", "1"] and rows[-1][3] == str(lines - 1)


# -- an unusable store -------------------------------------------------------------


def _break(store_path: Path, how: str) -> None:
    if how == "corrupt":
        store_path.write_bytes(b"this is not an sqlite file at all " * 200)
    else:  # unopenable: a directory where the file should be
        store_path.mkdir()


def _repair(store_path: Path, how: str) -> None:
    if how == "corrupt":
        store_path.unlink()
    else:
        store_path.rmdir()


@pytest.mark.parametrize("how", ["corrupt", "unopenable"])
def test_an_unusable_store_still_runs_the_command_and_spools(store_path: Path, how: str) -> None:
    _break(store_path, how)
    script = "echo out; echo err >&2; exit 7"
    done = run_cli(store_path, "run", "--job", "cron", "--", "sh", "-c", script)
    assert done.returncode == 7  # the command ran, and its exit code came through
    assert done.stdout == "out\n"
    ours = [line for line in done.stderr.splitlines() if line.startswith("jobwatch:")]
    assert len(ours) == 1  # said once
    assert sorted(done.stderr.splitlines()) == sorted(["err", ours[0]])
    (spool,) = spool_files(store_path)
    assert str(spool) in ours[0]
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600

    _repair(store_path, how)
    assert run_cli(store_path, "run", "--job", "next", "--", "true").returncode == 0
    assert spool_files(store_path) == []  # imported, then deleted
    runs = {r["job"]: r for r in runs_json(store_path)}
    assert set(runs) == {"cron", "next"}
    back = runs["cron"]
    assert back["status"] == "failed" and back["exit_code"] == 7
    assert back["error"]["code"] == "exit-7" and back["error"]["message"] == "err"
    assert sorted((r[1], r[3]) for r in stored(store_path, back["id"])) == [
        ("stderr", "err"),
        ("stdout", "out"),
    ]


async def test_import_spools_takes_only_finished_spools(store_path: Path) -> None:
    """What a monitor can call too: a spool whose writer still holds it stays."""
    store_path.mkdir()
    done = run_cli(store_path, "run", "--", "sh", "-c", "seq 1 5000")
    assert done.returncode == 0
    (spool,) = spool_files(store_path)
    store_path.rmdir()
    async with SqliteStore(store_path) as store:
        fd = os.open(spool, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # as its wrapper does while it runs
            assert await import_spools(store) == []
        finally:
            os.close(fd)
        assert spool.exists()
        foreign = spool_dirs(store_path)[1] / "run-elsewhere.0.jsonl"
        foreign.parent.mkdir(parents=True)
        foreign.write_bytes(spool.read_bytes().replace(str(store_path).encode(), b"/else.db"))
        (run_id,) = await import_spools(store)
        assert not spool.exists()
        assert foreign.exists()  # another store's spool (in the shared folder) stays
        run = await store.get(run_id)
        assert run.status is Status.SUCCEEDED and run.exit_code == 0
        assert [line.text for line in await store.log_lines(run_id, limit=10_000)] == [
            str(i) for i in range(1, 5001)
        ]
        assert await import_spools(store) == []


def test_a_wrapper_killed_while_spooling_comes_back_as_lost(store_path: Path) -> None:
    store_path.mkdir()
    wrapper = spawn_cli(store_path, "run", "--", "sh", "-c", "echo one; exec sleep 60")
    try:
        wait_for(lambda: any(b'"one"' in p.read_bytes() for p in spool_files(store_path)))
        (spool,) = spool_files(store_path)
        record = next(json.loads(ln) for ln in spool.read_text().splitlines() if '"run"' in ln)
        pgid = record["run"]["metadata"]["pgid"]
        wrapper.kill()
        wrapper.wait()
        kill_group(pgid)
        wait_for(lambda: not procs.group_alive(pgid))
    finally:
        wrapper.kill()
        wrapper.wait()
    store_path.rmdir()
    assert run_cli(store_path, "run", "--job", "next", "--", "true").returncode == 0
    lost = next(r for r in runs_json(store_path) if r["job"] == "sh")
    assert lost["status"] == "unknown" and lost["reason"]["type"] == "lost"
    assert [r[3] for r in stored(store_path, lost["id"])] == ["one"]
    assert spool_files(store_path) == []


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for _ in range(10_000):  # 2 MB disk: bounded well above what it holds
            try:
                f.write(b"\0" * 4096)
            except OSError:
                break
    return filler


def test_a_full_disk_loses_nothing_and_passes_the_exit_code(
    tmp_path: Path, _own_data_dir: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        store_path = disk / "runs.db"
        make_store(store_path)
        stderr_path = disk / "stderr.txt"  # the wrapper's own stderr on that disk
        stderr_path.touch()
        filler = fill(disk)
        script = "import sys\nfor i in range(20000): print(f'line {i}')\nsys.exit(7)\n"
        with stderr_path.open("wb") as err:
            done = subprocess.run(
                wrapper_cmd("--job", "full", "--", sys.executable, "-c", script),
                env=jobwatch_env(store_path),
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=120,
            )
        assert done.returncode == 7
        assert done.stdout.decode().splitlines() == [f"line {i}" for i in range(20000)]
        spools = spool_files(store_path)
        assert spools and all(p.is_relative_to(_own_data_dir) for p in spools)

        filler.unlink()
        assert run_cli(store_path, "run", "--job", "next", "--", "true").returncode == 0
        assert spool_files(store_path) == []
        run = next(r for r in runs_json(store_path) if r["job"] == "full")
        assert run["status"] == "failed" and run["exit_code"] == 7
        assert [r[3] for r in stored(store_path, run["id"])] == [f"line {i}" for i in range(20000)]


# -- state that must not lie -------------------------------------------------------


def test_a_long_write_lock_does_not_make_a_live_run_lost(store_path: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    script = f"while [ ! -e {stop} ]; do echo tick; sleep 0.05; done"
    wrapper = subprocess.Popen(
        wrapper_cmd("--", "sh", "-c", script),
        env=jobwatch_env(store_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = Drain(wrapper.stdout), Drain(wrapper.stderr)
    try:
        run = running_run(store_path)

        async def reap_after_lock() -> list[str]:
            async with SqliteStore(store_path, lost_after=1.0) as reaper:
                with write_lock(store_path):
                    beat = column(store_path, run["id"], "heartbeat_at")
                    wait_for(lambda: time.time() - beat > 3.0)
                    teed = len(out.data)
                    wait_for(lambda: len(out.data) > teed + 20)  # still teed meanwhile
                return await reaper.reap_lost()

        assert asyncio.run(reap_after_lock()) == []
        assert only_run(store_path)["status"] == "running"
        stop.touch()
        assert wrapper.wait(timeout=60) == 0
    finally:
        stop.touch()
        wrapper.kill()
        wrapper.wait()
    final = only_run(store_path)
    assert final["status"] == "succeeded"
    ticks = out.join().decode().splitlines()
    assert [r[3] for r in stored(store_path, run["id"])] == ticks
    assert b"jobwatch:" not in err.join()


def test_a_stopped_wrapper_is_not_lost(store_path: Path) -> None:
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sleep", "60")
    try:
        run = running_run(store_path)
        wrapper.send_signal(signal.SIGSTOP)
        beat = column(store_path, run["id"], "heartbeat_at")
        wait_for(lambda: time.time() - beat > 1.0)

        async def reap() -> list[str]:
            async with SqliteStore(store_path, lost_after=0.5) as reaper:
                return await reaper.reap_lost()

        assert asyncio.run(reap()) == []
        assert only_run(store_path)["status"] == "running"
        wrapper.send_signal(signal.SIGCONT)
        assert run_cli(store_path, "abort", run["id"], "--yes").returncode == 0
        wrapper.wait(timeout=30)
        assert only_run(store_path)["status"] == "aborted"
    finally:
        wrapper.send_signal(signal.SIGCONT)
        wrapper.kill()
        wrapper.wait()


def test_the_heartbeat_takes_back_a_run_marked_lost(store_path: Path) -> None:
    """A reaper that cannot see the wrapper (another host) marked it lost during a
    stall; the wrapper's next heartbeat makes it running again, and abortable."""
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sleep", "60")
    try:
        run = running_run(store_path)
        with contextlib.closing(sqlite3.connect(store_path)) as db, db:
            db.execute("UPDATE runs SET host = 'another-host' WHERE id = ?", (run["id"],))

        async def reap() -> list[str]:
            async with SqliteStore(store_path, lost_after=0.0) as reaper:
                return await reaper.reap_lost()

        assert asyncio.run(reap()) == [run["id"]]
        wait_for(lambda: only_run(store_path)["status"] == "running")
        assert only_run(store_path)["reason"] is None
        assert run_cli(store_path, "abort", run["id"], "--yes").returncode == 0
        assert wrapper.wait(timeout=30) == 128 + signal.SIGTERM
        assert only_run(store_path)["status"] == "aborted"
    finally:
        wrapper.kill()
        wrapper.wait()


def test_a_command_that_outlives_its_wrapper_runs_and_can_be_aborted(store_path: Path) -> None:
    script = "trap '' TERM; while :; do sleep 0.1; done"  # needs the SIGKILL after grace
    wrapper = spawn_cli(store_path, "run", "--grace", "1", "--", "sh", "-c", script)
    pgid = None
    try:
        run = running_run(store_path)
        pgid = run["metadata"]["pgid"]
        assert run["metadata"]["pid_start"] == procs.start_token(pgid)
        wrapper.send_signal(signal.SIGKILL)
        wrapper.wait(timeout=10)
        orphan = only_run(store_path)
        assert orphan["status"] == "running"
        assert orphan["reason"]["message"] == "wrapper gone, command still running"
        assert procs.group_alive(pgid)
        aborted = run_cli(store_path, "abort", run["id"], "--yes")
        assert aborted.returncode == 0, aborted.stderr
        assert not procs.group_alive(pgid)
        final = only_run(store_path)
        assert final["status"] == "aborted" and "jobwatch cli" in final["reason"]["message"]
    finally:
        wrapper.kill()
        wrapper.wait()
        if pgid:
            kill_group(pgid)


@pytest.mark.parametrize("right_token", [True, False], ids=["same-process", "reused-pid"])
def test_an_orphan_is_stopped_only_if_it_is_the_same_process(
    store_path: Path, right_token: bool
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # the wrapper: a pid that no longer runs
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        token = procs.start_token(victim.pid) if right_token else "1"
        now = utcnow()
        run = Run(
            id="run-orphan00001",
            source="local",
            job="sleep",
            status=Status.RUNNING,
            started_at=now,
            created_at=now,
            config={"grace_s": 1.0},
            metadata={
                "host": procs.HOST,
                "pid": victim.pid,
                "pgid": victim.pid,
                "pid_start": token,
            },
        )

        async def add() -> None:
            async with SqliteStore(store_path) as store:
                await store.add(run, managed_by=gone.pid)

        asyncio.run(add())
        shown = only_run(store_path)
        aborted = run_cli(store_path, "abort", run.id, "--yes")
        if right_token:
            assert shown["status"] == "running"
            assert aborted.returncode == 0, aborted.stderr
            assert victim.wait(timeout=10) == -signal.SIGTERM
            assert only_run(store_path)["status"] == "aborted"
        else:  # a process with that pid, but not the command: never touched
            assert shown["status"] == "unknown" and shown["reason"]["type"] == "lost"
            assert aborted.returncode == 1
            assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("via", ["signal", "store"])
def test_an_abort_after_the_command_finished_is_not_its_outcome(
    store_path: Path, tmp_path: Path, via: str
) -> None:
    go = tmp_path / "go"
    script = f"while [ ! -e {go} ]; do sleep 0.02; done; echo done"
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sh", "-c", script)
    try:
        run = running_run(store_path)
        command = run["metadata"]["pid"]
        wrapper.send_signal(signal.SIGSTOP)
        go.touch()
        wait_for(lambda: state(command) == "Z")  # exited; its stopped parent cannot reap it
        if via == "signal":
            wrapper.send_signal(signal.SIGTERM)  # delivered when it wakes up
        else:
            assert run_cli(store_path, "abort", run["id"], "--yes").returncode == 0
        wrapper.send_signal(signal.SIGCONT)
        assert wrapper.wait(timeout=30) == 0
    finally:
        wrapper.send_signal(signal.SIGCONT)
        wrapper.kill()
        wrapper.wait()
    final = only_run(store_path)
    assert final["status"] == "succeeded" and final["exit_code"] == 0
    assert final["reason"]["message"] == "abort requested after it had finished"
    who = "SIGTERM to the wrapper" if via == "signal" else "jobwatch cli"
    assert who in final["metadata"]["abort_requested_by"]
    assert final["metadata"]["abort_requested_at"]


# -- small ones --------------------------------------------------------------------


def test_carriage_return_frames_store_what_a_terminal_shows(store_path: Path) -> None:
    raw = b"get 10%\rget 50%\rget 100%\nnext\r\nplain\nlast\rLAST"
    done = subprocess.run(
        wrapper_cmd("--", sys.executable, "-c", f"import sys; sys.stdout.buffer.write({raw!r})"),
        env=jobwatch_env(store_path),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == raw  # teed unchanged
    texts = [r[3] for r in stored(store_path, only_run(store_path)["id"])]
    assert texts == ["get 100%", "next", "plain", "LAST"]


def test_exit_codes_of_a_command_that_cannot_start_match_a_shell(
    store_path: Path, tmp_path: Path
) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    assert run_cli(store_path, "run", "--", str(script)).returncode == 126
    assert run_cli(store_path, "run", "--", str(tmp_path)).returncode == 126  # a directory
    assert run_cli(store_path, "run", "--", str(tmp_path / "missing")).returncode == 127
    runs = runs_json(store_path)
    assert [r["status"] for r in runs] == ["failed"] * 3
    assert {r["error"]["code"] for r in runs} == {"exec-failed"}


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_an_interrupted_wrapper_exits_as_a_shell_would(
    store_path: Path, sig: signal.Signals, code: int
) -> None:
    wrapper = spawn_cli(store_path, "run", "--grace", "2", "--", "sleep", "60")
    try:
        run = running_run(store_path)
        wrapper.send_signal(sig)
        assert wrapper.wait(timeout=30) == code
        final = only_run(store_path)
        assert final["status"] == "aborted"
        assert not procs.group_alive(run["metadata"]["pid"])
    finally:
        wrapper.kill()
        wrapper.wait()


def recorded(store_path: Path, skip: frozenset[str] = frozenset()) -> tuple[str, float, int]:
    """Poll the file itself (quicker than the CLI): the run's id, start and pgid.
    ``skip``: runs seen before, which may still be stored as running (reading verbs
    show a run lost without writing it)."""

    def row() -> Any:
        if not store_path.is_file():
            return None
        with (
            contextlib.closing(sqlite3.connect(store_path)) as db,
            contextlib.suppress(sqlite3.Error),
        ):
            rows = db.execute(
                "SELECT runs.id, started_at, json_extract(data, '$.metadata.pgid') "
                "FROM runs JOIN run_docs USING (id) WHERE status = 'running'"
            ).fetchall()
            fresh = [r for r in rows if r[0] not in skip and r[2] is not None]
            return fresh[0] if fresh else None
        return None

    return tuple(wait_for(row))  # type: ignore[return-value]


def test_a_lost_run_lasted_until_its_last_heartbeat_or_unknown(store_path: Path) -> None:
    seen: set[str] = set()

    def lose(after_a_beat: bool) -> dict[str, Any]:
        wrapper = spawn_cli(store_path, "run", "--", "sleep", "60")
        try:
            run_id, start, pgid = recorded(store_path, frozenset(seen))
            seen.add(run_id)
            if after_a_beat:
                wait_for(lambda: column(store_path, run_id, "heartbeat_at") - start > 1.5)
            wrapper.send_signal(signal.SIGSTOP)  # no heartbeat from here on
            beat = column(store_path, run_id, "heartbeat_at")
            wrapper.kill()
            wrapper.wait()
            kill_group(pgid)
            wait_for(lambda: not procs.group_alive(pgid))
        finally:
            wrapper.kill()
            wrapper.wait()
        lost = next(r for r in runs_json(store_path) if r["id"] == run_id)
        assert lost["status"] == "unknown" and lost["reason"]["type"] == "lost"
        return {"run": lost, "beat": beat, "start": start}

    # Stopped before it ever reported. The first beat is due 2 s after the start;
    # on a loaded machine SIGSTOP can come later than that, so try a few times.
    for _ in range(3):
        quick = lose(after_a_beat=False)
        if quick["beat"] - quick["start"] < 1.0:
            break
    assert quick["beat"] - quick["start"] < 1.0
    assert quick["run"]["duration_ms"] is None and quick["run"]["ended_at"] is None
    table = run_cli(store_path, "list", "--all")
    line = next(ln for ln in table.stdout.splitlines() if quick["run"]["id"] in ln)
    assert line.split("\t")[5] == "-"  # not "0.0s"
    late = lose(after_a_beat=True)
    expected = (late["beat"] - late["start"]) * 1000
    assert late["run"]["duration_ms"] == pytest.approx(expected, abs=5)


async def test_a_full_disk_is_reported_as_such_not_as_a_failed_rollback(tmp_path: Path) -> None:
    """SQLite rolls back by itself on a full disk; the store's own ROLLBACK then
    fails, and that error used to replace the one that says what happened."""
    with small_disk(tmp_path / "disk") as disk:
        async with SqliteStore(disk / "runs.db") as store:
            await store.add(Run(id="run-full", source="local", status=Status.RUNNING))
            filler = fill(disk)
            with pytest.raises(Exception, match="full") as raised:
                await store.append_logs("run-full", [(0.0, "stdout", "info", "x" * 1000)] * 5000)
            assert "rollback" not in str(raised.value)
            filler.unlink()
            assert await store.append_logs("run-full", [(0.0, "stdout", "info", "y")]) == 1


@pytest.mark.parametrize("when", ["at-start", "mid-run"])
def test_a_store_locked_for_longer_than_lock_wait_is_spooled_without_hanging(
    store_path: Path, tmp_path: Path, when: str
) -> None:
    """The command is never held longer than --lock-wait by someone else's lock,
    nor the wrapper's exit: the run goes to a spool and comes back whole."""
    make_store(store_path)
    go = tmp_path / "go"
    script = f"echo first; while [ ! -e {go} ]; do sleep 0.02; done; seq 1 1000; exit 3"
    wrapper = subprocess.Popen(
        wrapper_cmd("--lock-wait", "2", "--", "sh", "-c", script),
        env=jobwatch_env(store_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = Drain(wrapper.stdout), Drain(wrapper.stderr)
    try:
        if when == "mid-run":
            running_run(store_path)
        with write_lock(store_path):
            go.touch()
            assert wrapper.wait(timeout=30) == 3  # while the lock is still held
        assert out.join().decode().splitlines() == ["first", *map(str, range(1, 1001))]
        ours = [ln for ln in err.join().decode().splitlines() if ln.startswith("jobwatch:")]
        assert len(ours) == 1 and "locked" in ours[0], ours
    finally:
        go.touch()
        wrapper.kill()
        wrapper.wait()
    assert spool_files(store_path)
    assert run_cli(store_path, "run", "--job", "next", "--", "true").returncode == 0
    assert spool_files(store_path) == []
    run = next(r for r in runs_json(store_path) if r["job"] == "sh")
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert [r[3] for r in stored(store_path, run["id"])] == ["first", *map(str, range(1, 1001))]
    if when == "at-start":  # it ended when the command did, not when the wait gave up
        assert run["duration_ms"] < 2000
