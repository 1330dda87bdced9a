"""The scripting verbs: ``list``, ``show``, ``logs``, ``abort``, ``archive``, ``unarchive``,
``watch``, ``run``, ``demo`` and ``serve``.

Verbs are ``gh run``-style for scripts: aligned tables on a terminal, tab-separated
lines through a pipe, ``--json`` for the normalized (redacted) model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jobwatch.cli import output as render
from jobwatch.core import FAULTS, Action, Status, refusal
from jobwatch.core import format as fmt
from jobwatch.core.errors import (
    JobwatchError,
    SourceError,
    TransitionRefused,
)
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.health import Backoff, describe_error
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.protocol import Source

if TYPE_CHECKING:
    from jobwatch.core import Run

from jobwatch.cli.selection import (
    _find,
    _human,
    _list_one,
    _newest_first,
    _opened,
    _out,
    _store_path,
    _warn_source,
    _who,
    selection,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FOLLOW_POLL_S = 0.5


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
        items = [fmt.run_json(r) for r in runs]
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
        _out(render.dumps(fmt.run_json(run)))
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
                _out(fmt.log_line(line, timestamps=args.timestamps))
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
                _out(f"{fmt.status_word(run)}  {run.id}  {fmt.problem(run)}".rstrip())
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
        _store_path(args),
        argv,
        job=args.job,
        label=args.label,
        grace=args.grace,
        lock_wait=args.lock_wait,
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
