"""Start a kept command again as a detached ``jobwatch run``.

Detached twice over: a short-lived launcher process starts the new wrapper in a
session of its own and exits at once, so the wrapper is nobody's child (no
zombie left in a monitor that runs for days) and nothing of the caller — its
terminal, its process group, its exit — reaches it. The command line goes to
the launcher on its stdin, not in the launcher's own argv.

The environment is the caller's, not the original run's: the original's was
never kept (only the variables named by ``--snapshot-env``, redacted), and the
new run's snapshot shows what it got, so the diff tells what changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["LAUNCH_TIMEOUT_S", "RelaunchError", "relaunch", "wrapper_argv"]

LAUNCH_TIMEOUT_S = 20.0

_LAUNCHER = """
import json, os, subprocess, sys
spec = json.load(sys.stdin)
try:
    p = subprocess.Popen(
        spec["argv"], cwd=spec["cwd"], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
except OSError as exc:
    print(exc.strerror or exc, file=sys.stderr)
    sys.exit(1)
print(p.pid)
"""


class RelaunchError(Exception):
    """The new wrapper could not be started (the reason, already readable)."""


def wrapper_argv(spec: dict[str, Any], *, store: Path, run_id: str, rerun_of: str) -> list[str]:
    """The ``jobwatch run`` that repeats ``spec``, into ``store``, as ``run_id``."""
    argv = [sys.executable, "-m", "jobwatch", "run", "--store", str(store)]
    argv += ["--run-id", run_id, "--rerun-of", rerun_of]
    for flag, key in (("--job", "job"), ("--label", "label")):
        if isinstance(spec.get(key), str):
            argv += [flag, spec[key]]
    grace = spec.get("grace")
    if isinstance(grace, int | float) and not isinstance(grace, bool):
        argv += ["--grace", repr(float(grace))]
    for name in spec.get("snapshot_env") or ():
        argv += ["--snapshot-env", str(name)]
    for name in spec.get("snapshot_files") or ():
        argv += ["--snapshot", str(name)]
    return [*argv, "--", *(str(a) for a in spec["argv"])]


def relaunch(spec: dict[str, Any], *, store: Path, run_id: str, rerun_of: str) -> int:
    """Start the wrapper in ``spec["cwd"]``; returns its pid."""
    launch = {
        "argv": wrapper_argv(spec, store=store, run_id=run_id, rerun_of=rerun_of),
        "cwd": spec["cwd"],
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER],
            input=json.dumps(launch),
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RelaunchError(f"cannot start jobwatch run: {exc}") from None
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        why = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise RelaunchError(f"cannot start jobwatch run: {why[0]}")
    return int(done.stdout.strip())
