"""A real PostgreSQL server for the tests and the bench: initdb in a temporary
folder, a Unix socket in that folder (no TCP port), one database per test made
from a migrated template (``CREATE DATABASE … TEMPLATE``: a few milliseconds).

PostgreSQL refuses to run as root, and CI runs as root: then initdb and pg_ctl
run as the ``postgres`` user (``runuser -u postgres --``), in a folder that user
owns. The binaries are those of /usr/lib/postgresql/*/bin (Debian's packages,
which ``.ci/run`` installs when they are missing) or the ones on the PATH.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from jobwatch.sources.postgres import schema

TEMPLATE = "jobwatch_template"
USER = "postgres"
_START_S = 60


def bin_dir() -> Path:
    """The folder of initdb/pg_ctl: the newest Debian install, else the PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("no PostgreSQL server binaries (initdb); .ci/run installs them")


class PgServer:
    """One server, started and stopped by the test session (or the bench)."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="jobwatch-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 5432
        self._as_postgres = os.geteuid() == 0
        self._names = itertools.count(1)
        if self._as_postgres:
            entry = pwd.getpwnam(USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    def _run(self, *args: str, timeout: float = _START_S) -> None:
        argv = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr}{done.stdout}\n{log}")

    def start(self) -> None:
        if not self.data.exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            self._options(),
            "start",
        )

    def _options(self) -> str:
        return (
            f"-k {self.root} -c listen_addresses='' -p {self.port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "-o",
            self._options(),
            "restart",
        )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.root} port={self.port} user={USER} dbname={dbname}"

    def admin(self, statement: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(statement)

    def make_template(self) -> None:
        self.admin(f"CREATE DATABASE {TEMPLATE}")

        async def setup() -> None:
            conn = await psycopg.AsyncConnection.connect(self.dsn(TEMPLATE), autocommit=True)
            try:
                await schema.migrate(conn)
            finally:
                await conn.close()

        # In a thread of its own: the first test to ask may already run an event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, setup()).result()

    def new_database(self, *, blank: bool = False) -> str:
        """A fresh database (migrated, unless ``blank``); returns its DSN."""
        name = f"t{os.getpid()}_{next(self._names)}"
        template = "template0" if blank else TEMPLATE
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.dsn(name)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
