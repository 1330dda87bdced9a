"""House rules that keep the core headless."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jobwatch"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_outside_tui_imports_textual() -> None:
    offenders = []
    files = [p for p in PACKAGE.rglob("*.py") if "tui" not in p.relative_to(PACKAGE).parts]
    assert len(files) > 5  # the scan really looked at the package
    for path in files:
        if any(n == "textual" or n.startswith("textual.") for n in _imports(path)):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_core_does_not_import_the_tui() -> None:
    core = [PACKAGE / "core", PACKAGE / "sources"]
    for folder in core:
        for path in folder.rglob("*.py"):
            assert not any(n.startswith("jobwatch.tui") for n in _imports(path)), path


LATER_SCREENS = ("jobwatch.tui.screens.triage", "jobwatch.tui.screens.columns")
"""Screens imported when first opened (25 ms of imports the first screen does not need)."""

_START_PATH = """
import json, sys
from jobwatch import cli

args = cli.build_parser().parse_args(sys.argv[1:])
app = cli.monitor_app(cli.monitor_options(args))
print(json.dumps(sorted(sys.modules)))
"""


def test_monitor_start_path_does_not_load_pydantic(tmp_path: Path) -> None:
    """The first paint is drawn from ``RunRow``; pydantic and the run models (about
    0.1 s of import) load later, when a run's detail is read, and the config schema
    only when there is a config file. One stray eager import would undo that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWATCH_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")  # no config file here
    done = subprocess.run(
        [sys.executable, "-c", _START_PATH, "--store", str(tmp_path / "runs.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "jobwatch.tui.app" in loaded  # the app really was built
    heavy = ("pydantic", "jobwatch.core.run", "jobwatch.config.schema", "httpx", *LATER_SCREENS)
    assert sorted(m for m in loaded if m.split(".")[0] in heavy or m in heavy) == []


def test_remote_monitor_start_path_does_not_load_pydantic(tmp_path: Path) -> None:
    """Over ``--source http://…`` the first screen is rows/1 too: the run models
    (0.1-0.2 s of the first paint, measured) load when the detail pane asks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWATCH_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")
    done = subprocess.run(
        [sys.executable, "-c", _START_PATH, "--source", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "jobwatch.tui.app" in loaded and "jobwatch.sources.http.client" in loaded
    heavy = ("pydantic", "jobwatch.core.run", "jobwatch.config.schema")
    assert sorted(m for m in loaded if m.split(".")[0] in heavy or m in heavy) == []


def test_postgres_monitor_start_path_loads_no_sqlite_store(tmp_path: Path) -> None:
    """``--store postgresql://…`` builds its first screen from psycopg alone: the
    SQLite store (and the run models) are not loaded on the way. The PostgreSQL
    store shares small modules of ``sources.local``, and importing one of them ran
    the package's ``__init__``, which loaded the whole SQLite store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWATCH_", "PG"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")
    dsn = f"postgresql:///jobwatch?host={tmp_path / 'no-server'}"  # never connected here
    done = subprocess.run(
        [sys.executable, "-c", _START_PATH, "--store", dsn],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "jobwatch.tui.app" in loaded and "jobwatch.sources.postgres.store" in loaded
    heavy = ("pydantic", "jobwatch.core.run", "jobwatch.sources.local.store", "httpx", "aiosqlite")
    assert sorted(m for m in loaded if m.split(".")[0] in heavy or m in heavy) == []
