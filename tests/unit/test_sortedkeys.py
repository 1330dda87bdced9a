"""The blocked sorted order behind the runs table, against a plain sorted list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch.tui.table_model import sortedkeys
from jobwatch.tui.table_model.sortedkeys import SortedKeys


@pytest.fixture(autouse=True)
def _tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of four, so a few dozen keys split, empty and refill blocks."""
    monkeypatch.setattr(sortedkeys, "BLOCK", 4)


def _plain(n: int) -> tuple[int]:
    return (n,)


def _tied(n: int) -> tuple[float, int]:
    """Leads with a float that seven keys in a row share: ties span blocks of four."""
    return (float(n // 7), n)


@settings(max_examples=300, deadline=None)
@given(
    start=st.sets(st.integers(0, 60), max_size=30),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120),
    prefix=st.booleans(),
)
def test_any_inserts_and_removes_match_a_sorted_list(
    start: set[int], ops: list[tuple[bool, int]], prefix: bool
) -> None:
    sk = _tied if prefix else _plain
    model = sorted(start)
    keys = SortedKeys([sk(n) for n in model], [f"k{n}" for n in model], prefix=prefix)
    for insert, n in ops:
        if insert and n not in model:
            keys.insert(sk(n), f"k{n}")
            model.append(n)
            model.sort()
        elif not insert:
            assert keys.remove(sk(n), f"k{n}") is (n in model)
            if n in model:
                model.remove(n)
        assert len(keys) == len(model)
    assert list(keys) == [f"k{n}" for n in model]
    for i, n in enumerate(model):
        assert keys.at(i) == f"k{n}"
        assert keys.index(sk(n), f"k{n}") == i
    assert keys.index(sk(61), "k61") is None
    with pytest.raises(IndexError):
        keys.at(len(model))


@settings(max_examples=200, deadline=None)
@given(
    start=st.sets(st.integers(0, 60), max_size=30),
    out=st.sets(st.integers(0, 60)),
    into=st.sets(st.integers(0, 60)),
)
def test_many_at_once_match_one_at_a_time(start: set[int], out: set[int], into: set[int]) -> None:
    """The batch loops inline the lookups of the single ones: same result, and
    ``remove_many`` stops at the first key that is not there."""
    out &= start
    into -= start - out
    first = sorted(start)
    many = SortedKeys([_tied(n) for n in first], [f"k{n}" for n in first], prefix=True)
    one = SortedKeys([_tied(n) for n in first], [f"k{n}" for n in first], prefix=True)
    assert many.remove_many([(_tied(n), f"k{n}") for n in out])
    many.insert_many([(_tied(n), f"k{n}") for n in into])
    for n in out:
        assert one.remove(_tied(n), f"k{n}")
    for n in into:
        one.insert(_tied(n), f"k{n}")
    assert list(many) == list(one) == [f"k{n}" for n in sorted((start - out) | into)]
    absent = next(n for n in range(62) if n not in (start - out) | into)
    assert not many.remove_many([(_tied(absent), f"k{absent}")])


def test_a_key_under_the_wrong_sort_key_is_not_found() -> None:
    keys = SortedKeys([(1,), (2,)], ["a", "b"])
    assert keys.index((2,), "a") is None
    assert not keys.remove((2,), "a")
    assert list(keys) == ["a", "b"]
    tied = SortedKeys([(1.0, 1), (1.0, 2), (2.0, 3)], ["a", "b", "c"], prefix=True)
    assert tied.index((1.0, 1), "b") is None
    assert tied.index((2.0, 3), "a") is None
    assert not tied.remove((2.0, 3), "b")
    assert list(tied) == ["a", "b", "c"]
