"""Which sources a command works on, opening them, and finding the run a command names."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobwatch import core as models
from jobwatch.config import Config, load_config
from jobwatch.core.errors import (
    AmbiguousRunId,
    RunNotFound,
    SourceError,
    UsageError,
)
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.health import describe_error
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.local.db import exposure_warning
from jobwatch.sources.protocol import Source
from jobwatch.sources.select import known_spec, open_sources, sync

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run


def _store_arg(args: argparse.Namespace) -> Path | None:
    """``--store`` as a path, or ``None`` when not given; an empty path or a folder
    is a usage error (exit 2), said before anything is opened."""
    given = getattr(args, "store", None)
    if given is None:
        return None
    if not str(given).strip():
        raise UsageError("--store: the path is empty")
    path = Path(given).expanduser()
    if path.is_dir():
        raise UsageError(
            f"--store {path}: is a directory; give the store's file, e.g. {path / 'runs.db'}"
        )
    return path


def _store_path(args: argparse.Namespace) -> Path:
    return _store_arg(args) or default_store_path()


def _warn(text: str) -> None:
    print(f"jobwatch: warning: {clean(text)}", file=sys.stderr)


def warn_exposed(path: Path) -> None:
    """Say once, on stderr, that a store other users can read should be private."""
    warning = exposure_warning(path)
    if warning:
        _warn(warning)


@dataclass
class Selection:
    """The sources a command works on, from ``--store``, ``--source`` and the config."""

    config: Config
    sources: list[Source]
    run_sources: list[str] = field(default_factory=list)
    """``--source`` values naming no source: for ``list``, filters on ``Run.source``."""
    warnings: list[str] = field(default_factory=list)
    """About the selected stores (readable by other users), for the monitor's toast."""

    @property
    def several(self) -> bool:
        return len(self.sources) > 1


def selection(
    args: argparse.Namespace,
    *,
    filters_ok: bool = False,
    warn: bool = True,
    read_only: bool = False,
) -> Selection:
    """Build (not open) the selected sources; ``warn`` prints the config's warnings
    and the stores' on stderr (the monitor shows them as a toast instead)."""
    store = _store_arg(args)
    config_file = getattr(args, "config", None)
    config = load_config(Path(config_file).expanduser() if config_file else None)
    specs = list(getattr(args, "source", None) or [])
    filters: list[str] = []
    if filters_ok:
        filters = [s for s in specs if not known_spec(s, config)]
        specs = [s for s in specs if known_spec(s, config)]
    sources = open_sources(config, specs, store=store, read_only=read_only)
    exposed = [w for s in sources if isinstance(s, SqliteStore) and (w := exposure_warning(s.path))]
    if warn:
        for warning in [*config.warnings, *exposed]:
            _warn(warning)
    return Selection(config, sources, filters, exposed)


def _warn_source(source: Source, exc: BaseException) -> None:
    print(f"jobwatch: warning: source {clean(source.name)}: {describe_error(exc)}", file=sys.stderr)


@contextlib.asynccontextmanager
async def _opened(sel: Selection) -> AsyncIterator[list[Source]]:
    """Open the selection. One source fails as before; of several, those that
    cannot be opened are reported and skipped, the others still answer."""
    async with contextlib.AsyncExitStack() as stack:
        if not sel.several:
            source = sel.sources[0]
            await source.open()
            stack.push_async_callback(source.close)
            yield [source]
            return
        results = await asyncio.gather(*(s.open() for s in sel.sources), return_exceptions=True)
        opened: list[Source] = []
        for source, result in zip(sel.sources, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                _warn_source(source, result)
            else:
                opened.append(source)
                stack.push_async_callback(source.close)
        if not opened:
            raise SourceError("none of the selected sources could be opened")
        yield opened


async def _find(sources: Sequence[Source], ref: str) -> tuple[Source, Run]:
    """The run ``ref`` names (id or unique prefix) and the source that owns it."""
    if len(sources) == 1:
        return sources[0], await sources[0].get(ref)
    results = await asyncio.gather(*(s.get(ref) for s in sources), return_exceptions=True)
    hits: list[tuple[Source, Run]] = []
    failures: list[str] = []
    for source, result in zip(sources, results, strict=True):
        if isinstance(result, models.Run):  # pydantic loads on first use
            hits.append((source, result))
        elif isinstance(result, AmbiguousRunId):
            raise result
        elif isinstance(result, RunNotFound):
            continue
        elif isinstance(result, Exception):
            failures.append(f"{source.name}: {describe_error(result)}")
        else:
            raise result
    if len(hits) > 1:
        where = ", ".join(f"{s.name} ({r.id})" for s, r in hits)
        raise AmbiguousRunId(
            f"{ref!r} matches runs in several sources: {where}; pick one with --source"
        )
    if hits:
        return hits[0]
    names = ", ".join(s.name for s in sources)
    if failures:
        raise SourceError(f"no run {ref!r} found; some sources failed: {'; '.join(failures)}")
    raise RunNotFound(f"no run {ref!r} in {names}")


def _newest_first(run: Run) -> tuple[bool, float]:
    when = run.created_at or run.started_at
    return (when is None, -when.timestamp() if when else 0.0)


async def _list_one(
    source: Source, args: argparse.Namespace, statuses: list[str], run_sources: list[str]
) -> tuple[list[Run], list[RecordError]]:
    limit = None if args.limit <= 0 else args.limit
    if isinstance(source, SqliteStore):  # filtered and limited in SQL
        return await source.list_runs(
            statuses=statuses,
            jobs=args.job or [],
            sources=run_sources,
            include_archived=args.all,
            limit=limit,
        )
    changes = await sync(source)
    runs = [
        r
        for r in changes.runs
        if (args.all or not r.archived)
        and (not statuses or r.status.value in statuses)
        and (not args.job or r.job in args.job)
        and (not run_sources or r.source in run_sources)
    ]
    runs.sort(key=_newest_first)
    return runs[:limit] if limit else runs, changes.errors


def _out(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")


def _human() -> bool:
    return sys.stdout.isatty()


def _who() -> str:
    return f"{getpass.getuser()} (jobwatch cli)"
