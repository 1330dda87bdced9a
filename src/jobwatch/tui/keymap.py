"""The user's ``[keys]`` table, checked against the bindings of :mod:`jobwatch.tui.keys`.

Textual applies a keymap by binding id and silently ignores an id it does not know
or a key name it can never receive, so a typo would leave the user wondering why
``ctrl+a`` does nothing. Every entry is checked here first; a bad one is named in a
warning (a toast at start) and left out, the good ones go to ``App.set_keymap``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from textual.binding import Binding
from textual.keys import Keys, format_key, key_to_character

from jobwatch.core.redact import clean
from jobwatch.tui import keys

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_NAMED = frozenset(k.value.rpartition("+")[2] for k in Keys if not k.value.startswith("<")) - {
    "ctrl-at"
}


def all_bindings() -> Iterator[Binding]:
    """Every binding with an id, from every list in :mod:`jobwatch.tui.keys`."""
    for value in vars(keys).values():
        if isinstance(value, list):
            for binding in value:
                if isinstance(binding, Binding) and binding.id:
                    yield binding


def binding_ids() -> set[str]:
    return {b.id for b in all_bindings() if b.id}


def key_problem(key: str) -> str | None:
    """Why ``key`` (one key, as written in the config) can never be pressed, or None."""
    if not key or key != key.strip() or (len(key) > 1 and " " in key):
        return "is empty or has spaces"
    if len(key) == 1:
        return None if key.isprintable() else "is not a printable character"
    *mods, base = key.split("+")
    bad = [m for m in mods if m.lower() not in MODIFIERS]
    if bad or not base:
        return f"has an unknown modifier {bad[0] if bad else '+'!r}"
    if len(base) == 1 and base.isprintable():
        return None
    if base in _NAMED or key_to_character(base) is not None or format_key(base) != base:
        return None
    return f"names no key ({base!r})"


def check_keymap(keymap: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The usable entries of ``keymap`` and a warning for each one left out."""
    known = binding_ids()
    good: dict[str, str] = {}
    warnings: list[str] = []
    for binding_id, value in keymap.items():
        shown = clean(str(binding_id))
        if binding_id not in known:
            warnings.append(f"[keys] {shown!r} is not a binding id (see ? for the list; ignored)")
            continue
        parts = [k.strip() for k in str(value).split(",")]
        problems = [f"{clean(k)!r} {p}" for k in parts if (p := key_problem(k))]
        if problems:
            warnings.append(f"[keys] {shown!r}: key {problems[0]} (ignored)")
            continue
        good[binding_id] = ",".join(parts)
    return good, warnings


def with_keymap(binding: Binding, keymap: Mapping[str, str]) -> Binding:
    """``binding`` with the key the user's keymap gives it (Textual keeps the
    class-level bindings unchanged and applies the keymap when keys are looked up)."""
    if binding.id and binding.id in keymap:
        return binding.with_key(keymap[binding.id], key_display=None)
    return binding
