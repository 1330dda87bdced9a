"""Where jobwatch keeps things by default (platformdirs knows each OS's rules)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP = "jobwatch"


def default_store_path() -> Path:
    """``$JOBWATCH_STORE`` if set, else ``runs.db`` in the user data directory."""
    env = os.environ.get("JOBWATCH_STORE")
    if env:
        return Path(env).expanduser()
    return user_data_path(APP, appauthor=False) / "runs.db"


def config_dir() -> Path:
    return user_config_path(APP, appauthor=False)
