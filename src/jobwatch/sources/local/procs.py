"""Is the process that owns a run still alive? Used to tell running from lost."""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def start_token(pid: int) -> str | None:
    """The kernel's start time of ``pid``: with the pid it names one process, even
    after the pid number is reused. ``None`` where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after ")" are fixed.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def is_alive(pid: int, token: str | None) -> bool:
    """True while ``pid`` runs (zombies count as dead) and is still the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal check is all we have
    tail = stat.rsplit(")", 1)[-1].split()
    if tail and tail[0] == "Z":
        return False
    return token is None or (len(tail) > 19 and tail[19] == token)
