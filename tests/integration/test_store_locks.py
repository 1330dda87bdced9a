"""A "write" store that took its first write keeps its locks: another process's
wrapper closing its own connection must not delete the -wal and -shm under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import jobwatch_env
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.protocol import ListQuery


def wrapped(store_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "jobwatch", "run", "--store", str(store_path), "--", "true"],
        env=jobwatch_env(store_path),
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_first_write_keeps_the_shared_lock(store_path: Path) -> None:
    wrapped(store_path)
    async with SqliteStore(store_path, create=False) as store:
        runs, _ = await store.list_runs(ListQuery())
        await store.archive(runs[0].id)  # reopens it read-write
        for count in (2, 3):
            wrapped(store_path)
            # Before the fix, the wrapper's close found no other lock holder and
            # removed the log files of the connection still open here.
            assert Path(f"{store_path}-shm").exists() and Path(f"{store_path}-wal").exists()
            runs, _ = await store.list_runs(ListQuery(include_archived=True))
            assert len(runs) == count
