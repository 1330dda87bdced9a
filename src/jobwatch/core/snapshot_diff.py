"""What changed between two runs' configuration snapshots, as a tree.

Pure: two snapshots (``Run.config``, stored redacted) and their fingerprints in,
a list of changes out, in a stable order (keys sorted, lists by index), for
``jobwatch diff`` and the monitor's diff screen alike.

A secret is never revealed, not even in part: a value under a key the redactor
treats as secret, or one that is (or was, on the other side) redacted, shows
only as "added (secret)", "removed (secret)" or "changed (secret)". Because both
sides read ``***``, whether a secret changed is told by the salted fingerprints
kept at write time (:mod:`jobwatch.core.fingerprints`); where there are none
(vendor snapshots, runs from another store), a redacted value that reads the same
on both sides is said to be *not comparable*, never "unchanged".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobwatch.core.fingerprints import Path, pointer
from jobwatch.core.redact import REDACTED, clean, is_secret_key

__all__ = ["Change", "SnapshotDiff", "diff_snapshots"]

Kind = Literal["added", "removed", "changed", "not comparable"]
_MARK = {"added": "+", "removed": "-", "changed": "~", "not comparable": "?"}
VALUE_CELLS = 60


@dataclass(frozen=True, slots=True)
class Change:
    path: Path
    kind: Kind
    secret: bool = False
    old: Any = None
    """The value before; always ``None`` for a secret."""
    new: Any = None

    def describe(self) -> str:
        """The change in words, after the key: never a secret's value."""
        if self.kind == "not comparable":
            return "secret, not comparable (redacted on both sides, no fingerprint to tell)"
        if self.secret:
            return f"{self.kind} (secret)"
        if self.kind == "added":
            return f"added: {_shown(self.new)}"
        if self.kind == "removed":
            return f"removed (was {_shown(self.old)})"
        return f"changed: {_shown(self.old)} → {_shown(self.new)}"

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "path": [p if isinstance(p, int) else clean(p) for p in self.path],
            "pointer": clean(pointer(self.path)),
            "kind": self.kind,
            "secret": self.secret,
        }
        if not self.secret:
            if self.kind in ("removed", "changed"):
                item["old"] = _plain(self.old)
            if self.kind in ("added", "changed"):
                item["new"] = _plain(self.new)
        return item


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    changes: tuple[Change, ...]

    @property
    def differences(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind != "not comparable")

    @property
    def not_comparable(self) -> int:
        return len(self.changes) - len(self.differences)

    def summary(self) -> str:
        n = len(self.differences)
        text = "no differences" if n == 0 else f"{n} difference{'s' if n != 1 else ''}"
        if self.not_comparable:
            text += f" ({self.not_comparable} secret value(s) could not be compared)"
        return text

    def tree_lines(self, indent: int = 2) -> list[str]:
        """One line per key on the way to each change, each change under its key."""
        lines: list[str] = []
        shown: Path = ()
        for change in self.changes:
            path = change.path or ("(whole snapshot)",)
            common = 0
            while common < min(len(shown), len(path) - 1) and shown[common] == path[common]:
                common += 1
            for depth in range(common, len(path) - 1):
                lines.append(" " * (indent * depth) + _label(path[depth]))
            depth = len(path) - 1
            mark = _MARK[change.kind]
            lines.append(f"{' ' * (indent * depth)}{mark} {_label(path[-1])}: {change.describe()}")
            shown = path[:-1]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "differences": len(self.differences),
            "not_comparable": self.not_comparable,
            "changes": [c.as_json() for c in self.changes],
        }


def _label(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else clean(part)


def _plain(value: Any) -> Any:
    """A non-secret value as JSON data, cleaned for the terminal."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _shown(value: Any) -> str:
    text = json.dumps(_plain(value), ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_CELLS else text[: VALUE_CELLS - 1] + "…"


def _redacted(value: Any) -> bool:
    """Whether any string in ``value`` carries the redactor's mask."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, dict):
        return any(_redacted(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_redacted(v) for v in value)
    return False


def _secret_path(path: Path) -> bool:
    return any(isinstance(p, str) and is_secret_key(p) for p in path)


def _has_secret_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            (isinstance(k, str) and is_secret_key(k)) or _has_secret_key(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_has_secret_key(v) for v in value)
    return False


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list | tuple)


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """The leaves of a subtree (an empty container is a leaf itself)."""
    if isinstance(value, dict) and value:
        for k in sorted(value, key=str):
            yield from _leaves(value[k], (*path, k))
    elif isinstance(value, list | tuple) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


class _Walk:
    def __init__(
        self,
        old_fps: tuple[str, Mapping[str, str]] | None,
        new_fps: tuple[str, Mapping[str, str]] | None,
    ) -> None:
        # Fingerprints only compare under the same key (the same store).
        same_key = old_fps is not None and new_fps is not None and old_fps[0] == new_fps[0]
        self.old_fps: Mapping[str, str] = old_fps[1] if same_key and old_fps else {}
        self.new_fps: Mapping[str, str] = new_fps[1] if same_key and new_fps else {}
        self.out: list[Change] = []

    def one_side(self, kind: Kind, value: Any, path: Path) -> None:
        for leaf_path, leaf in _leaves(value, path):
            secret = _secret_path(leaf_path) or _redacted(leaf)
            if kind == "added":
                self.out.append(Change(leaf_path, kind, secret, new=None if secret else leaf))
            else:
                self.out.append(Change(leaf_path, kind, secret, old=None if secret else leaf))

    def walk(self, old: Any, new: Any, path: Path) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for k in sorted(old.keys() | new.keys(), key=str):
                if k not in new:
                    self.one_side("removed", old[k], (*path, k))
                elif k not in old:
                    self.one_side("added", new[k], (*path, k))
                else:
                    self.walk(old[k], new[k], (*path, k))
            return
        if isinstance(old, list | tuple) and isinstance(new, list | tuple):
            for i in range(max(len(old), len(new))):
                if i >= len(new):
                    self.one_side("removed", old[i], (*path, i))
                elif i >= len(old):
                    self.one_side("added", new[i], (*path, i))
                else:
                    self.walk(old[i], new[i], (*path, i))
            return
        if _is_container(old) != _is_container(new) or (
            _is_container(old) and type(old) is not type(new)
        ):
            self.one_side("removed", old, path)  # a value turned into a subtree, or back
            self.one_side("added", new, path)
            return
        self.leaf(old, new, path)

    def leaf(self, old: Any, new: Any, path: Path) -> None:
        secret = _secret_path(path) or _redacted(old) or _redacted(new)
        if not secret:
            if old != new or type(old) is not type(new):
                self.out.append(Change(path, "changed", False, old, new))
            return
        where = pointer(path)
        fp_old, fp_new = self.old_fps.get(where), self.new_fps.get(where)
        if fp_old is not None and fp_new is not None:
            if fp_old != fp_new:
                self.out.append(Change(path, "changed", True))
            return
        if old != new or type(old) is not type(new):
            self.out.append(Change(path, "changed", True))  # what is shown differs
        elif _redacted(old):  # both read the same mask, and nothing tells them apart
            self.out.append(Change(path, "not comparable", True))


def diff_snapshots(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    old_fps: tuple[str, Mapping[str, str]] | None = None,
    new_fps: tuple[str, Mapping[str, str]] | None = None,
) -> SnapshotDiff:
    """Changes from ``old`` (the other run) to ``new`` (the run asked about).

    ``old_fps``/``new_fps`` are ``(key id, {pointer: fingerprint})`` as
    :func:`~jobwatch.core.fingerprints.read_fingerprints` gives them.
    """
    walk = _Walk(old_fps, new_fps)
    walk.walk(dict(old or {}), dict(new or {}), ())
    return SnapshotDiff(tuple(walk.out))
