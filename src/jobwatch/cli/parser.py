"""The argument parser: every verb, its flags and their checks."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from jobwatch import __version__
from jobwatch.core import Status

if TYPE_CHECKING:
    pass

from jobwatch.cli.monitor import cmd_monitor
from jobwatch.cli.verbs import (
    cmd_abort,
    cmd_archive,
    cmd_demo,
    cmd_list,
    cmd_logs,
    cmd_run,
    cmd_serve,
    cmd_show,
    cmd_unarchive,
    cmd_watch,
)

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
    p.add_argument(
        "--lock-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for a store another process keeps locked, then spool the "
        "run (default 30)",
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
