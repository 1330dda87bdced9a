"""The snapshot diff (pure): order, tree, and secrets that never show."""

from __future__ import annotations

import json
from typing import Any

from jobwatch.core.fingerprints import fingerprints, read_fingerprints
from jobwatch.core.redact import redact
from jobwatch.core.snapshot_diff import diff_snapshots

KEY = b"k" * 32


def stored(raw: dict[str, Any], key: bytes = KEY) -> tuple[Any, Any]:
    """What the wrapper stores: the redacted snapshot and its fingerprints."""
    shown = redact(raw)
    return shown, read_fingerprints({"snapshot_fingerprints": fingerprints(raw, shown, key)})


def every_text(raw_old: dict[str, Any], raw_new: dict[str, Any], **kw: Any) -> tuple[Any, str]:
    old, old_fps = stored(raw_old, **kw)
    new, new_fps = stored(raw_new)
    diff = diff_snapshots(old, new, old_fps=old_fps, new_fps=new_fps)
    return diff, "\n".join(diff.tree_lines()) + json.dumps(diff.as_json()) + diff.summary()


def test_added_removed_changed_as_a_sorted_tree_lists_by_index() -> None:
    old = {"b": {"y": 1, "x": [1, 2, 3]}, "a": "same", "gone": True}
    new = {"b": {"y": 2, "x": [1, 5]}, "a": "same", "z": {"deep": {"k": "v"}}}
    diff = diff_snapshots(old, new)
    assert [(c.path, c.kind) for c in diff.changes] == [
        (("b", "x", 1), "changed"),
        (("b", "x", 2), "removed"),
        (("b", "y"), "changed"),
        (("gone",), "removed"),
        (("z", "deep", "k"), "added"),
    ]
    assert diff.tree_lines() == [
        "b",
        "  x",
        "    ~ [1]: changed: 2 → 5",
        "    - [2]: removed (was 3)",
        "  ~ y: changed: 1 → 2",
        "- gone: removed (was true)",
        "z",
        "  deep",
        '    + k: added: "v"',
    ]
    assert diff.summary() == "5 differences"
    assert diff_snapshots(old, old).summary() == "no differences"


def test_a_changed_secret_is_told_apart_from_an_unchanged_one_without_its_value() -> None:
    base = {"env": {"API_TOKEN": "tok-first-value", "DB_PASSWORD": "hunter2"}, "n": 1}
    changed = {"env": {"API_TOKEN": "tok-second-value", "DB_PASSWORD": "hunter2"}, "n": 1}
    diff, text = every_text(base, changed)
    assert [(c.path, c.kind, c.secret) for c in diff.changes] == [
        (("env", "API_TOKEN"), "changed", True)
    ]
    assert "changed (secret)" in text
    for secret in ("tok-first-value", "tok-second-value", "hunter2", "tok-"):
        assert secret not in text
    same, text = every_text(base, dict(base))
    assert same.changes == () and same.summary() == "no differences"


def test_partly_masked_values_show_no_part_of_themselves() -> None:
    old = {"url": "https://alice:pw1@db.example.com/x?token=a", "argv": ["x", "--password", "p1"]}
    new = {"url": "https://bob:pw2@db2.example.com/x?token=b", "argv": ["x", "--password", "p2"]}
    diff, text = every_text(old, new)
    assert [(c.path, c.kind, c.secret) for c in diff.changes] == [
        (("argv", 2), "changed", True),
        (("url",), "changed", True),
    ]
    for part in ("db.example.com", "db2", "alice", "bob", "pw1", "p2", "***"):
        assert part not in text


def test_added_and_removed_secrets_say_so_only() -> None:
    diff, text = every_text({"a": 1}, {"a": 1, "token": "xyz-secret", "creds": {"password": "q"}})
    assert [c.describe() for c in diff.changes] == ["added (secret)", "added (secret)"]
    assert "xyz-secret" not in text and '"q"' not in text


def test_fingerprints_of_another_store_or_none_are_not_comparable() -> None:
    raw = {"password": "same-value"}
    other_key = b"o" * 32
    diff, text = every_text(raw, raw, key=other_key)
    assert "same-value" not in text  # the two sides salted apart
    assert [(c.kind, c.secret) for c in diff.changes] == [("not comparable", True)]
    assert diff.summary() == "no differences (1 secret value(s) could not be compared)"
    vendor = diff_snapshots({"password": "***"}, {"password": "***"})  # a vendor's snapshot
    assert [c.kind for c in vendor.changes] == ["not comparable"]
    assert "not comparable" in vendor.tree_lines()[0]


def test_a_value_turning_into_a_subtree_is_removed_then_added() -> None:
    diff = diff_snapshots({"a": 1}, {"a": {"b": 2}})
    assert [(c.path, c.kind) for c in diff.changes] == [(("a",), "removed"), (("a", "b"), "added")]


def test_fingerprints_are_salted_and_short() -> None:
    raw = {"password": "hunter2"}
    one = fingerprints(raw, redact(raw), KEY)
    two = fingerprints(raw, redact(raw), b"x" * 32)
    assert one["values"][0][0] == "/password" and len(one["values"][0][1]) == 16
    assert one["values"] != two["values"] and one["key"] != two["key"]
    assert "hunter2" not in json.dumps(one)
