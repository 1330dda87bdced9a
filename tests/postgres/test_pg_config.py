"""``kind = "postgres"`` in the config file: the shared store listed beside other
sources, libpq's ways for the password (a passfile here), never a password in
the file itself. Against the session's real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import jobwatch_env
from jobwatch.config import ConfigError, load_config
from jobwatch.config.schema import PostgresSourceConfig
from jobwatch.core import Run, Status, utcnow
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.select import open_sources


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def config_text(dsn: str, store: Path, extra: str = "") -> str:
    return (
        'default_sources = ["shared", "mine"]\n'
        f"[sources.shared]\nkind = \"postgres\"\ndsn = '{dsn}'\n{extra}"
        f'[sources.mine]\nkind = "sqlite"\npath = "{store}"\n'
    )


async def test_the_shared_store_is_a_source_beside_others(
    pg_dsn: str, tmp_path: Path, store_path: Path
) -> None:
    async with PostgresStore(pg_dsn) as shared:
        failed = Run(id="run-pg-1", source="local", status=Status.FAILED, created_at=utcnow())
        await shared.add(failed)
    async with SqliteStore(store_path) as mine:
        await mine.add(Run(id="run-lite-1", source="local", status=Status.RUNNING))
    config = load_config(write(tmp_path / "c.toml", config_text(pg_dsn, store_path)))
    assert isinstance(config.sources["shared"], PostgresSourceConfig)
    sources = open_sources(config, [])
    assert [s.name for s in sources] == ["shared", "mine"]
    assert isinstance(sources[0], PostgresStore) and sources[0].dsn == pg_dsn
    await sources[0].open()
    try:
        assert [r.id for r in (await sources[0].row_changes(None)).rows] == ["run-pg-1"]
    finally:
        await sources[0].close()
    # and the CLI reads both through the config
    env = jobwatch_env(store_path) | {"JOBWATCH_CONFIG": str(tmp_path / "c.toml")}
    env.pop("JOBWATCH_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "jobwatch", "list", "--all"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "run-pg-1" in done.stdout and "run-lite-1" in done.stdout


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://jw:hunter2@db/jobs", "host=db dbname=jobs password=hunter2"],
)
def test_a_password_in_the_file_is_refused(dsn: str, tmp_path: Path, store_path: Path) -> None:
    with pytest.raises(ConfigError, match="password") as caught:
        load_config(write(tmp_path / "c.toml", config_text(dsn, store_path)))
    assert "hunter2" not in str(caught.value)


def test_a_path_is_not_a_dsn(tmp_path: Path, store_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL connection string"):
        load_config(write(tmp_path / "c.toml", config_text("/var/runs.db", store_path)))


def test_the_passfile_reaches_libpq_relative_to_the_config(
    pg_dsn: str, tmp_path: Path, store_path: Path
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:secret\n")
    passfile.chmod(0o644)
    text = config_text(pg_dsn, store_path, extra='passfile = "pgpass"\n')
    config = load_config(write(tmp_path / "c.toml", text))
    shared = config.sources["shared"]
    assert isinstance(shared, PostgresSourceConfig) and shared.passfile == passfile
    assert f"passfile={passfile}" in shared.connection_string()
    built = open_sources(config, ["shared"])[0]
    assert isinstance(built, PostgresStore) and str(passfile) in built.dsn
    assert any("readable by other users" in w for w in config.warnings)
    os.chmod(passfile, 0o600)
    assert shared.check() == []
