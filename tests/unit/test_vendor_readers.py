"""The one set of value readers every vendor mapper uses."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwatch.sources.vendors.common import MappingError, Reader, parse_datetime

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
READS = ("text", "number", "whole", "flag", "obj", "time")


def test_strict_names_the_field_in_one_format() -> None:
    read = Reader({"StartTime": "yesterday", "n": True, "m": [1], "t": 4, "ok": "x"})
    with pytest.raises(MappingError, match=r"^StartTime is not a date-time: 'yesterday'$"):
        read.time("StartTime")
    with pytest.raises(MappingError, match=r"^n is not a number: True$"):
        read.number("n")
    with pytest.raises(MappingError, match=r"^m is not an object: \[1\]$"):
        read.obj("m")
    with pytest.raises(MappingError, match=r"^t is not text: 4$"):
        read.text("t")
    assert read.text("t", numbers=True) == "4" and read.text("ok") == "x"
    nested = Reader({"model": {"version": {"x": 1}}}).child("model")
    with pytest.raises(MappingError, match=r"^model\.version is not text"):
        nested.text("version")


def test_lenient_reads_odd_values_as_unknown() -> None:
    read = Reader({"a": "yesterday", "b": "x", "c": -3, "d": 2.5, "e": "maybe"}, strict=False)
    assert read.time("a") is None and read.number("b") is None
    assert read.whole("c", minimum=0) is None and read.whole("d") is None
    assert read.flag("e") is None and read.obj("b") is None
    assert read.child("b").raw == {}
    # One field may still be strict in a lenient reader (and the other way round).
    with pytest.raises(MappingError, match="a is not a date-time"):
        read.time("a", strict=True)
    assert Reader({"a": 1}).text("a", strict=False) is None


def test_alternative_keys_blank_text_and_missing_fields() -> None:
    read = Reader({"jobId": "j-1", "job_id": None, "blank": "  ", "status": ""})
    assert read.text("job_id", "jobId") == "j-1"
    assert read.text("blank") is None and read.text("status", keep_blank=True) == ""
    assert [getattr(read, name)("absent") for name in READS] == [None] * len(READS)
    with pytest.raises(MappingError, match="a job must be an object, not list"):
        Reader.of([], "job")


def test_date_times_as_vendors_send_them() -> None:
    want = datetime(2024, 4, 10, 14, 16, 37, 404000, tzinfo=UTC)
    for text in (
        "2024-04-10T14:16:37.404Z",
        "2024-04-10T14:16:37.404z",
        "2024-04-10T14:16:37.404+0000",
        "2024-04-10T14:16:37.404+00:00",
        "2024-04-10T14:16:37,404",  # no zone: UTC; a decimal comma
        " 2024-04-10T14:16:37.4040009 ",
    ):
        assert parse_datetime(text) == want, text
    assert parse_datetime(want.timestamp()) == want
    assert parse_datetime(want.timestamp() * 1000) == want  # milliseconds
    assert parse_datetime(None) is None and parse_datetime(" ") is None
    for odd in (True, math.nan, 1e300, "soon", [1]):
        with pytest.raises(ValueError):
            parse_datetime(odd)
    with pytest.raises(ValueError):
        parse_datetime(1_700_000_000, epoch=False)  # a system that only sends text
    assert Reader({"t": 1_700_000_000}, epoch=False, strict=False).time("t") is None


@given(JSON, st.booleans())
def test_readers_return_their_kind_or_raise_only_mapping_errors(value: object, strict: bool):
    read = Reader({"k": value}, strict=strict)
    kinds = {
        "text": str,
        "number": float,
        "whole": int,
        "flag": bool,
        "obj": dict,
        "time": datetime,
    }
    for name, kind in kinds.items():
        try:
            got = getattr(read, name)("k")
        except MappingError as exc:
            assert strict and str(exc).startswith("k is not ")
            continue
        assert got is None or isinstance(got, kind), (name, got)


def test_every_string_read_is_within_the_one_cap_and_says_what_was_cut() -> None:
    from jobwatch.core.text import MAX_TEXT

    read = Reader({"message": "é" * 204_835, "short": "fine"})
    text = read.text("message")
    assert text is not None and text.startswith("é" * MAX_TEXT)
    assert text.endswith("… (194,835 more characters)")
    assert read.text("short") == "fine"


def test_the_run_model_caps_messages_once_whoever_built_them() -> None:
    from jobwatch.cli import output
    from jobwatch.core import Reason, Run, RunError

    huge = "line one\n" + "y" * 204_826
    run = Run(id="r", source="s", error=RunError(message=huge), reason=Reason(message=huge)).evolve(
        label="copied"
    )  # validated again: cut once, the count kept
    for message in (run.error and run.error.message, run.reason and run.reason.message):
        assert message is not None and message.endswith("… (194,835 more characters)")
    longest = max(len(line) for line in output.show(run).splitlines())
    assert longest < 10_100  # `show` prints no 200 KB line
