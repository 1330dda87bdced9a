"""Is the process that owns a run still alive? Used to tell running from lost.

A pid alone names nothing for long: it is reused. Every check here pairs it with
the kernel's start time of the process (its *start token*), so a run is never
said to be alive, and a signal is never sent, because of some other process that
happens to have the same number now.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

HOST = socket.gethostname()


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first),
    or ``None`` when the process (or /proc) is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after ")" are fixed.
    return stat.rsplit(")", 1)[-1].split()


def start_token(pid: int) -> str | None:
    """The kernel's start time of ``pid``: with the pid it names one process, even
    after the pid number is reused. ``None`` where /proc is not available."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def is_alive(pid: int, token: str | None) -> bool:
    """True while ``pid`` runs (zombies count as dead) and is still the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    tail = _stat(pid)
    if tail is None:
        # Gone since the signal check, or no /proc at all: then that check is all we have.
        return not Path("/proc/self").exists()
    if tail and tail[0] == "Z":
        return False
    return token is None or (len(tail) > 19 and tail[19] == token)


def group_alive(pgid: int, token: str | None = None) -> bool:
    """Does any live (non-zombie) process remain in the group ``pgid`` started as
    the process with start token ``token``?

    A pid that is a group id is not handed out again while the group has members,
    so members found with that group id belong to it; those must also have started
    no earlier than the leader. A live leader must carry the token itself.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc/self").exists():
        return True  # no /proc: the signal check is all we have
    leader = _stat(pgid)
    if leader is not None and leader[0] != "Z":
        return token is None or (len(leader) > 19 and leader[19] == token)
    born = int(token) if token is not None and token.isdigit() else 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or len(fields) <= 19 or fields[0] == "Z":
            continue
        if fields[2] == str(pgid) and fields[19].isdigit() and int(fields[19]) >= born:
            return True
    return False


def signal_group(pgid: int, sig: int) -> bool:
    """Signal the whole process group; False once nobody is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_group(metadata: dict[str, Any] | None) -> tuple[int, str | None] | None:
    """``(pgid, start token)`` of the command a ``jobwatch run`` wrapper recorded in
    a run's metadata, when it ran on this host; ``None`` otherwise."""
    meta = metadata or {}
    if meta.get("host") != HOST:
        return None
    pgid = meta.get("pgid")
    token = meta.get("pid_start")
    if not isinstance(pgid, int) or pgid <= 1:
        return None
    return pgid, str(token) if token is not None else None
