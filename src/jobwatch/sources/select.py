"""Which sources to open: the user's selection (config names, URLs, store paths)
turned into :class:`~jobwatch.sources.protocol.Source` objects, built but not
opened (the :class:`~jobwatch.sources.poller.Poller` opens them, so one that
cannot be reached never stops the others from showing)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jobwatch.config import TOKEN_ENV, Config, ConfigError, check_url
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.postgres.dsn import check_dsn, is_dsn
from jobwatch.sources.protocol import Source

if TYPE_CHECKING:
    pass

DEFAULT_PAGE = 1000
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


# -- choosing sources --------------------------------------------------------------


def is_url(spec: str) -> bool:
    return "://" in spec


def is_path(spec: str) -> bool:
    """A store path rather than a config name: has a slash, a ``~``, a store suffix,
    or names an existing file."""
    return (
        os.sep in spec
        or "/" in spec
        or spec.startswith(("~", "."))
        or spec.endswith(_STORE_SUFFIXES)
        or Path(spec).is_file()
    )


def known_spec(spec: str, config: Config) -> bool:
    """Whether ``spec`` selects a source (a config name, a URL or a store path)."""
    return spec in config.sources or is_dsn(spec) or is_url(spec) or is_path(spec)


def _env_token() -> str | None:
    return os.environ.get(TOKEN_ENV, "").strip() or None


def _store_mode(read_only: bool) -> Literal["read", "write"]:
    """A selected store is never created: read through a read-only connection,
    and (unless ``read_only``) reopened read-write for the first action."""
    return "read" if read_only else "write"


def default_store() -> Path | str:
    """``$JOBWATCH_STORE`` (a path or a PostgreSQL DSN), else the user's store file."""
    env = os.environ.get("JOBWATCH_STORE", "")
    if is_dsn(env):
        return check_dsn(env, where="$JOBWATCH_STORE", argv=False)
    return default_store_path()


def store_source(store: str | Path, *, read_only: bool = False, name: str | None = None) -> Source:
    """The store at ``store``: a SQLite file, or a PostgreSQL database by its DSN
    (checked by the caller: one from argv carries no password)."""
    if isinstance(store, str) and is_dsn(store):
        try:
            from jobwatch.sources.postgres.store import PostgresStore
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in {"psycopg", "psycopg_pool"}:
                raise ConfigError(
                    "a PostgreSQL store needs the postgres extra: pip install 'jobwatch[postgres]'"
                ) from None
            raise
        return PostgresStore(store, name=name or "postgres", mode=_store_mode(read_only))
    from jobwatch.sources.local.store import SqliteStore

    path = Path(store).expanduser()
    if name is None:
        return SqliteStore(path, mode=_store_mode(read_only))
    return SqliteStore(path, name=name, mode=_store_mode(read_only))


def source_from_spec(spec: str, config: Config, *, read_only: bool = False) -> Source:
    """One source from a config name, an ``http(s)://`` URL, a PostgreSQL DSN or a
    store path."""
    if spec in config.sources:
        return config.sources[spec].make(spec, read_only=read_only)
    if is_dsn(spec):
        return store_source(check_dsn(spec, where="--source"), read_only=read_only)
    if is_url(spec):
        from jobwatch.sources.http.client import HttpSource

        try:
            url = check_url(spec)
        except ValueError as exc:
            raise ConfigError(f"--source {clean(spec)}: {exc}") from None
        return HttpSource(url, token_loader=_env_token, read_only=read_only)
    if is_path(spec):
        from jobwatch.sources.local.store import SqliteStore

        return SqliteStore(Path(spec).expanduser(), name=spec, mode=_store_mode(read_only))
    names = ", ".join(sorted(config.sources)) or "none"
    where = f" in {config.path}" if config.path else ""
    raise ConfigError(
        f"unknown source {clean(spec)!r} (configured{where}: {names}); "
        "give a configured name, an http(s):// URL or a store path"
    )


def open_sources(
    config: Config,
    selected: Sequence[str],
    *,
    store: str | Path | None = None,
    read_only: bool = False,
) -> list[Source]:
    """The sources to show, built but not opened yet (the poller does that,
    so one unreachable server cannot stop the others from showing).

    Precedence: ``store`` (``--store``) plus ``selected`` (``--source``, repeatable);
    when neither is given, the config's ``default_sources``; else the default local
    store. ``read_only`` (or the config's) makes every source refuse writes.
    """
    read_only = read_only or config.read_only
    sources: list[Source] = []
    if store is not None:
        sources.append(store_source(store, read_only=read_only))
    specs = list(dict.fromkeys(selected))
    if not specs and not sources:
        specs = list(config.default_sources)
    for spec in specs:
        sources.append(source_from_spec(spec, config, read_only=read_only))
    if not sources:
        sources.append(store_source(default_store(), read_only=read_only))
    seen: set[str] = set()
    for source in sources:
        base, n = source.name, 1
        while source.name in seen:  # two stores called "local": keep both, tell apart
            n += 1
            source.name = f"{base}-{n}"
        seen.add(source.name)
    return sources
