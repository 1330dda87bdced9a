"""The scripting verbs: ``list``, ``show``, ``logs``, ``abort``, ``archive``, ``unarchive``,
``watch``, ``run``, ``demo`` and ``serve``.

Verbs are ``gh run``-style for scripts: aligned tables on a terminal, tab-separated
lines through a pipe, ``--json`` for the normalized (redacted) model. They read
through the one :class:`~jobwatch.sources.poller.Poller` and ask
:mod:`jobwatch.core.rules` before any write, so they refuse and confirm exactly as
the monitor does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jobwatch.cli import output as render
from jobwatch.cli.selection import (
    human,
    opened,
    out,
    selection,
    store_arg,
    store_path,
    warn_exposed,
    who,
)
from jobwatch.config import load_config
from jobwatch.core import FAULTS, Action, RunRow, Status
from jobwatch.core import format as fmt
from jobwatch.core.columns import sort_key
from jobwatch.core.errors import JobwatchError, SourceError, TransitionRefused
from jobwatch.core.redact import clean
from jobwatch.core.rules import Target, plan
from jobwatch.sources.protocol import ListQuery, Source
from jobwatch.sources.select import default_store

if TYPE_CHECKING:
    from jobwatch.apps.demo import DemoView
    from jobwatch.core import LogLine

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FOLLOW_POLL_S = 0.5
LOG_PAGE = 5000


async def cmd_list(args: argparse.Namespace) -> int:
    statuses = [s.value for s in args.status or []]
    if args.faults:
        statuses += [s.value for s in FAULTS]
    sel = selection(args, filters_ok=True)
    columns = render.list_columns(getattr(args, "columns", None), sel.config.columns)
    query = ListQuery(
        statuses=tuple(statuses),
        jobs=tuple(args.job or ()),
        run_sources=tuple(sel.run_sources),
        include_archived=args.all,
        # Another order than newest first needs every match before the limit cuts.
        limit=None if args.limit <= 0 or args.sort != "started" else args.limit,
    )
    async with opened(sel, mode="runs") as poller:
        pairs, errors, failed = await poller.list_runs(query)
    if args.sort != "started":  # the registry's sort key, the same as the monitor's
        key = sort_key(args.sort)
        pairs.sort(key=lambda pair: key(RunRow.from_run(pair[1])))
        pairs = pairs[: args.limit] if args.limit > 0 else pairs
    if failed and not sel.several:
        raise SourceError(next(iter(failed.values())))
    for name, why in failed.items():
        print(f"jobwatch: warning: source {clean(name)}: {why}", file=sys.stderr)
    runs = [run for _, run in pairs]
    owners = [feed.name for feed, _ in pairs]
    if args.json:
        items = [fmt.run_json(r) for r in runs]
        if sel.several:  # which configured source each run came from
            items = [{**item, "origin": clean(o)} for item, o in zip(items, owners, strict=True)]
        out(render.dumps(items))
    else:
        rows = render.list_rows(runs, human=human(), columns=columns)
        headers = tuple(c.header for c in columns)
        if sel.several:
            headers = ("FROM", *headers)
            rows = [(clean(o), *row) for o, row in zip(owners, rows, strict=True)]
        if human():
            out(render.table(headers, rows) if rows else "no runs")
        else:
            out(render.tsv(rows))
    for error in errors:
        print(render.record_error_line(error), file=sys.stderr)
    if errors:  # counted apart: an unreadable record is no run of unknown status
        noun = "record" if len(errors) == 1 else "records"
        print(f"jobwatch: {len(errors)} unreadable {noun}, not counted as runs", file=sys.stderr)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    async with opened(selection(args), mode="runs") as poller:
        feed, run = await poller.find(args.run)
        bounds = await feed.source.log_bounds(run.id)
    if args.json:
        out(render.dumps(fmt.run_json(run)))
    else:
        out(render.show(run))
        out(f"logs: {bounds.count} lines (jobwatch logs {run.id})")
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    async with opened(selection(args), mode="runs") as poller:
        feed, run = await poller.find(args.run)
        source = feed.source

        def emit(lines: list[LogLine]) -> None:
            for line in lines:
                out(fmt.log_line(line, timestamps=args.timestamps))
            sys.stdout.flush()

        after = 0
        if args.tail is not None:
            lines = await source.log_tail(run.id, max(0, args.tail))
            emit(lines)
            after = lines[-1].seq if lines else (await source.log_bounds(run.id)).last
        if args.tail is None or args.follow:
            until_end = not args.follow
            await poller.follow_log(
                feed,
                run,
                after=after,
                interval=FOLLOW_POLL_S,
                on_lines=emit,
                page=LOG_PAGE,
                until_caught_up=until_end,
            )
    return 0


def _confirm(question: str, details: str, yes: bool) -> bool:
    """Ask on a terminal (default No); without one, only ``--yes`` proceeds."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise JobwatchError("not a terminal, so nothing to confirm with: pass --yes")
    print(details, file=sys.stderr)
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


async def _act(args: argparse.Namespace, action: Action) -> int:
    sel = selection(args)
    async with opened(sel, mode="runs") as poller:
        feed, run = await poller.find(args.run)
        target = Target(run, feed.source, clean(run.job or run.label or ""), fmt.GLYPHS[run.status])
        decided = plan(action, [target], read_only=sel.read_only)
        if not decided.allowed:
            raise TransitionRefused(decided.refused[0])
        question = decided.confirmation
        if question is not None:
            details = "\n".join([*question.lines(), "", question.footer])
            if not _confirm(question.title, details, getattr(args, "yes", False)):
                print("nothing done", file=sys.stderr)
                return EXIT_ERROR
        result = await poller.act(
            action, poller.key(feed, run.id), by=who(), read_only=sel.read_only, current=run
        )
    out(clean(result.message))
    return 0


async def cmd_abort(args: argparse.Namespace) -> int:
    return await _act(args, Action.ABORT)


async def cmd_archive(args: argparse.Namespace) -> int:
    return await _act(args, Action.ARCHIVE)


async def cmd_unarchive(args: argparse.Namespace) -> int:
    return await _act(args, Action.UNARCHIVE)


async def cmd_rerun(args: argparse.Namespace) -> int:
    return await _act(args, Action.RERUN)


async def cmd_diff(args: argparse.Namespace) -> int:
    from jobwatch.cli.diff import diff_verb

    return await diff_verb(args)


async def cmd_watch(args: argparse.Namespace) -> int:
    """Wait for the run to end, printing each status change; without a run, watch
    them all (``cli/live_verbs.py``: events, hooks, ``--late``)."""
    if args.late or args.run is None:
        from jobwatch.cli.live_verbs import watch_all

        return await watch_all(args)
    async with opened(selection(args), mode="runs") as poller:
        feed, run = await poller.find(args.run)
        shown: list[Status] = []

        def changed(now: object) -> None:
            assert isinstance(now, type(run))
            if not shown or shown[-1] is not now.status:
                out(f"{fmt.status_word(now)}  {now.id}  {fmt.problem(now)}".rstrip())
                sys.stdout.flush()
                shown.append(now.status)

        run = await poller.watch_run(feed, run, interval=args.interval, on_change=changed)
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
    path = store_path(args)
    warn_exposed(path)
    return await run_command(
        path,
        argv,
        job=args.job,
        label=args.label,
        grace=args.grace,
        lock_wait=args.lock_wait,
        run_id=args.run_id,
        rerun_of=args.rerun_of,
        snapshot_env=args.snapshot_env,
        snapshot_files=args.snapshot,
        every=(args.every, args.late_grace or 0.0) if args.every else None,
    )


async def cmd_demo(args: argparse.Namespace) -> int:
    from jobwatch.apps.demo import run_demo

    path = store_arg(args)
    if path is None and isinstance(default_store(), str):
        path = str(default_store())  # $JOBWATCH_STORE names a database
    if isinstance(path, str):
        raise JobwatchError("jobwatch demo fills a store file: give --store PATH, not a DSN")
    if path is not None:
        warn_exposed(path)
    return await run_demo(
        path,
        runs=args.runs,
        seconds=args.seconds,
        headless=args.headless,
        seed=args.seed,
        view=demo_view(args),
    )


def demo_view(args: argparse.Namespace) -> DemoView:
    """How ``jobwatch demo`` shows its store: ``--theme``, ``--read-only`` and
    ``--refresh`` over the config file, as for the monitor."""
    from jobwatch.apps.demo import DemoView

    config_file = getattr(args, "config", None)
    config = load_config(Path(config_file).expanduser() if config_file else None)
    refresh = getattr(args, "refresh", None)
    return DemoView(
        theme=getattr(args, "theme", None) or config.theme,
        read_only=bool(getattr(args, "read_only", False)) or config.read_only,
        refresh=config.refresh if refresh is None else refresh,
        bell=config.bell,
        toasts=config.notify,
        keymap=dict(config.keys),
        warnings=list(config.warnings),
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
    read_only = bool(getattr(args, "read_only", False))
    source: Source
    if specs:  # serving a configured source; by default the local store
        sel = selection(args)
        if len(sel.sources) != 1:
            raise JobwatchError("jobwatch serve serves one source: give one --source or --store")
        source = sel.sources[0]
        source.read_only = source.read_only or read_only
    else:  # a writable server may create the store; a read-only one only reads it
        path = store_path(args)
        warn_exposed(path)
        if isinstance(path, str):  # a PostgreSQL DSN
            from jobwatch.sources.postgres.store import PostgresStore

            source = PostgresStore(path, mode="read" if read_only else "create")
        else:
            from jobwatch.sources.local import SqliteStore

            source = SqliteStore(path, mode="read" if read_only else "create")
    return await server.serve(
        source,
        host=args.host,
        port=args.port,
        token=token,
        read_only=read_only,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        access_log=args.access_log,
    )


async def cmd_prune(args: argparse.Namespace) -> int:
    """Delete finished runs older than ``--older-than`` from one store (SQLite or
    PostgreSQL); an active run is never touched. ``--dry-run`` only lists them."""
    import time

    from jobwatch.sources.local import SqliteStore
    from jobwatch.sources.local.prune import prune_sqlite

    sel = selection(args)
    if sel.read_only and not args.dry_run:
        raise TransitionRefused("cannot prune: read-only mode (--read-only or read_only in config)")
    if len(sel.sources) != 1 or not _is_store(sel.sources[0]):
        raise JobwatchError("jobwatch prune works on one store: give --store PATH or a DSN")
    before = time.time() - args.older_than
    async with opened(sel, mode="runs") as poller:
        source = poller.sources[0]
        if isinstance(source, SqliteStore):
            ids, lines = await prune_sqlite(source, before, dry_run=args.dry_run)
        else:
            from jobwatch.sources.postgres.store import PostgresStore

            assert isinstance(source, PostgresStore)
            ids, lines = await source.prune(before, dry_run=args.dry_run)
    cut = fmt_time(before)
    if args.dry_run:
        out(f"would prune {len(ids)} runs and {lines} log lines (finished before {cut}):")
        for run_id in ids:
            out(f"  {clean(run_id)}")
    else:
        out(f"pruned {len(ids)} runs and {lines} log lines (finished before {cut})")
    return 0


def _is_store(source: Source) -> bool:
    from jobwatch.sources.local import SqliteStore

    if isinstance(source, SqliteStore):
        return True
    return type(source).__name__ == "PostgresStore"


def fmt_time(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def cmd_schedules(args: argparse.Namespace) -> int:
    from jobwatch.cli.live_verbs import cmd_schedules as schedules

    return await schedules(args)
