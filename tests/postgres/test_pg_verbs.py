"""Every verb over a PostgreSQL store, through the real command line, and
``jobwatch prune`` on both store kinds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from test_pg_store import make_run

from conftest import TEST_TOKEN, jobwatch_env, run_cli, serve_cli
from jobwatch.core import Status
from jobwatch.sources.postgres.store import PostgresStore


def cli(dsn: str, *args: str) -> Any:
    return run_cli(dsn, *args)  # type: ignore[arg-type]  # $JOBWATCH_STORE holds the DSN


async def test_run_list_show_logs_archive_over_a_dsn(pg_dsn: str) -> None:
    ran = cli(pg_dsn, "run", "--job", "nightly", "--", "sh", "-c", "echo out; echo bad >&2; exit 3")
    assert ran.returncode == 3, ran.stderr
    listed = cli(pg_dsn, "--store", pg_dsn, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["job"] == "nightly" and run["status"] == "failed" and run["exit_code"] == 3
    shown = cli(pg_dsn, "show", run["id"][:10])
    assert shown.returncode == 0 and "logs: 2 lines" in shown.stdout
    logs = cli(pg_dsn, "logs", run["id"])
    # Two pipes, one reader each: their lines interleave in either order.
    assert sorted(logs.stdout.splitlines()) == ["bad", "out"]
    assert cli(pg_dsn, "archive", run["id"], "--yes").returncode == 0
    assert json.loads(cli(pg_dsn, "list", "--json").stdout) == []
    assert cli(pg_dsn, "unarchive", run["id"]).returncode == 0
    refused = cli(pg_dsn, "--read-only", "archive", run["id"], "--yes")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    watched = cli(pg_dsn, "watch", run["id"], "--exit-status")
    assert watched.returncode == 1 and "failed" in watched.stdout


async def test_serve_over_a_postgres_store(pg_dsn: str, tmp_path: Path) -> None:
    async with PostgresStore(pg_dsn) as store:
        await store.add_many([make_run(1), make_run(2, Status.FAILED)])
    with serve_cli(pg_dsn, tmp=tmp_path) as served:  # type: ignore[arg-type]
        env = {**jobwatch_env(tmp_path / "none.db"), "JOBWATCH_TOKEN": TEST_TOKEN}
        listed = subprocess.run(
            [sys.executable, "-m", "jobwatch", "--source", served.url, "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == ["run-0002", "run-0001"]


async def _old_and_active(store: Any) -> None:
    old = make_run(1).model_copy(update={"ended_at": make_run(1).created_at})
    ancient_active = make_run(2, Status.RUNNING)
    fresh = make_run(999)
    await store.add_many([old, ancient_active, fresh])
    await store.append_logs("run-0001", [(time.time(), "stdout", "info", "x")] * 3)


async def test_prune_postgres_never_touches_active_runs(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        await _old_and_active(store)
    dry = cli(pg_dsn, "prune", "--older-than", "5h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    head, *ids = dry.stdout.splitlines()
    assert head.startswith("would prune 1 runs and 3 log lines") and ids == ["  run-0001"]
    refused = cli(pg_dsn, "--read-only", "prune", "--older-than", "5h")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    async with PostgresStore(pg_dsn) as store:
        assert await store.run_count() == 3  # the dry run and the refusal changed nothing
    done = cli(pg_dsn, "prune", "--older-than", "5h")
    assert done.stdout.startswith("pruned 1 runs and 3 log lines"), done.stderr
    async with PostgresStore(pg_dsn) as store:
        left = await store._fetch("SELECT id FROM runs ORDER BY id")
        assert left == [("run-0002",), ("run-0999",)]
        assert await store.log_bounds("run-0001") == (await store.log_bounds("nothing"))


async def test_prune_sqlite_never_touches_active_runs(store: Any, store_path: Path) -> None:
    await _old_and_active(store)
    await store.close()
    before = store_path.read_bytes()
    dry = run_cli(store_path, "prune", "--older-than", "5h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would prune 1 runs and 3 log lines")
    assert "  run-0001" in dry.stdout.splitlines()
    assert store_path.read_bytes() == before  # a dry run is a read
    refused = run_cli(store_path, "--read-only", "prune", "--older-than", "5h")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    done = run_cli(store_path, "prune", "--older-than", "5h")
    assert done.stdout.startswith("pruned 1 runs and 3 log lines"), done.stderr
    ids = [r["id"] for r in json.loads(run_cli(store_path, "list", "--json").stdout)]
    assert ids == ["run-0999", "run-0002"]
    bad = run_cli(store_path, "prune", "--older-than", "soon")
    assert bad.returncode == 2 and "not an age" in bad.stderr
