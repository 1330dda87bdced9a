"""Bytecode for the benchmarks' child processes, as an installed app has it.

A wheel install compiles its modules once and an editable one writes ``.pyc``
files on first import, so a user's monitor never compiles jobwatch, Textual or
Rich at start. A shell with ``PYTHONDONTWRITEBYTECODE`` set (this machine's is)
makes every fresh probe compile some 440 modules again: about 0.2 s of a first
paint that no user pays. :func:`cached` points the probes at one bytecode cache
outside the source tree and fills it once, before anything is measured.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
