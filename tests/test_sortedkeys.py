"""The blocked sorted order behind the runs table, against a plain sorted list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch import sortedkeys
from jobwatch.sortedkeys import SortedKeys


@pytest.fixture(autouse=True)
def _tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of four, so a few dozen keys split, empty and refill blocks."""
    monkeypatch.setattr(sortedkeys, "BLOCK", 4)


@settings(max_examples=300, deadline=None)
@given(
    start=st.sets(st.integers(0, 60), max_size=30),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120),
)
def test_any_inserts_and_removes_match_a_sorted_list(
    start: set[int], ops: list[tuple[bool, int]]
) -> None:
    model = sorted(start)
    keys = SortedKeys([((n,), f"k{n}") for n in model])
    for insert, n in ops:
        if insert and n not in model:
            keys.insert((n,), f"k{n}")
            model.append(n)
            model.sort()
        elif not insert:
            assert keys.remove((n,), f"k{n}") is (n in model)
            if n in model:
                model.remove(n)
        assert len(keys) == len(model)
    assert list(keys) == [f"k{n}" for n in model]
    for i, n in enumerate(model):
        assert keys.at(i) == f"k{n}"
        assert keys.index((n,), f"k{n}") == i
    assert keys.index((61,), "k61") is None
    with pytest.raises(IndexError):
        keys.at(len(model))


def test_a_key_under_the_wrong_sort_key_is_not_found() -> None:
    keys = SortedKeys([((1,), "a"), ((2,), "b")])
    assert keys.index((2,), "a") is None
    assert not keys.remove((2,), "a")
    assert list(keys) == ["a", "b"]
