"""Failure signatures: what varies between runs becomes a placeholder, the shape of
the message stays, and normalizing is stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwatch.triage.signature import MAX_SHAPE, shape, signature


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "connection to db-4.internal:5432 refused after 3 tries",
            "connection to db-<n>.internal:<n> refused after <n> tries",
        ),
        ("timeout -5 after 1.5s", "timeout <n> after <n>s"),
        ("job_8f3kq2LmP failed at /var/lib/x/y.csv line 12", "<id> failed at <path> line <n>"),
        ("GET https://api.example.com/v1/runs/123?x=1 returned 503", "GET <url> returned <n>"),
        ("key \"abc\" not found in 'cfg'", "key <q> not found in <q>"),
        (
            "uuid 123e4567-e89b-12d3-a456-426614174000 commit deadbeef12 0xFF",
            "uuid <uuid> commit <hex> <hex>",
        ),
        ("record 0015g00000XyZabAAB rejected", "record <id> rejected"),
        ("open C:\\data\\in.csv: denied", "open <path>: denied"),
        ("  many   spaces\n\tand lines ", "many spaces and lines"),
        ("plain words stay plain", "plain words stay plain"),
    ],
)
def test_what_varies_becomes_a_placeholder(message: str, expected: str) -> None:
    assert shape(message) == expected


def test_the_same_failure_twice_has_one_signature() -> None:
    a = signature("sqlite", "exit-1", "worker 12 lost lease 9f8e7d6c5b4a on /srv/q/12.lock")
    b = signature("sqlite", "exit-1", "worker 7 lost lease 0a1b2c3d4e5f on /srv/q/7.lock")
    assert a == b and a.key == b.key and a.digest == b.digest


def test_kind_code_and_wording_tell_failures_apart() -> None:
    base = signature("sqlite", "exit-1", "disk full")
    assert base != signature("letta", "exit-1", "disk full")
    assert base != signature("sqlite", "exit-2", "disk full")
    assert base != signature("sqlite", "exit-1", "disk quota exceeded")


def test_an_empty_message_keeps_the_code() -> None:
    assert signature("sqlite", "exit-3", None).text() == "exit-3"
    assert signature("sqlite", None, None).text() == "(no message)"


@given(st.text(max_size=400))
def test_normalizing_twice_changes_nothing(message: str) -> None:
    once = shape(message)
    assert shape(once) == once
    assert len(once) <= MAX_SHAPE


@given(st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=60), st.integers())
def test_numbers_never_split_a_group(words: str, number: int) -> None:
    assert shape(f"{words} {number}") == shape(f"{words} {number + 1}")
