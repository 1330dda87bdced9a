"""A small per-source state file: what an adapter must remember across processes.

Salesforce's ``Archived`` replaces a run's outcome, so the outcome jobwatch saw
before it archived the run is kept here. Why a file of its own and not the local
store: the store's schema is shared by every part of jobwatch and migrated in
one place, and a vendor source may run with no store at all; this file is tiny
(a few hundred bytes per thousand runs), written only by an action (archiving is
a write; a read verb never changes it) and read once when the source opens.

The file is JSON, created 0600 in a 0700 directory, written under an exclusive
``flock`` and read under a shared one, so two jobwatch processes never interleave;
an unreadable file is read as empty (the adapter falls back to what it can derive)
and is replaced on the next write. It keeps at most :data:`MAX_ENTRIES` entries,
the oldest written dropped first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any

MAX_ENTRIES = 5000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def state_path(near: Path, source: str) -> Path:
    """The state file of ``source``, in the directory of the store ``near``
    (the data directory by default): ``<dir>/jobwatch-state/<source>.json``."""
    name = _UNSAFE.sub("_", source).strip("._") or "source"
    return near.expanduser().parent / "jobwatch-state" / f"{name[:100]}.json"


class StateFile:
    """``{key: {"value": …, "at": epoch seconds}}``, read whole, written whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        """Every value kept (empty when there is no file or it cannot be read)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return {}
        with os.fdopen(fd, "rb") as handle:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_SH)
            entries = _decode(handle.read())
        return {key: entry["value"] for key, entry in entries.items()}

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` (merged with what other processes wrote)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            entries = _decode(handle.read())
            entries.pop(key, None)
            entries[key] = {"value": value, "at": time.time()}
            while len(entries) > MAX_ENTRIES:
                del entries[min(entries, key=lambda k: entries[k]["at"])]
            data = json.dumps(entries, separators=(",", ":")).encode()
            handle.seek(0)
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())


def _decode(data: bytes) -> dict[str, dict[str, Any]]:
    try:
        loaded = json.loads(data) if data.strip() else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {
        key: entry
        for key, entry in loaded.items()
        if isinstance(key, str)
        and isinstance(entry, dict)
        and "value" in entry
        and isinstance(entry.get("at"), int | float)
    }
