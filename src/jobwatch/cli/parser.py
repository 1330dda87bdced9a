"""The argument parser: every verb, its flags and their checks.

Every number is checked here, finite and in a sensible range, so a bad one is
one line on stderr and exit 2 before anything runs (``--refresh nan`` used to
spin a core, ``--port 99999`` to listen on 34463). Abbreviated flags are not
accepted: ``--token X`` must not be taken for ``--token-file X``. Error lines are
redacted, since what was typed may be a secret.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from jobwatch import __version__
from jobwatch.cli.monitor import cmd_monitor
from jobwatch.cli.triage_verbs import cmd_failures, cmd_jobs
from jobwatch.cli.verbs import (
    EXIT_USAGE,
    cmd_abort,
    cmd_archive,
    cmd_demo,
    cmd_diff,
    cmd_list,
    cmd_logs,
    cmd_prune,
    cmd_rerun,
    cmd_run,
    cmd_schedules,
    cmd_serve,
    cmd_show,
    cmd_unarchive,
    cmd_watch,
)
from jobwatch.core import Status
from jobwatch.core.columns import SORTS
from jobwatch.core.redact import clean

# -- parser ------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """No prefix matching of long flags, and errors as one redacted line.

    Subparsers are made of this class too (argparse uses the parent's type)."""

    def __init__(self, *args: object, **kw: object) -> None:
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"jobwatch: {clean(message)} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _status(value: str) -> Status:
    try:
        return Status(value.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise argparse.ArgumentTypeError(f"unknown status {value!r} (one of {names})") from None


def _shown(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number of seconds from ``low`` to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"{clean(text)!r} is not a number of seconds from {_shown(low)} to {_shown(high)}"
            )
        return value

    return parse


def count(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip()) if len(text) <= 32 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{clean(text)!r} is not {what} from {_shown(low)} to {_shown(high)}"
            )
        return value

    return parse


def span(text: str, *, zero: bool = False) -> float:
    """An argparse ``type``: ``90``, ``90s``, ``10m``, ``1h``, ``2d`` in seconds (above
    0, or also 0 with ``zero``)."""
    from jobwatch.config.live import parse_span

    try:
        value = parse_span(text) if len(text) <= 32 else -1.0
    except ValueError:
        value = -1.0
    if value < 0 or (value == 0 and not zero):
        raise argparse.ArgumentTypeError(f"{clean(text)!r} is not a duration such as 10m or 1h")
    return value


def span_or_zero(text: str) -> float:
    return span(text, zero=True)


REFRESH = seconds(0.1, 3600)
INTERVAL = seconds(0.1, 3600)
GRACE = seconds(0, 86_400)
PORT = count(0, 65_535, "a port")
LIMIT = count(0, 10_000_000)
TAIL = count(0, 10_000_000)
DEMO_RUNS = count(0, 1_000_000)
DEMO_SECONDS = seconds(0, 31_536_000)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def age(text: str) -> float:
    """An argparse ``type``: an age such as ``30d``, ``12h``, ``90m``, ``45s``, ``2w``."""
    match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,6})?)\s*([smhdw]?)\s*", text.lower())
    value = float(match[1]) * _AGE_UNITS[match[2]] if match else math.nan
    if not (math.isfinite(value) and 0 <= value <= 100 * 31_536_000):
        raise argparse.ArgumentTypeError(
            f"{clean(text)!r} is not an age such as 30d, 12h, 90m or 45s (up to 100 years)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
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
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="refuse every write: abort, archive and unarchive, from any verb and the "
        "monitor (also read_only in the config)",
    )
    common.add_argument(
        "--source",
        action="append",
        metavar="NAME|URL|PATH",
        default=argparse.SUPPRESS,
        help="a configured source, a jobwatch server URL or a store path (repeatable); "
        "for list, any other NAME filters runs by their source field",
    )

    parser = Parser(
        prog="jobwatch",
        description="Watch job runs: live table, details, logs, abort and archive.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"jobwatch {__version__}")
    parser.add_argument(
        "--refresh",
        type=REFRESH,
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
    p.add_argument("--limit", type=LIMIT, default=50, metavar="N", help="0 for no limit")
    p.add_argument("--all", action="store_true", help="include archived runs")
    p.add_argument("--json", action="store_true", help="normalized model, redacted")
    p.add_argument(
        "--columns",
        nargs="?",
        const="",
        metavar="A,B",
        help="these columns (e.g. status,id,job,problem); alone: the config's columns",
    )
    p.add_argument(
        "--sort",
        choices=SORTS,
        default="started",
        help="order as the monitor's s does (changed: the later of end and start)",
    )

    p = verb("jobs", cmd_jobs, "one line per job: last status, success rate, p50/p95, trend")
    p.add_argument("--json", action="store_true", help="for scripts, redacted")

    p = verb("failures", cmd_failures, "failures grouped by signature, most frequent first")
    p.add_argument("--since", type=age, default=86_400.0, metavar="AGE", help="default 24h")
    p.add_argument("--json", action="store_true", help="for scripts, redacted")

    p = verb("show", cmd_show, "show one run in detail")
    p.add_argument("run", metavar="RUN", help="run id or a unique prefix")
    p.add_argument("--json", action="store_true")

    p = verb("logs", cmd_logs, "print a run's log")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    p.add_argument("--tail", type=TAIL, metavar="N", help="only the last N lines")
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

    p = verb("watch", cmd_watch, "wait for a run to end; without RUN, watch every run")
    p.add_argument("run", metavar="RUN", nargs="?", help="omit to watch all runs (hooks fire)")
    p.add_argument("--exit-status", action="store_true", help="exit 1 unless it succeeded")
    p.add_argument("--interval", type=INTERVAL, default=1.0, metavar="SECONDS")
    p.add_argument(
        "--late",
        action="store_true",
        help="check once whether a scheduled job is late; exit 1 while one is",
    )
    p.add_argument("--json", action="store_true", help="events (or --late's answer) as JSON")
    p.add_argument(
        "--for", dest="for_s", type=DEMO_SECONDS, metavar="S", help="stop after S seconds"
    )

    p = verb("schedules", cmd_schedules, "list scheduled jobs: expected next, last start, late")
    p.add_argument("--json", action="store_true")

    p = verb("run", cmd_run, "run a command as a watched run")
    p.add_argument("--job", metavar="NAME", help="default: the command's name")
    p.add_argument("--label", metavar="TEXT", help="default: the command line")
    p.add_argument(
        "--grace",
        type=GRACE,
        default=10.0,
        metavar="SECONDS",
        help="after SIGTERM on abort, wait this long before SIGKILL",
    )
    p.add_argument(
        "--every",
        type=span,
        metavar="SPAN",
        help="expect a run of this job every SPAN (e.g. 1h): later than that it is late",
    )
    p.add_argument(
        "--late-grace",
        type=span_or_zero,
        metavar="SPAN",
        help="with --every: slack before a missed start counts as late (e.g. 10m)",
    )
    p.add_argument(
        "--lock-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for a store another process keeps locked, then spool the "
        "run (default 30)",
    )
    p.add_argument(
        "--snapshot-env",
        action="append",
        default=[],
        metavar="VAR",
        help="record this variable in the run's snapshot, redacted (repeatable)",
    )
    p.add_argument(
        "--snapshot",
        action="append",
        default=[],
        metavar="FILE",
        help="record this JSON, TOML or YAML file's content in the snapshot, redacted "
        "(repeatable; one that cannot be read is a warning, the command runs anyway)",
    )
    p.add_argument("--run-id", default=None, help=argparse.SUPPRESS)  # set by a rerun
    p.add_argument("--rerun-of", default=None, help=argparse.SUPPRESS)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS…]")

    p = verb("diff", cmd_diff, "what changed in a run's configuration snapshot")
    p.add_argument("run", metavar="RUN", help="run id or a unique prefix")
    p.add_argument(
        "other",
        metavar="OTHER",
        nargs="?",
        help="the run to compare with (default: the last succeeded run of the same job before RUN)",
    )
    p.add_argument("--json", action="store_true", help="the structured diff")

    p = verb("rerun", cmd_rerun, "start a finished run's job again (a new, linked run)")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")

    p = verb("prune", cmd_prune, "delete finished runs older than an age (never active ones)")
    p.add_argument("--older-than", type=age, required=True, metavar="AGE", help="e.g. 30d, 12h")
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")

    p = verb("serve", cmd_serve, "serve a store over HTTP for monitors on other machines")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs a token)",
    )
    p.add_argument("--port", type=PORT, default=8787, help="0 picks a free port (printed)")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="bearer token clients must send (default: $JOBWATCH_TOKEN)",
    )
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="…and this private key")
    p.add_argument("--access-log", action="store_true", help="log every request")

    p = verb("demo", cmd_demo, "fill a store with demo runs and keep them live")
    p.add_argument("--runs", type=DEMO_RUNS, default=300, metavar="N", help="history size")
    p.add_argument(
        "--seconds",
        type=DEMO_SECONDS,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    p.add_argument("--headless", action="store_true", help="simulate only, no monitor")
    p.add_argument("--seed", type=int, default=None, help="repeatable demo data")
    p.add_argument(
        "--refresh",
        type=REFRESH,
        default=None,
        metavar="SECONDS",
        help="the monitor's poll interval (default: refresh in the config, else 1)",
    )
    p.add_argument("--theme", metavar="NAME", help="the monitor's theme, as for jobwatch")
    return parser
