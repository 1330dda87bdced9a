"""Which sources a command works on, and the poller that opens and reads them."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobwatch.config import Config, load_config
from jobwatch.core.errors import SourceError, UsageError
from jobwatch.core.redact import clean
from jobwatch.sources.poller import Feed, Poller
from jobwatch.sources.postgres.dsn import check_dsn, is_dsn
from jobwatch.sources.protocol import Source
from jobwatch.sources.select import default_store, known_spec, open_sources

STALE_BACKOFF = (0.5, 15.0)
"""Base and cap of the back-off of a verb that follows a source (``watch``,
``logs --follow``): it outlives a server restart without hammering it."""


def store_arg(args: argparse.Namespace) -> Path | str | None:
    """``--store`` as a path, a checked PostgreSQL DSN (``str``: one with a password
    is refused, like any secret on argv), or ``None`` when not given; an empty
    path or a folder is a usage error (exit 2), said before anything is opened."""
    given = getattr(args, "store", None)
    if given is None:
        return None
    if not str(given).strip():
        raise UsageError("--store: the path is empty")
    if is_dsn(str(given)):
        return check_dsn(str(given))
    path = Path(given).expanduser()
    if path.is_dir():
        raise UsageError(
            f"--store {path}: is a directory; give the store's file, e.g. {path / 'runs.db'}"
        )
    return path


def store_path(args: argparse.Namespace) -> Path | str:
    """``--store``, else ``$JOBWATCH_STORE``, else the user's store file."""
    return store_arg(args) or default_store()


def warn(text: str) -> None:
    print(f"jobwatch: warning: {clean(text)}", file=sys.stderr)


def warn_exposed(path: Path | str) -> None:
    """Say once, on stderr, that a store other users can read should be private."""
    if isinstance(path, str):
        return  # a database: its server decides who reads it
    from jobwatch.sources.local.db import exposure_warning  # a SQLite file only

    warning = exposure_warning(path)
    if warning:
        warn(warning)


@dataclass
class Selection:
    """The sources a command works on, from ``--store``, ``--source`` and the config."""

    config: Config
    sources: list[Source]
    run_sources: list[str] = field(default_factory=list)
    """``--source`` values naming no source: for ``list``, filters on ``Run.source``."""
    read_only: bool = False
    """``--read-only`` or ``read_only`` in the config: every write is refused."""
    warnings: list[str] = field(default_factory=list)
    """About the selected stores (readable by other users), for the monitor's toast."""

    @property
    def several(self) -> bool:
        return len(self.sources) > 1


def selection(args: argparse.Namespace, *, filters_ok: bool = False, say: bool = True) -> Selection:
    """Build (not open) the selected sources; ``say`` prints the config's warnings
    and the stores' on stderr (the monitor shows them as a toast instead)."""
    store = store_arg(args)
    config_file = getattr(args, "config", None)
    config = load_config(Path(config_file).expanduser() if config_file else None)
    specs = list(getattr(args, "source", None) or [])
    filters: list[str] = []
    if filters_ok:
        filters = [s for s in specs if not known_spec(s, config)]
        specs = [s for s in specs if known_spec(s, config)]
    read_only = bool(getattr(args, "read_only", False)) or config.read_only
    sources = open_sources(config, specs, store=store, read_only=read_only)
    exposed = [notice for source in sources for notice in source.notices()]
    if say:
        for warning in [*config.warnings, *exposed]:
            warn(warning)
    return Selection(config, sources, filters, read_only, exposed)


def say_health(feed: Feed, recovered: bool) -> None:
    """A followed source went stale, or came back: one line on stderr each time."""
    if recovered:
        print(f"jobwatch: source {clean(feed.name)} is back", file=sys.stderr, flush=True)
    else:
        why = feed.health.error or "no answer"
        print(
            f"jobwatch: source {clean(feed.name)} is stale ({why}); retrying",
            file=sys.stderr,
            flush=True,
        )


@contextlib.asynccontextmanager
async def opened(sel: Selection, **options: Any) -> AsyncIterator[Poller]:
    """A poller over the selection, its sources open. One source that cannot be
    opened is an error; of several, those are reported and skipped."""
    base, cap = STALE_BACKOFF
    options.setdefault("on_health", say_health)
    poller = Poller(sel.sources, backoff_base=base, backoff_cap=cap, **options)
    try:
        await poller.open(strict=not sel.several)
        if sel.several:
            for feed in poller.feeds:
                if not feed.opened:
                    print(
                        f"jobwatch: warning: source {clean(feed.name)}: {feed.health.error}",
                        file=sys.stderr,
                    )
            if not any(feed.opened for feed in poller.feeds):
                raise SourceError("none of the selected sources could be opened")
        yield poller
    finally:
        await poller.close()


def out(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")


def human() -> bool:
    return sys.stdout.isatty()


def who() -> str:
    return f"{getpass.getuser()} (jobwatch cli)"
