"""The user's config file: named sources, the default ones, and display settings.

TOML in the user config dir (``--config FILE`` and ``$JOBWATCH_CONFIG`` override
it)::

    default_sources = ["local", "build-server"]
    refresh = 1.0
    notify = true   # one summary toast for new failures
    bell = true     # at most once per 10 s

    [keys]
    "run.abort" = "ctrl+a"

    [sources.local]
    kind = "sqlite"
    path = "~/.local/share/jobwatch/runs.db"

    [sources.build-server]
    kind = "jobwatch"
    url = "https://build.example.internal:8787"
    token_env = "BUILD_JOBWATCH_TOKEN"

The file's schema (pydantic) is in :mod:`jobwatch.config.schema`, loaded only when
there is a file to read: with no file, the defaults cost nothing at start-up. Each
``kind`` there is one ``SourceConfig`` subclass registered in ``SOURCE_KINDS``, so a
vendor adapter adds its kind with one decorator and no change here.

Tokens come from the environment or from files (or, discouraged, from the file
itself, which then must not be readable by others); never from argv.
The library never prints: problems worth a word come back as ``Config.warnings``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jobwatch.config.live import LiveConfig
from jobwatch.core.errors import JobwatchError
from jobwatch.core.paths import config_dir

if TYPE_CHECKING:
    from jobwatch.config.schema import SourceConfig

CONFIG_ENV = "JOBWATCH_CONFIG"
TOKEN_ENV = "JOBWATCH_TOKEN"


class ConfigError(JobwatchError):
    """The config file cannot be read, or says something that cannot work."""


class ConfigValueError(ConfigError):
    """The config file is not valid TOML or holds a value out of its range: like a
    bad flag, a usage error (exit 2)."""

    exit_code = 2


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def readable_by_others(path: Path) -> bool:
    """Whether group or other users may read ``path`` (always False off POSIX)."""
    if os.name != "posix":
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def read_token_file(path: Path) -> str:
    """The first line of a token file, stripped; a clear error when it is missing."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from exc
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def check_url(url: str) -> str:
    """An ``http(s)://host[:port][/prefix]`` URL without credentials in it.

    Tokens in URLs end up in shell history, process lists and proxy logs, so a URL
    with userinfo or a query string is refused rather than quietly used.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not carry credentials; put the token in an environment variable "
            "(token_env) or a file (token_file)"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment (tokens never go in URLs)")
    return url.rstrip("/")


@dataclass(frozen=True)
class Config:
    """Everything the config file can say; every field has a working default.

    A plain dataclass, so the defaults (no config file, the usual case) are free;
    :func:`parse_config` fills it from a file it has validated. The validation
    rules (ranges, kinds, names) live in :mod:`jobwatch.config.schema`.
    """

    sources: dict[str, SourceConfig] = field(default_factory=dict)
    default_sources: list[str] = field(default_factory=list)
    refresh: float = 1.0
    theme: str | None = None
    read_only: bool = False
    bell: bool = True
    notify: bool = True
    """Toast new failures (one summary toast; the unseen count shows either way)."""
    keys: dict[str, str] = field(default_factory=dict)
    """``[keys]``: binding id → key(s), checked against the bindings by the monitor."""
    columns: list[str] | None = None
    """The monitor's columns in order (``None``: the registry's default ones)."""
    live: LiveConfig = field(default_factory=LiveConfig)
    """``stuck_after``, ``[[schedules]]``, ``[hooks]``, ``terminal_notify`` (config/live.py)."""
    path: Path | None = None
    """The file this was read from (``None`` when there was none)."""
    warnings: list[str] = field(default_factory=list)
    """Things the user should fix, for the caller to show (the library never prints)."""


DEFAULTS = Config()
"""What an empty or missing config file means; the schema takes its defaults here."""


def parse_config(text: str, *, path: Path | None = None) -> Config:
    """Validate TOML text; ``path`` is only used for messages and relative paths."""
    from jobwatch.config.schema import parse  # pydantic: loaded when a file is read

    return parse(text, path=path)


def load_config(path: Path | None = None) -> Config:
    """The config from ``path``, else ``$JOBWATCH_CONFIG``, else the default file.

    A file named explicitly must exist; the default one is optional (no file means
    the defaults: the local store only).
    """
    explicit = path
    if explicit is None and os.environ.get(CONFIG_ENV):
        explicit = Path(os.environ[CONFIG_ENV])
    target = (explicit or default_config_path()).expanduser()
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit is not None:
            raise ConfigError(f"no config file at {target}") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read config {target}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {target} is not UTF-8 text") from None
    return parse_config(text, path=target)
