"""``jobwatch`` with no verb: the monitor's options and its start."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobwatch.config import default_config_path
from jobwatch.config.live import LiveConfig
from jobwatch.sources.protocol import Source

if TYPE_CHECKING:
    from jobwatch.tui.app import JobwatchApp

from jobwatch.cli.selection import selection


@dataclass
class MonitorOptions:
    """What the monitor is started with: the selected sources and the settings,
    command-line flags over the config file over the defaults."""

    sources: list[Source]
    refresh: float
    theme: str | None
    read_only: bool
    bell: bool
    warnings: list[str]
    notify: bool = True
    keys: dict[str, str] = field(default_factory=dict)
    columns: list[str] | None = None
    config_path: Path | None = None
    """Where the column chooser saves: the config file read, else the default one."""
    live: LiveConfig | None = None
    """Stuck runs, schedules, hooks, terminal notifications (config/live.py)."""


def monitor_options(args: argparse.Namespace) -> MonitorOptions:
    """The monitor's sources and settings from ``args`` and the config file.

    Sources are chosen as for every verb (``--store``, ``--source``, the config's
    ``default_sources``, else the local store); the config's warnings go to the
    monitor (a toast), not to a terminal it is about to take over.
    """
    sel = selection(args, say=False)
    config = sel.config
    refresh = getattr(args, "refresh", None)
    bell = getattr(args, "bell", None)
    return MonitorOptions(
        sources=sel.sources,
        refresh=config.refresh if refresh is None else refresh,
        theme=getattr(args, "theme", None) or config.theme,
        read_only=sel.read_only,
        bell=config.bell if bell is None else bell,
        warnings=[*config.warnings, *sel.warnings],
        notify=config.notify,
        keys=config.keys,
        columns=config.columns,
        config_path=config.path or default_config_path(),
        live=config.live,
    )


def monitor_app(options: MonitorOptions) -> JobwatchApp:
    """The monitor over ``options`` (built, not started)."""
    from jobwatch.tui.app import JobwatchApp

    return JobwatchApp(
        options.sources,
        refresh=options.refresh,
        theme=options.theme,
        read_only=options.read_only,
        bell=options.bell,
        toasts=options.notify,
        keymap=options.keys,
        warnings=options.warnings,
        columns=options.columns,
        config_path=options.config_path,
        live=options.live,
    )


async def _close_quietly(source: Source) -> None:
    with contextlib.suppress(Exception):
        await source.close()


async def cmd_monitor(args: argparse.Namespace) -> int:
    """``jobwatch`` with no verb: the Textual monitor (imported only when needed,
    so the scripting verbs start fast).

    One source is opened first, as the verbs do, so a missing store is one clear
    error. Of several, none is opened here: the monitor opens each on its first
    poll, and one that fails shows as stale and is retried with back-off."""
    options = monitor_options(args)
    async with contextlib.AsyncExitStack() as stack:
        for source in options.sources:
            stack.push_async_callback(_close_quietly, source)
        app = monitor_app(options)
        if len(options.sources) == 1:
            await options.sources[0].open()
            await app.preload()
        await app.run_async()
    return 0
