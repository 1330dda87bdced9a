"""The store under an operator's fault injection: files it must only read, files
that are no store, read-only folders, a writer holding the lock, secrets on disk,
and a store deleted or replaced under a running reader. Real SQLite files, the
real command line in child processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import jobwatch_env, run_cli, wait_for
from jobwatch.core import Run, Status
from jobwatch.core.errors import StoreError, StoreReplaced
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.local.schema import SCHEMA_VERSION
from jobwatch.sources.poller import Poller
from jobwatch.sources.protocol import WindowTerm, WindowView

SIDE_FILES = ("-wal", "-shm", "-journal")


def make(i: int, status: Status = Status.SUCCEEDED) -> Run:
    created = datetime(2024, 1, 1, tzinfo=UTC).replace(minute=i % 60)
    return Run(id=f"run-{i:012x}", source="local", job=f"job{i}", status=status, created_at=created)


def fingerprint(path: Path) -> tuple[str, int, int, list[str]]:
    """The file's bytes, mtime and size, and what lies next to it."""
    st = path.stat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, st.st_mtime_ns, st.st_size, sorted(p.name for p in path.parent.iterdir())


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def seed(path: Path, *runs: Run, managed_by: int | None = None) -> None:
    async with SqliteStore(path) as store:
        await store.add_many(list(runs), managed_by=managed_by)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- files that are not a jobwatch store --------------------------------------------


def _sqlite(path: Path, *, wal: bool) -> None:
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, secret TEXT)")
    db.execute("INSERT INTO accounts (secret) VALUES ('hunter2')")
    db.commit()
    db.close()  # the last connection: the -wal and -shm go away


FOREIGN: dict[str, Callable[[Path], None]] = {
    "wal-sqlite": lambda p: _sqlite(p, wal=True),
    "rollback-sqlite": lambda p: _sqlite(p, wal=False),
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("not a database at all\n" * 50),
}

READERS_AND_WRITERS: dict[str, tuple[str, ...]] = {
    "list": ("list",),
    "show": ("show", "run-1"),
    "logs": ("logs", "run-1"),
    "watch": ("watch", "run-1"),
    "monitor": (),
    "serve-read-only": ("serve", "--read-only", "--host", "127.0.0.1", "--port", "0"),
    "archive": ("archive", "run-1", "--yes"),
    "abort": ("abort", "run-1", "--yes"),
}


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_file_that_is_no_store_is_refused_and_left_byte_for_byte(
    tmp_path: Path, kind: str
) -> None:
    """``jobwatch list --store other-app.db`` added five tables to another
    program's file and switched it to WAL; a 0-byte file silently became a store."""
    other = tmp_path / "other-app.db"
    FOREIGN[kind](other)
    os.chmod(other, 0o600)  # no readable-by-others warning: only the refusal
    before = fingerprint(other)
    for verb, args in READERS_AND_WRITERS.items():
        result = run_cli(other, *args, "--store", str(other), timeout=30)
        line = one_line(result.stderr)
        assert result.returncode == 1, (verb, result.stderr)
        assert line.startswith(f"jobwatch: {other} is not a jobwatch store"), (verb, line)
        assert fingerprint(other) == before, verb
    if kind.endswith("sqlite"):
        with sqlite3.connect(f"file:{other}?mode=ro", uri=True) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
        assert tables == ["accounts"]


def test_negative_schema_version_is_refused_in_one_line(store_path: Path) -> None:
    """``user_version < 0`` ended in a KeyError from the migrations."""
    with sqlite3.connect(store_path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
        db.execute("PRAGMA user_version = -1")
    before = fingerprint(store_path)
    result = run_cli(store_path, "list")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"jobwatch: {store_path} is not a jobwatch store (schema version -1)"
    )
    assert fingerprint(store_path) == before
    # A wrapped command runs whatever the store: its output is spooled, its exit
    # code kept, the store left as it was, and the reason said once.
    result = run_cli(store_path, "run", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    assert "is not a jobwatch store (schema version -1)" in result.stderr
    assert "spool" in result.stderr
    *same, beside = fingerprint(store_path)
    assert same == list(before[:3]) and beside == sorted([*before[3], "runs.db.spool"])


async def test_a_newer_store_is_refused_by_readers_before_anything_is_touched(
    store_path: Path,
) -> None:
    await seed(store_path, make(1))
    with sqlite3.connect(store_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = fingerprint(store_path)
    for args in (("list",), ("show", make(1).id), ("archive", make(1).id, "--yes")):
        result = run_cli(store_path, *args)
        assert result.returncode == 1
        assert "written by a newer jobwatch" in one_line(result.stderr)
        assert fingerprint(store_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("show", "run-1"),
        ("logs", "run-1"),
        ("watch", "run-1"),
        ("abort", "run-1", "--yes"),
        ("run", "--", "true"),
        ("demo", "--headless", "--seconds", "0"),
        (),
    ],
    ids=lambda a: a[0] if a else "monitor",
)
@pytest.mark.parametrize("given", ["dir", "empty"])
def test_a_folder_or_an_empty_store_path_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], given: str
) -> None:
    """``--store DIR`` and ``--store ''`` gave tracebacks from aiosqlite's thread."""
    folder = tmp_path / "folder"
    folder.mkdir()
    value = str(folder) if given == "dir" else ""
    before = sorted(folder.iterdir())
    argv = [*args[:1], "--store", value, *args[1:]]
    result = run_cli(tmp_path / "unused.db", *argv, timeout=30)
    line = one_line(result.stderr)
    assert result.returncode == 2, result.stderr
    assert line.startswith("jobwatch: --store"), line
    assert ("is a directory" if given == "dir" else "empty") in line
    assert sorted(folder.iterdir()) == before
    assert not (tmp_path / "unused.db").exists()


# -- reading a real store changes nothing ---------------------------------------------


async def test_reading_verbs_never_change_a_store(store_path: Path) -> None:
    """No schema work, no journal-mode switch and no reaper write on a read: a
    run whose owner died is *shown* lost, and the file keeps every byte."""
    gone = make(2, Status.RUNNING)
    await seed(store_path, make(1))
    await seed(store_path, gone, managed_by=dead_pid())
    before = fingerprint(store_path)[:3]
    runs = {r["id"]: r for r in json.loads(run_cli(store_path, "list", "--json").stdout)}
    assert runs[gone.id]["status"] == "unknown"
    assert runs[gone.id]["reason"]["type"] == "lost"
    assert "is gone" in runs[gone.id]["reason"]["message"]
    faults = run_cli(store_path, "list", "--faults", "--json")
    assert [r["id"] for r in json.loads(faults.stdout)] == [gone.id]
    assert run_cli(store_path, "show", gone.id).returncode == 0
    assert run_cli(store_path, "logs", gone.id).returncode == 0
    watched = run_cli(store_path, "watch", gone.id, "--interval", "0.1")
    assert watched.returncode == 0 and f"unknown  {gone.id}  lost" in watched.stdout
    assert fingerprint(store_path)[:3] == before
    with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (gone.id,)).fetchone() == (
            "running",
        )


async def test_serve_read_only_never_changes_the_store(store_path: Path) -> None:
    import httpx

    from conftest import TEST_TOKEN, serve_cli

    gone = make(2, Status.RUNNING)
    await seed(store_path, make(1))
    await seed(store_path, gone, managed_by=dead_pid())
    before = fingerprint(store_path)[:3]
    with serve_cli(store_path, "--read-only") as served:
        auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
        with httpx.Client(base_url=served.url + "/api/v1", headers=auth) as http:
            page = http.get("/runs").json()
            assert {r["id"]: r["status"] for r in page["runs"]}[gone.id] == "unknown"
            assert http.get(f"/runs/{gone.id}").json()["status"] == "unknown"
            assert http.post(f"/runs/{make(1).id}/archive").status_code == 403
    assert fingerprint(store_path)[:3] == before


async def test_reading_keeps_the_journal_mode_and_an_older_schema(store_path: Path) -> None:
    """A store in rollback-journal mode at schema 1 is read as it is: not switched
    to WAL, not migrated, no -wal or -shm beside it. A write migrates it."""
    await seed(store_path, make(1))
    with sqlite3.connect(store_path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("DROP TABLE remote_flags")
        db.execute("PRAGMA user_version = 1")
    db.close()
    before = fingerprint(store_path)
    listed = run_cli(store_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [make(1).id]
    assert fingerprint(store_path) == before  # no -wal, -shm or -journal either
    archived = run_cli(store_path, "archive", make(1).id, "--yes")
    assert archived.returncode == 0, archived.stderr
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_a_write_mode_store_reads_read_only_until_it_acts(store_path: Path) -> None:
    """The monitor's store (not ``--read-only``) watches without touching the file
    and reopens it read-write only for an action."""
    await seed(store_path, make(1), make(3, Status.RUNNING))
    await seed(store_path, make(2, Status.RUNNING), managed_by=dead_pid())
    before = fingerprint(store_path)[:3]
    async with SqliteStore(store_path, mode="write") as store:
        changes = await store.changes(None)
        assert {r.id: r.status for r in changes.runs}[make(2).id] is Status.UNKNOWN
        rows = (await store.row_changes(None)).rows
        assert {r.id: r.status for r in rows}[make(2).id] is Status.UNKNOWN
        assert await store.reap_lost() == [make(2).id]  # shown, not written
        assert not store.writable and fingerprint(store_path)[:3] == before
        await store.archive(make(1).id)
        assert store.writable
        assert (await store.get(make(1).id)).archived
        assert (await store.get(make(2).id)).status is Status.UNKNOWN  # now written
    with sqlite3.connect(store_path) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (make(2).id,)).fetchone() == (
            "unknown",
        )
    async with SqliteStore(store_path, mode="read") as ro:
        with pytest.raises(StoreError, match="read-only"):
            await ro.add(make(9))


async def test_a_run_found_lost_by_a_reader_reaches_its_poll_once(store_path: Path) -> None:
    """A read-only open writes no lost status, so no revision moves: the poll that
    follows must still bring the run, once, as lost."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        await seed(store_path, make(1, Status.RUNNING), managed_by=owner.pid)
        async with SqliteStore(store_path, read_only=True) as store:
            first = await store.changes(None)
            assert [r.status for r in first.runs] == [Status.RUNNING]
            row_cursor = (await store.row_changes(None)).cursor
            owner.kill()
            owner.wait()
            store._last_reap = 0.0  # the reaper's next pass, without waiting 2 s for it
            again = await store.changes(first.cursor)
            assert [(r.id, r.status) for r in again.runs] == [(make(1).id, Status.UNKNOWN)]
            assert again.cursor == first.cursor
            assert (await store.changes(again.cursor)).runs == []
            store._last_reap = 0.0
            rows = (await store.row_changes(row_cursor)).rows
            assert rows == []  # already sent once, by changes() on this same object
    finally:
        owner.kill()
        owner.wait()


def test_reads_do_not_wait_for_a_writer_holding_the_lock(store_path: Path) -> None:
    """``list`` waited behind another connection's ``BEGIN IMMEDIATE`` (up to the
    two-minute lock wait): in WAL mode only writes wait."""
    assert run_cli(store_path, "run", "--job", "held", "--", "true").returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(store_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        listed = run_cli(store_path, "list", "--json", timeout=30)
        assert listed.returncode == 0, listed.stderr
        run_id = json.loads(listed.stdout)[0]["id"]
        assert run_cli(store_path, "show", run_id, timeout=30).returncode == 0
        assert holder.poll() is None  # the lock was held all along
        with sqlite3.connect(store_path, timeout=0) as probe, pytest.raises(sqlite3.Error):
            probe.execute("BEGIN IMMEDIATE")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


# -- a store in a read-only folder, read by another user ----------------------------


def _other_user() -> tuple[list[str], str] | None:
    """How to run ``python`` so that file permissions apply: ourselves when not
    root, else uid 65534 through ``setpriv`` with a Python it can execute (the
    venv's may live under an unreadable home). ``None`` if there is none."""
    if os.geteuid() != 0:
        return [], sys.executable
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")]
    for python in filter(None, candidates):
        probe = subprocess.run(
            [*prefix, python, "-c", "import jobwatch.cli.main, aiosqlite, pydantic_core"],
            env=_child_env(Path("/nonexistent")),
            capture_output=True,
            cwd="/",
        )
        if probe.returncode == 0:
            return prefix, python
    return None


def _child_env(home: Path) -> dict[str, str]:
    import aiosqlite

    import jobwatch

    paths = [Path(jobwatch.__file__).parents[1], Path(aiosqlite.__file__).parents[1]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWATCH_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return env


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A folder another user can walk into (pytest's own is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="jobwatch-ro-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize("left", ["clean", "with-wal"])
async def test_a_store_in_a_read_only_folder_is_readable(public_tmp: Path, left: str) -> None:
    """File 444, folder 555: reading failed with "attempt to write a readonly
    database" (SQLite cannot make the -shm a WAL read needs). Without a -wal the
    store is read ``immutable``; with one (and its -shm) left behind, ``mode=ro``
    reads the runs only the log holds."""
    runner = _other_user()
    if runner is None:
        pytest.skip("running as root without setpriv or a Python uid 65534 can execute")
    prefix, python = runner
    folder = public_tmp / "ro"
    folder.mkdir()
    store_path = folder / "runs.db"
    ids = [make(1).id]
    if left == "clean":
        await seed(store_path, make(1))
    else:
        scratch = public_tmp / "scratch"
        scratch.mkdir()
        await seed(scratch / "runs.db", make(1))
        async with SqliteStore(scratch / "runs.db") as writer:
            await writer.add(make(2))  # in the -wal only, until a checkpoint
            for suffix in ("", "-wal", "-shm"):
                shutil.copyfile(scratch / f"runs.db{suffix}", folder / f"runs.db{suffix}")
        ids.append(make(2).id)
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    before = {p.name: fingerprint(p)[:3] for p in folder.iterdir()}
    result = subprocess.run(
        [*prefix, python, "-m", "jobwatch", "list", "--json", "--store", str(store_path)],
        env=_child_env(public_tmp),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(r["id"] for r in json.loads(result.stdout)) == ids
    assert {p.name: fingerprint(p)[:3] for p in folder.iterdir()} == before


# -- secrets: the file modes -------------------------------------------------------


def test_a_new_store_its_log_files_and_its_folder_are_private(tmp_path: Path) -> None:
    """The store was created 0644 (every run's logs and config, readable by any
    local user): now the file, its -wal and -shm are 0600 and folders it makes 0700."""
    store_path = tmp_path / "new" / "deeper" / "runs.db"
    flag = tmp_path / "go"
    wait = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.02)\n"
    env = jobwatch_env(store_path)
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "jobwatch", "run", "--", sys.executable, "-c", wait],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        umask=0o022,
    )
    try:
        side = [store_path.with_name("runs.db-wal"), store_path.with_name("runs.db-shm")]
        wait_for(lambda: all(p.exists() for p in side))
        for path in [store_path, *side]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for folder in (tmp_path / "new", tmp_path / "new" / "deeper"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    finally:
        flag.touch()
        _, err = wrapper.communicate(timeout=30)
    assert wrapper.returncode == 0, err
    assert "readable by other users" not in err


async def test_a_store_others_can_read_is_warned_about_once_and_left_as_it_is(
    store_path: Path, tmp_path: Path
) -> None:
    await seed(store_path, make(1))
    store_path.chmod(0o644)
    warning = (
        f"jobwatch: warning: store {store_path} is readable by other users; chmod 600 {store_path}"
    )
    for args in (("list",), ("show", make(1).id), ("run", "--", "true")):
        result = run_cli(store_path, *args, "--store", str(store_path))
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines().count(warning) == 1, (args, result.stderr)
        assert stat.S_IMODE(store_path.stat().st_mode) == 0o644

    from jobwatch.cli import build_parser, monitor_options

    options = monitor_options(build_parser().parse_args(["--store", str(store_path)]))
    assert options.warnings == [warning.removeprefix("jobwatch: warning: ")]
    store_path.chmod(0o600)
    assert run_cli(store_path, "list").stderr == ""


# -- a store deleted or replaced under a reader -------------------------------------


async def test_a_replaced_store_is_reopened_and_synced_afresh(tmp_path: Path) -> None:
    """The monitor kept showing ``[local: ok]`` and the old runs of a replaced
    file, and never the new file's runs."""
    path, other = tmp_path / "runs.db", tmp_path / "other.db"
    await seed(path, make(1), make(2))
    await seed(other, make(10))
    async with SqliteStore(path, mode="write") as store:
        first = await store.changes(None)
        assert sorted(r.id for r in first.runs) == [make(1).id, make(2).id]
        os.replace(other, path)
        with pytest.raises(StoreReplaced, match=f"store {path} was replaced; reopened"):
            await store.changes(first.cursor)
        fresh = await store.changes(None)
        assert [r.id for r in fresh.runs] == [make(10).id]
        async with SqliteStore(path) as writer:  # and it follows the new file
            await writer.add(make(11))
        later = await store.changes(fresh.cursor)
        assert [r.id for r in later.runs] == [make(11).id]
        rows = (await store.row_changes(later.cursor)).rows
        assert rows == []


async def test_a_deleted_store_is_an_error_until_one_is_back(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await seed(path, make(1))
    async with SqliteStore(path, mode="read") as store:
        cursor = (await store.changes(None)).cursor
        path.unlink()
        for _ in range(2):  # every poll says so, not just the first
            with pytest.raises(StoreError, match=f"store {path} was deleted"):
                await store.row_changes(cursor)
        with pytest.raises(StoreError, match="was deleted"):
            await store.get(make(1).id)
        await seed(path, make(5))
        with pytest.raises(StoreReplaced):
            await store.changes(cursor)
        assert [r.id for r in (await store.changes(None)).runs] == [make(5).id]


async def test_the_poller_marks_a_replaced_store_stale_and_follows_the_new_file(
    tmp_path: Path,
) -> None:
    path, other = tmp_path / "runs.db", tmp_path / "other.db"
    await seed(path, make(1), make(2))
    await seed(other, make(10))
    store = SqliteStore(path, mode="write")
    poller = Poller([store], mode="runs", keep=True, pages=20, backoff_base=0.0, backoff_cap=0.0)
    async with poller as multi:
        await multi.poll_once()
        assert sorted(r.id for r in [r for _, r in multi.entries()]) == [make(1).id, make(2).id]
        os.replace(other, path)
        report = await multi.poll_once()
        assert report.failed == {"local": f"store {path} was replaced; reopened"}
        assert sorted(k.id for k in report.removed) == [make(1).id, make(2).id]
        assert [r for _, r in multi.entries()] == [] and multi.health()["local"].stale

        for _ in range(50):  # bounded: the back-off is zero, so the next poll retries
            report = await multi.poll_once()
            if report.recovered:
                break
        assert report.recovered == ["local"]
        assert [r.id for r in [r for _, r in multi.entries()]] == [make(10).id]
        assert multi.health()["local"].ok


async def test_windowed_reads_of_a_reader_see_a_run_shown_lost(store_path: Path) -> None:
    """A run a read-only open shows lost (its owner is dead) passes a windowed
    ``status:unknown`` and faults-only, is counted as unknown, and paging by keyset
    from it reaches every row once in every sort (the sorts order by the stored
    columns, which its shown row does not have)."""
    await seed(store_path, make(1), make(3, Status.FAILED), make(4, Status.RUNNING))
    await seed(store_path, make(2, Status.RUNNING), managed_by=dead_pid())
    lost = make(2).id
    async with SqliteStore(store_path, read_only=True) as store:

        async def ids(view: WindowView) -> list[str]:
            rows = await store.window_rows(view)
            assert await store.window_count(view) == len(rows)
            return sorted(r.id for r in rows)

        assert await ids(WindowView(terms=(WindowTerm("status", "unknown"),))) == [lost]
        assert await ids(WindowView(terms=(WindowTerm("status", "running"),))) == [make(4).id]
        assert await ids(WindowView(faults_only=True)) == sorted([lost, make(3).id])
        counts = await store.status_counts()
        assert counts.by_status == {"succeeded": 1, "failed": 1, "running": 1, "unknown": 1}
        for sort in ("status", "started", "changed", "duration", "problem"):
            view = WindowView(sort=sort)
            whole = [r.id for r in await store.window_rows(view)]
            paged: list[str] = []
            last = None
            for _ in range(10):
                page = await store.window_rows(view, limit=1, after=last)
                if not page:
                    break
                paged.append(page[0].id)
                last = page[0]
            assert paged == whole, sort
            at = whole.index(lost)
            shown = (await store.window_rows(view, offset=at, limit=1))[0]
            assert shown.status is Status.UNKNOWN
            assert await store.window_count(view, before=shown) == at, sort
