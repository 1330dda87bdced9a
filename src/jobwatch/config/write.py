"""Writing one setting back into the user's config file, and nothing else.

The file is the user's: comments, order, sources and tokens references must come
out as they went in. So this is no TOML writer: it replaces the one top-level
``columns = [...]`` line (or adds one above the first table), then checks that
the result parses to the same data with only ``columns`` changed before it
replaces the file (atomically, keeping its mode). A file it cannot edit safely
(a ``columns`` array spread over several lines, say) is left alone with a
:class:`ConfigError` saying why.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from jobwatch.config import ConfigError

_KEY_LINE = re.compile(r"^\s*columns\s*=")
_TABLE_LINE = re.compile(r"^\s*\[")


def _columns_line(names: Sequence[str]) -> str:
    return "columns = [" + ", ".join(json.dumps(n) for n in names) + "]\n"


def with_columns(text: str, names: Sequence[str]) -> str:
    """``text`` with its top-level ``columns`` set to ``names``; everything else kept."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    line = _columns_line(names)
    first_table = next((i for i, t in enumerate(lines) if _TABLE_LINE.match(t)), len(lines))
    at = next((i for i in range(first_table) if _KEY_LINE.match(lines[i])), None)
    if at is not None:
        lines[at] = line
    else:
        insert = first_table
        while insert > 0 and not lines[insert - 1].strip():
            insert -= 1  # after the top-level settings, before the blank line
        lines.insert(insert, line)
        if insert == first_table and first_table < len(lines) - 1:
            lines.insert(insert + 1, "\n")
    result = "".join(lines)
    try:
        before = tomllib.loads(text)
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot edit the config file safely: {exc}") from None
    before["columns"] = list(names)
    if after != before:
        raise ConfigError("cannot edit the config file safely: set columns = [...] by hand")
    return result


def save_columns(path: Path, names: Sequence[str]) -> None:
    """Set ``columns`` in the config file at ``path`` (created, 0600, if missing)."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        text, mode = "", 0o600
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    result = with_columns(text, names)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(result)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write config {path}: {exc.strerror or exc}") from None
