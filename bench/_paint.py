"""The monitor probe (``bench/_tui_probe.py paint``) as ``bench_serve.py`` and
``bench_postgres.py`` run it: a fresh process, started as an installed app starts.

A wheel install compiles its modules once and an editable one writes ``.pyc``
files on first import, so a user's monitor never compiles jobwatch, Textual or
Rich at start. A shell with ``PYTHONDONTWRITEBYTECODE`` set (this machine's is)
makes every fresh probe compile some 440 modules again: about 0.2 s of a first
paint that no user pays. :func:`cached` points the probes at one bytecode cache
outside the source tree and fills it once, before anything is measured, and
:func:`paints` throws the first probe away (it warms the OS page cache), as
``bench_tui.py`` does.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = Path(__file__).resolve().with_name("_tui_probe.py")

WARM = "import jobwatch.cli.main, jobwatch.tui.app, jobwatch.sources.http.client"


def cached(env: dict[str, str], cache: Path) -> dict[str, str]:
    """``env`` with bytecode written to and read from ``cache``, warmed once."""
    out = dict(env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    out["PYTHONPYCACHEPREFIX"] = str(cache)
    if not cache.exists():
        cache.mkdir(parents=True)
        subprocess.run(
            [sys.executable, "-c", WARM],
            env=out,
            check=False,
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    return out


def paints(target: str, env: dict[str, str], cache: Path, repeats: int) -> list[dict[str, Any]]:
    """The events of ``repeats`` paint probes of the monitor on ``target`` (a URL or
    a DSN), after one warm-up probe; raises ``RuntimeError`` with the probe's last
    words when one did not get to its peak RSS."""
    env = cached(env, cache)
    runs: list[dict[str, Any]] = []
    for n in range(repeats + 1):
        done = subprocess.run(
            [sys.executable, str(PROBE), "paint", target],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        events: dict[str, Any] = {}
        for line in done.stdout.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                events[record["event"]] = record
        if "rss" not in events or "synced" not in events:
            raise RuntimeError(f"monitor probe failed: {done.stderr.strip().splitlines()[-3:]}")
        if n:
            runs.append(events)
    return runs
