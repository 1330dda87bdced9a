"""Command line: ``jobwatch [VERB] …``. No verb opens the monitor.

Verbs are ``gh run``-style for scripts: aligned tables on a terminal, tab-separated
lines through a pipe, ``--json`` for the normalized (redacted) model. Every error
is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobwatch import __version__
from jobwatch import core as models
from jobwatch.core import format as render
from jobwatch.config import Config, load_config
from jobwatch.core.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    TransitionRefused,
)
from jobwatch.core import FAULTS, Action, Status, refusal
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.health import Backoff, describe_error
from jobwatch.sources.select import known_spec, open_sources, sync
from jobwatch.sources.protocol import Source

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run
    from jobwatch.tui.app import JobwatchApp

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FOLLOW_POLL_S = 0.5


def _store_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "store", None)
    return Path(given).expanduser() if given else default_store_path()


def _open(args: argparse.Namespace, *, create: bool = False) -> SqliteStore:
    return SqliteStore(_store_path(args), create=create)


@dataclass
class Selection:
    """The sources a command works on, from ``--store``, ``--source`` and the config."""

    config: Config
    sources: list[Source]
    run_sources: list[str] = field(default_factory=list)
    """``--source`` values naming no source: for ``list``, filters on ``Run.source``."""

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
    sources = open_sources(config, specs, store=getattr(args, "store", None), read_only=read_only)
    return Selection(config, sources, filters)


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


# -- verbs -------------------------------------------------------------------------


async def cmd_list(args: argparse.Namespace) -> int:
    statuses = [s.value for s in args.status or []]
    if args.faults:
        statuses += [s.value for s in FAULTS]
    sel = selection(args, filters_ok=True)
    async with _opened(sel) as sources:
        if len(sources) == 1:
            runs, errors = await _list_one(sources[0], args, statuses, sel.run_sources)
            owners = [sources[0].name] * len(runs)
        else:
            results = await asyncio.gather(
                *(_list_one(s, args, statuses, sel.run_sources) for s in sources),
                return_exceptions=True,
            )
            pairs: list[tuple[str, Run]] = []
            errors = []
            for source, result in zip(sources, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    _warn_source(source, result)
                    continue
                pairs += [(source.name, run) for run in result[0]]
                errors += result[1]
            pairs.sort(key=lambda p: _newest_first(p[1]))
            if args.limit > 0:
                pairs = pairs[: args.limit]
            owners = [name for name, _ in pairs]
            runs = [run for _, run in pairs]
    several = sel.several
    if args.json:
        items = [render.run_json(r) for r in runs]
        if several:  # which configured source each run came from
            items = [{**item, "origin": clean(o)} for item, o in zip(items, owners, strict=True)]
        _out(render.dumps(items))
    else:
        rows = render.list_rows(runs, human=_human())
        headers = render.LIST_HEADERS
        if several:
            headers = ("FROM", *headers)
            rows = [(clean(o), *row) for o, row in zip(owners, rows, strict=True)]
        if _human():
            _out(render.table(headers, rows) if rows else "no runs")
        else:
            _out(render.tsv(rows))
    for error in errors:
        print(render.record_error_line(error), file=sys.stderr)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    async with _opened(selection(args)) as sources:
        store, run = await _find(sources, args.run)
        bounds = await store.log_bounds(run.id)
    if args.json:
        _out(render.dumps(render.run_json(run)))
    else:
        _out(render.show(run))
        _out(f"logs: {bounds.count} lines (jobwatch logs {run.id})")
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    async with _opened(selection(args)) as sources:
        store, run = await _find(sources, args.run)
        if args.tail is not None:
            lines = await store.log_tail(run.id, max(0, args.tail))
        else:
            lines = await store.log_lines(run.id, 0, 5000)
        after = 0
        stale = _Stale(store)
        while True:
            for line in lines:
                _out(render.log_line(line, timestamps=args.timestamps))
                after = line.seq
            if len(lines) == 5000:
                lines = await store.log_lines(run.id, after, 5000)
                continue
            if not args.follow:
                return 0
            try:
                run = await store.get(run.id)
                lines = await store.log_lines(run.id, after, 5000)
            except SourceError as exc:  # keep following: the source comes back by itself
                lines = []
                await stale.wait(exc)
                continue
            stale.ok()
            if not lines:
                if not run.status.is_active:
                    return 0
                sys.stdout.flush()
                await asyncio.sleep(FOLLOW_POLL_S)


class _Stale:
    """Says once on stderr that a followed source went stale, backs off, and says
    when it is back: ``logs --follow`` and ``watch`` outlive a server restart."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.since: str | None = None
        self.backoff = Backoff(base=0.5, cap=15.0)

    async def wait(self, exc: Exception) -> None:
        if self.since is None:
            self.since = describe_error(exc)
            print(
                f"jobwatch: source {clean(self.source.name)} is stale ({self.since}); retrying",
                file=sys.stderr,
                flush=True,
            )
        await asyncio.sleep(self.backoff.next(getattr(exc, "retry_after", None)))

    def ok(self) -> None:
        if self.since is not None:
            print(
                f"jobwatch: source {clean(self.source.name)} is back", file=sys.stderr, flush=True
            )
            self.since = None
            self.backoff.reset()


def _confirm(question: str, yes: bool) -> bool:
    """Ask on a terminal (default No); without one, only ``--yes`` proceeds."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise JobwatchError("not a terminal, so nothing to confirm with: pass --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _describe(run: Run) -> str:
    name = clean(run.job or run.label or "")
    return f"{run.id} ({run.status.value}{', ' + name if name else ''}, source {run.source})"


async def _act(args: argparse.Namespace, action: Action) -> int:
    async with _opened(selection(args)) as sources:
        store, run = await _find(sources, args.run)
        reason = refusal(action, run)
        if reason:
            raise TransitionRefused(reason)
        what = {
            Action.ABORT: "Abort {}? Its process group gets SIGTERM, then SIGKILL.",
            Action.ARCHIVE: "Archive {}? It is hidden from lists until unarchived.",
        }
        if action in what and not _confirm(what[action].format(_describe(run)), args.yes):
            print("nothing done", file=sys.stderr)
            return EXIT_ERROR
        if action is Action.ABORT:
            result = await store.abort(run.id, by=_who())
        elif action is Action.ARCHIVE:
            result = await store.archive(run.id)
        else:
            result = await store.unarchive(run.id)
    _out(result.message)
    return 0


async def cmd_abort(args: argparse.Namespace) -> int:
    return await _act(args, Action.ABORT)


async def cmd_archive(args: argparse.Namespace) -> int:
    return await _act(args, Action.ARCHIVE)


async def cmd_unarchive(args: argparse.Namespace) -> int:
    args.yes = True
    return await _act(args, Action.UNARCHIVE)


async def cmd_watch(args: argparse.Namespace) -> int:
    """Wait for the run to end, printing each status change."""
    async with _opened(selection(args)) as sources:
        store, run = await _find(sources, args.run)
        last: Status | None = None
        stale = _Stale(store)
        while True:
            if run.status != last:
                _out(f"{render.status_word(run)}  {run.id}  {render.problem(run)}".rstrip())
                sys.stdout.flush()
                last = run.status
            if not run.status.is_active:
                break
            await asyncio.sleep(args.interval)
            try:
                run = await store.get(run.id)
            except SourceError as exc:  # the last known state stands until it answers
                await stale.wait(exc)
                continue
            stale.ok()
    if args.exit_status and run.status is not Status.SUCCEEDED:
        return EXIT_ERROR
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    from jobwatch.apps.runner import run_command

    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise JobwatchError("nothing to run: jobwatch run [--job NAME] -- CMD [ARGS…]")
    return await run_command(
        _store_path(args), argv, job=args.job, label=args.label, grace=args.grace
    )


async def cmd_demo(args: argparse.Namespace) -> int:
    from jobwatch.apps.demo import run_demo

    return await run_demo(
        Path(args.store).expanduser() if getattr(args, "store", None) else None,
        runs=args.runs,
        seconds=args.seconds,
        headless=args.headless,
        seed=args.seed,
    )


async def cmd_serve(args: argparse.Namespace) -> int:
    """Serve one source (the local store unless told otherwise) over HTTP."""
    try:
        from jobwatch.server import main as server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in {"fastapi", "starlette", "uvicorn", "pydantic"}:
            raise JobwatchError(
                "jobwatch serve needs the server extra: pip install 'jobwatch[server]'"
            ) from None
        raise
    token, warnings = server.load_token(Path(args.token_file) if args.token_file else None)
    for warning in warnings:
        print(f"jobwatch serve: warning: {clean(warning)}", file=sys.stderr)
    specs = list(getattr(args, "source", None) or [])
    given_store = getattr(args, "store", None)
    source: Source
    if specs:  # serving a configured source; by default the local store
        sel = selection(args)
        if len(sel.sources) != 1:
            raise JobwatchError("jobwatch serve serves one source: give one --source or --store")
        source = sel.sources[0]
        source.read_only = source.read_only or args.read_only
    else:
        path = Path(given_store).expanduser() if given_store else default_store_path()
        source = SqliteStore(path, create=not args.read_only, read_only=args.read_only)
    return await server.serve(
        source,
        host=args.host,
        port=args.port,
        token=token,
        read_only=args.read_only,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        access_log=args.access_log,
    )


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


def monitor_options(args: argparse.Namespace) -> MonitorOptions:
    """The monitor's sources and settings from ``args`` and the config file.

    Sources are chosen as for every verb (``--store``, ``--source``, the config's
    ``default_sources``, else the local store); the config's warnings go to the
    monitor (a toast), not to a terminal it is about to take over.
    """
    flag_read_only = bool(getattr(args, "read_only", False))
    sel = selection(args, warn=False, read_only=flag_read_only)
    config = sel.config
    refresh = getattr(args, "refresh", None)
    bell = getattr(args, "bell", None)
    return MonitorOptions(
        sources=sel.sources,
        refresh=config.refresh if refresh is None else refresh,
        theme=getattr(args, "theme", None) or config.theme,
        read_only=flag_read_only or config.read_only,
        bell=config.bell if bell is None else bell,
        warnings=config.warnings,
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
        warnings=options.warnings,
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


# -- parser ------------------------------------------------------------------------


def _status(value: str) -> Status:
    try:
        return Status(value.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise argparse.ArgumentTypeError(f"unknown status {value!r} (one of {names})") from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="store file (default: $JOBWATCH_STORE or the user data dir)",
    )
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="config file (default: $JOBWATCH_CONFIG or config.toml in the user config dir)",
    )
    common.add_argument(
        "--source",
        action="append",
        metavar="NAME|URL|PATH",
        default=argparse.SUPPRESS,
        help="a configured source, a jobwatch server URL or a store path (repeatable); "
        "for list, any other NAME filters runs by their source field",
    )

    parser = argparse.ArgumentParser(
        prog="jobwatch",
        description="Watch job runs: live table, details, logs, abort and archive.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"jobwatch {__version__}")
    parser.add_argument(
        "--refresh",
        type=float,
        default=None,
        metavar="SECONDS",
        help="poll interval (default: refresh in the config, else 1)",
    )
    parser.add_argument(
        "--theme",
        metavar="NAME",
        help="jobwatch-dark (default), "
        "jobwatch-light, jobwatch-high-contrast, jobwatch-colorblind, "
        "jobwatch-mono, or a user theme",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="watch only: abort and archive are disabled (also read_only in the config)",
    )
    parser.add_argument(
        "--bell",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ring the terminal bell when a run fails (default: bell in the config, else on)",
    )
    parser.set_defaults(func=cmd_monitor)
    verbs = parser.add_subparsers(title="verbs", metavar="VERB")

    def verb(name: str, func: Callable[..., Awaitable[int]], help: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    p = verb("list", cmd_list, "list runs, newest first")
    p.add_argument("--status", action="append", type=_status, metavar="S", help="repeatable")
    p.add_argument("--faults", action="store_true", help="failed, timed_out and unknown only")
    p.add_argument("--job", action="append", metavar="J")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="0 for no limit")
    p.add_argument("--all", action="store_true", help="include archived runs")
    p.add_argument("--json", action="store_true", help="normalized model, redacted")

    p = verb("show", cmd_show, "show one run in detail")
    p.add_argument("run", metavar="RUN", help="run id or a unique prefix")
    p.add_argument("--json", action="store_true")

    p = verb("logs", cmd_logs, "print a run's log")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--timestamps", "-t", action="store_true")

    for name, func, text in (
        ("abort", cmd_abort, "abort a run that has not finished"),
        ("archive", cmd_archive, "archive a finished run (undo with unarchive)"),
    ):
        p = verb(name, func, text)
        p.add_argument("run", metavar="RUN")
        p.add_argument("--yes", "-y", action="store_true", help="do not ask")

    p = verb("unarchive", cmd_unarchive, "bring an archived run back")
    p.add_argument("run", metavar="RUN")

    p = verb("watch", cmd_watch, "wait for a run to end")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--exit-status", action="store_true", help="exit 1 unless it succeeded")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS")

    p = verb("run", cmd_run, "run a command as a watched run")
    p.add_argument("--job", metavar="NAME", help="default: the command's name")
    p.add_argument("--label", metavar="TEXT", help="default: the command line")
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="after SIGTERM on abort, wait this long before SIGKILL",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS…]")

    p = verb("serve", cmd_serve, "serve a store over HTTP for monitors on other machines")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs a token)",
    )
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port (printed)")
    p.add_argument("--read-only", action="store_true", help="refuse abort/archive/unarchive")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="bearer token clients must send (default: $JOBWATCH_TOKEN)",
    )
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="…and this private key")
    p.add_argument("--access-log", action="store_true", help="log every request")

    p = verb("demo", cmd_demo, "fill a store with demo runs and keep them live")
    p.add_argument("--runs", type=int, default=300, metavar="N", help="history size")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    p.add_argument("--headless", action="store_true", help="simulate only, no monitor")
    p.add_argument("--seed", type=int, default=None, help="repeatable demo data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(args.func(args))
    except JobwatchError as exc:
        print(f"jobwatch: {clean(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `jobwatch list | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so in one line; JOBWATCH_DEBUG=1 for the trace
        if os.environ.get("JOBWATCH_DEBUG"):
            raise
        name = type(exc).__name__
        print(
            f"jobwatch: internal error ({name}): {clean(str(exc))} "
            "(set JOBWATCH_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
