"""Command line: ``jobwatch [VERB] …``. No verb opens the monitor.

Verbs are ``gh run``-style for scripts: aligned tables on a terminal, tab-separated
lines through a pipe, ``--json`` for the normalized (redacted) model. Every error
is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from jobwatch import __version__, render
from jobwatch.errors import JobwatchError, TransitionRefused
from jobwatch.models import FAULTS, Action, Run, Status, refusal
from jobwatch.paths import default_store_path
from jobwatch.redact import clean
from jobwatch.store import SqliteStore

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FOLLOW_POLL_S = 0.5


def _store_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "store", None)
    return Path(given).expanduser() if given else default_store_path()


def _open(args: argparse.Namespace, *, create: bool = False) -> SqliteStore:
    return SqliteStore(_store_path(args), create=create)


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
    async with _open(args) as store:
        runs, errors = await store.list_runs(
            statuses=statuses,
            jobs=args.job or [],
            sources=args.source or [],
            include_archived=args.all,
            limit=None if args.limit <= 0 else args.limit,
        )
    if args.json:
        _out(render.dumps([render.run_json(r) for r in runs]))
    else:
        rows = render.list_rows(runs, human=_human())
        if _human():
            _out(render.table(render.LIST_HEADERS, rows) if rows else "no runs")
        else:
            _out(render.tsv(rows))
    for error in errors:
        print(render.record_error_line(error), file=sys.stderr)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    async with _open(args) as store:
        run = await store.get(args.run)
        bounds = await store.log_bounds(run.id)
    if args.json:
        _out(render.dumps(render.run_json(run)))
    else:
        _out(render.show(run))
        _out(f"logs: {bounds.count} lines (jobwatch logs {run.id})")
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    async with _open(args) as store:
        run = await store.get(args.run)
        if args.tail is not None:
            lines = await store.log_tail(run.id, max(0, args.tail))
        else:
            lines = await store.log_lines(run.id, 0, 5000)
        after = 0
        while True:
            for line in lines:
                _out(render.log_line(line, timestamps=args.timestamps))
                after = line.seq
            if len(lines) == 5000:
                lines = await store.log_lines(run.id, after, 5000)
                continue
            if not args.follow:
                return 0
            run = await store.get(run.id)
            lines = await store.log_lines(run.id, after, 5000)
            if not lines:
                if not run.status.is_active:
                    return 0
                sys.stdout.flush()
                await asyncio.sleep(FOLLOW_POLL_S)


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
    async with _open(args) as store:
        run = await store.get(args.run)
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
    async with _open(args) as store:
        run = await store.get(args.run)
        last: Status | None = None
        while True:
            if run.status != last:
                _out(f"{render.status_word(run)}  {run.id}  {render.problem(run)}".rstrip())
                sys.stdout.flush()
                last = run.status
            if not run.status.is_active:
                break
            await asyncio.sleep(args.interval)
            run = await store.get(run.id)
    if args.exit_status and run.status is not Status.SUCCEEDED:
        return EXIT_ERROR
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    from jobwatch.runner import run_command

    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise JobwatchError("nothing to run: jobwatch run [--job NAME] -- CMD [ARGS…]")
    return await run_command(
        _store_path(args), argv, job=args.job, label=args.label, grace=args.grace
    )


async def cmd_demo(args: argparse.Namespace) -> int:
    from jobwatch.demo import run_demo

    return await run_demo(
        Path(args.store).expanduser() if args.store else None,
        runs=args.runs,
        seconds=args.seconds,
        headless=args.headless,
        seed=args.seed,
    )


async def cmd_monitor(args: argparse.Namespace) -> int:
    """``jobwatch`` with no verb: the Textual monitor (imported only when needed,
    so the scripting verbs start fast)."""
    from jobwatch.tui.app import JobwatchApp

    store = SqliteStore(_store_path(args), create=False, read_only=args.read_only)
    await store.open()
    try:
        app = JobwatchApp([store], refresh=args.refresh, read_only=args.read_only, theme=args.theme)
        await app.run_async()
    finally:
        await store.close()
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

    parser = argparse.ArgumentParser(
        prog="jobwatch",
        description="Watch job runs: live table, details, logs, abort and archive.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"jobwatch {__version__}")
    parser.add_argument(
        "--refresh", type=float, default=1.0, metavar="SECONDS", help="poll interval"
    )
    parser.add_argument(
        "--theme",
        metavar="NAME",
        help="jobwatch-dark (default), "
        "jobwatch-light, jobwatch-high-contrast, jobwatch-colorblind, "
        "jobwatch-mono, or a user theme",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="watch only: abort and archive are disabled"
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
    p.add_argument("--source", action="append", metavar="NAME")
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
