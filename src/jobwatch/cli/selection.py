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
from jobwatch.core.errors import SourceError
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.poller import Feed, Poller
from jobwatch.sources.protocol import Source
from jobwatch.sources.select import known_spec, open_sources

STALE_BACKOFF = (0.5, 15.0)
"""Base and cap of the back-off of a verb that follows a source (``watch``,
``logs --follow``): it outlives a server restart without hammering it."""


def store_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "store", None)
    return Path(given).expanduser() if given else default_store_path()


@dataclass
class Selection:
    """The sources a command works on, from ``--store``, ``--source`` and the config."""

    config: Config
    sources: list[Source]
    run_sources: list[str] = field(default_factory=list)
    """``--source`` values naming no source: for ``list``, filters on ``Run.source``."""
    read_only: bool = False
    """``--read-only`` or ``read_only`` in the config: every write is refused."""

    @property
    def several(self) -> bool:
        return len(self.sources) > 1


def selection(
    args: argparse.Namespace, *, filters_ok: bool = False, warn: bool = True
) -> Selection:
    """Build (not open) the selected sources; ``warn`` prints the config's warnings
    on stderr (the monitor shows them as a toast instead)."""
    config_file = getattr(args, "config", None)
    config = load_config(Path(config_file).expanduser() if config_file else None)
    if warn:
        for warning in config.warnings:
            print(f"jobwatch: warning: {clean(warning)}", file=sys.stderr)
    specs = list(getattr(args, "source", None) or [])
    filters: list[str] = []
    if filters_ok:
        filters = [s for s in specs if not known_spec(s, config)]
        specs = [s for s in specs if known_spec(s, config)]
    read_only = bool(getattr(args, "read_only", False)) or config.read_only
    sources = open_sources(config, specs, store=getattr(args, "store", None), read_only=read_only)
    return Selection(config, sources, filters, read_only)


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
