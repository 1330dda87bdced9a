"""The configuration snapshot of a ``jobwatch run``: what the command was run with.

The argv, the working directory, the command as ``PATH`` resolved it, the
variables named by ``--snapshot-env`` and the parsed content of each
``--snapshot FILE`` (JSON, TOML or YAML, told by the file's suffix, else tried in
that order). A file that cannot be read or parsed is one warning on stderr and a
note in the snapshot: the command runs whatever happens here.

What is built here is raw; the wrapper redacts it (and keeps fingerprints of what
the redactor hid) before anything is stored.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_FILE_BYTES", "build_snapshot", "read_snapshot_file"]

MAX_FILE_BYTES = 1_000_000
"""A snapshot file larger than this is noted, not read: it would bloat every run."""


def _yaml(text: str) -> Any:
    import yaml  # only when a YAML file is given: it is not on the wrapper's start path

    # The C loader (libyaml) where PyYAML has it: several times faster on a big file.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader either way


def _json(text: str) -> Any:
    return json.loads(text)


_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    ".json": ("json", _json),
    ".toml": ("toml", tomllib.loads),
    ".yaml": ("yaml", _yaml),
    ".yml": ("yaml", _yaml),
}


def read_snapshot_file(path: str) -> tuple[Any, str | None]:
    """(parsed content, None), or (None, why not) — never an exception."""
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            return None, f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} read for a snapshot"
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read it: {getattr(exc, 'strerror', None) or exc}"
    suffix = Path(path).suffix.lower()
    known = _PARSERS.get(suffix)
    tries = [known] if known else list(dict.fromkeys(_PARSERS.values()))
    errors: list[str] = []
    for name, parse in tries:
        try:
            return parse(text), None
        except Exception as exc:  # each parser has its own error type
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            errors.append(f"not valid {name}: {first}")
    return None, "; ".join(errors)


def build_snapshot(
    argv: Sequence[str],
    *,
    cwd: str,
    env_names: Sequence[str] = (),
    files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """The raw snapshot (not redacted yet). ``warn`` gets one line per file that
    could not be used."""
    environ = os.environ if env is None else env
    snapshot: dict[str, Any] = {
        "argv": list(argv),
        "cwd": cwd,
        "command": shutil.which(argv[0], path=environ.get("PATH")) if argv else None,
    }
    if env_names:
        # A variable that is not set is recorded as such (None), not left out: "it
        # was unset" is what a diff should show when it turns up later.
        snapshot["env"] = {name: environ.get(name) for name in dict.fromkeys(env_names)}
    if files:
        content: dict[str, Any] = {}
        notes: dict[str, str] = {}
        for name in dict.fromkeys(files):
            parsed, why = read_snapshot_file(os.path.join(cwd, name))
            if why is None:
                content[name] = parsed
            else:
                notes[name] = why
                warn(f"jobwatch: warning: snapshot file {name}: {why} (the command runs anyway)")
        snapshot["files"] = content
        if notes:
            snapshot["notes"] = notes
    return snapshot
