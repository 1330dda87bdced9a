"""The table model: filter grammar, sort, selection by key and incremental apply."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch.core import RunRow, Status
from jobwatch.tui.table_model.runset import SORTS, Filter, RunSet, parse_when


def row(i: int, status: Status = Status.SUCCEEDED, **kw: object) -> RunRow:
    base = dict(
        source=kw.pop("source", "local"),
        id=f"run-{i:04d}",
        job=kw.pop("job", f"job{i % 3}"),
        label=None,
        status=status,
        status_raw=status.value.upper(),
        created_at=1000.0 + i,
        started_at=1000.0 + i,
        ended_at=None,
        duration_ms=float(i),
        total=None,
        succeeded=None,
        failed=None,
        partial=False,
        archived=False,
        problem=None,
    )
    base.update(kw)
    return RunRow(**base)  # type: ignore[arg-type]


def ids(rs: RunSet) -> list[str]:
    return [rs.row_at(i).id for i in range(len(rs))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status:failed", ["run-0004", "run-0001"]),
        ("status:fail,run", ["run-0005", "run-0004", "run-0001"]),
        ("!status:succeeded", ["run-0005", "run-0004", "run-0001"]),
        ("job:job2", ["run-0005", "run-0002"]),
        ("source:remote", ["run-0003"]),
        ("disk", ["run-0004"]),
        ("DISK", ["run-0004"]),
        ("!disk status:failed", ["run-0001"]),
        ("job:job1,job2 !source:remote", ["run-0005", "run-0004", "run-0002", "run-0001"]),
        ('"exit-2"', ["run-0001"]),
        ("", ["run-0005", "run-0004", "run-0003", "run-0002", "run-0001", "run-0000"]),
    ],
)
def test_filter_grammar(text: str, expected: list[str]) -> None:
    rs = RunSet()
    rs.replace_all(
        [
            row(0),
            row(1, Status.FAILED, problem="exit-2"),
            row(2),
            row(3, source="remote"),
            row(4, Status.FAILED, problem="disk-full"),
            row(5, Status.RUNNING),
        ]
    )
    rs.set_filter(text)
    assert ids(rs) == expected


def test_open_quote_while_typing_does_not_break() -> None:
    assert Filter.parse('"exit').terms[0].value == '"exit'


def test_faults_archived_and_counts() -> None:
    rs = RunSet()
    rs.replace_all(
        [
            row(0),
            row(1, Status.FAILED),
            row(2, Status.UNKNOWN),
            row(3, Status.TIMED_OUT, archived=True),
            row(4, Status.RUNNING),
        ]
    )
    assert ids(rs) == ["run-0004", "run-0002", "run-0001", "run-0000"]
    assert rs.counts[Status.FAILED] == 1 and rs.archived_count == 1
    rs.toggle_faults()
    assert ids(rs) == ["run-0002", "run-0001"]
    rs.toggle_archived()
    assert ids(rs) == ["run-0003", "run-0002", "run-0001"]


def test_unreadable_records_are_counted_apart_not_as_unknown() -> None:
    rs = RunSet()
    broken = [RunRow.broken("intuned", f"unreadable-{n}", "no id") for n in range(3)]
    rs.replace_all([row(0), row(1, Status.UNKNOWN), *broken])
    assert (rs.counts[Status.UNKNOWN], rs.unreadable_count, rs.archived_count) == (1, 3, 0)
    # A record that reads again is counted by its status; a new bad one adds one.
    fixed = row(5, Status.FAILED)
    rs.apply([RunRow.broken("local", "run-0005", "bad time"), broken[0]])
    assert rs.unreadable_count == 4
    rs.apply([fixed])
    assert (rs.unreadable_count, rs.counts[Status.FAILED], rs.counts[Status.UNKNOWN]) == (3, 1, 1)
    fresh = RunSet()
    fresh.replace_all(rs.rows.values())
    assert (fresh.counts, fresh.unreadable_count) == (rs.counts, rs.unreadable_count)


def test_apply_moves_only_what_changed_and_reports_new_faults() -> None:
    rs = RunSet()
    rs.replace_all([row(i, Status.RUNNING) for i in range(10)])
    faulted = rs.apply([row(3, Status.FAILED), row(4, Status.SUCCEEDED)])
    assert faulted == [("local", "run-0003")]
    assert rs.unseen == {("local", "run-0003")}
    assert ids(rs) == [f"run-{i:04d}" for i in range(9, -1, -1)]  # nothing moved
    rs.apply([row(3, Status.FAILED)])  # still failed: not a new fault
    assert rs.unseen == {("local", "run-0003")}
    rs.seen(("local", "run-0003"))
    assert not rs.unseen
    rs.apply([row(42, Status.QUEUED)])
    assert ids(rs)[0] == "run-0042"
    rs.set_filter("status:running")
    rs.apply([row(7, Status.FAILED)])
    assert "run-0007" not in ids(rs)


def test_selection_by_key_survives_resort_and_reverse() -> None:
    rs = RunSet()
    rs.replace_all([row(i, job=f"j{(i * 3) % 10}") for i in range(10)])
    key = ("local", "run-0002")
    before = rs.index_of(key)
    rs.set_sort("job")
    assert rs.index_of(key) != before and rs.key_at(rs.index_of(key) or 0) == key
    rs.toggle_reverse()
    assert rs.key_at(rs.index_of(key) or 0) == key
    assert ids(rs)[0] == "run-0003"  # j9 sorts last, so first when reversed


@pytest.mark.parametrize("column", SORTS)
def test_incremental_apply_equals_a_full_rebuild(column: str) -> None:
    rng = random.Random(7)
    statuses = list(Status)
    rows = [row(i, rng.choice(statuses), job=f"j{rng.randint(0, 5)}") for i in range(300)]
    rs = RunSet()
    rs.set_sort(column)
    rs.replace_all(rows)
    rs.set_filter("!status:aborted")
    for batch in range(5):
        changes = [
            row(
                rng.randint(0, 350),
                rng.choice(statuses),
                job=f"j{rng.randint(0, 5)}",
                duration_ms=float(rng.randint(0, 99)),
            )
            for _ in range(3 if batch % 2 else 120)
        ]
        rs.apply(changes)
        fresh = RunSet()
        fresh.set_sort(column)
        fresh.replace_all(rs.rows.values())
        fresh.set_filter("!status:aborted")
        assert rs.order == fresh.order
        assert rs.counts == fresh.counts


def test_marks() -> None:
    rs = RunSet()
    rs.replace_all([row(1)])
    rs.toggle_mark(("local", "run-0001"))
    assert rs.marked == {("local", "run-0001")}
    rs.toggle_mark(("local", "run-0001"))
    assert rs.marked == set()


_change = st.tuples(
    st.integers(0, 40),
    st.sampled_from(list(Status)),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 5),
)


@settings(max_examples=150, deadline=None)
@given(
    column=st.sampled_from(SORTS),
    polls=st.lists(st.lists(_change, max_size=80), max_size=6),
    one_by_one=st.booleans(),
)
def test_any_sequence_of_polls_matches_a_rebuild(
    column: str, polls: list[list[tuple[int, Status, int, bool, int]]], one_by_one: bool
) -> None:
    """Repeats within a poll, rows turning archived or filtered out and back, and
    sort keys that tie: the incremental order is always the rebuilt one, whether
    big batches are moved row by row or merged by one sort."""
    with _bulk_merges(not one_by_one):
        _polls_match_a_rebuild(column, polls)


def _bulk_merges(allowed: bool) -> contextlib.AbstractContextManager[object]:
    """With ``allowed`` False every batch is moved row by row, however big."""
    from jobwatch.tui.table_model import runset

    if allowed:
        return contextlib.nullcontext()
    return mock.patch.object(runset, "BULK_SHARE", float("inf"))


def _polls_match_a_rebuild(
    column: str, polls: list[list[tuple[int, Status, int, bool, int]]]
) -> None:
    rs = RunSet()
    rs.set_sort(column)
    rs.replace_all([row(i) for i in range(0, 40, 2)])
    rs.set_filter("!job:job3")
    for poll in polls:
        rs.apply(
            row(i, status, job=f"job{job}", archived=archived, duration_ms=float(when))
            for i, status, job, archived, when in poll
        )
        fresh = RunSet()
        fresh.set_sort(column)
        fresh.replace_all(rs.rows.values())
        fresh.set_filter("!job:job3")
        assert rs.order == fresh.order
        for key in rs.order:
            assert rs.key_at(rs.index_of(key) or 0) == key


@settings(max_examples=60, deadline=None)
@given(polls=st.lists(st.lists(_change, max_size=80), max_size=6))
def test_polls_match_a_rebuild_across_block_splits(
    polls: list[list[tuple[int, Status, int, bool, int]]],
) -> None:
    """The same property with blocks of four keys, so moves cross, split and empty
    blocks of the order."""
    from jobwatch.tui.table_model import sortedkeys

    with mock.patch.object(sortedkeys, "BLOCK", 4), _bulk_merges(False):
        _polls_match_a_rebuild("status", polls)


_times = st.one_of(
    st.none(),
    st.sampled_from([0.0, -1.0, 1.0, 1e9, 1.7e9, 1.7e9 + 1e-6, 2.0**32, 2.0**32 + 1, 1e12]),
    st.floats(min_value=-1e10, max_value=1e13, allow_nan=False),
    st.floats(allow_nan=False),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(list(Status)),
            _times,
            _times,
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["local", "remote"]),
        ),
        max_size=25,
    )
)
def test_the_folded_status_key_orders_as_the_plain_one(
    rows: list[tuple[Status, float | None, float | None, str, str]],
) -> None:
    """The status key leads with one float (rank band minus time) so bisections
    compare floats; whatever the times (none, equal, negative, past 2106, a
    microsecond apart), every pair orders as (rank, newest first, id, source)."""
    from jobwatch.core.columns import STATUS_RANK as _STATUS_RANK
    from jobwatch.core.columns import sort_key

    made = [
        row(0, status, id=rid, source=source, started_at=started, created_at=created)
        for status, started, created, rid, source in rows
    ]

    def plain(r: RunRow) -> tuple[object, ...]:
        when = r.started_at or r.created_at or 0.0
        return (_STATUS_RANK.get(r.status, 99), -when, r.id, r.source)

    folded = sort_key("status")
    for a in made:
        for b in made:
            assert (plain(a) < plain(b)) == (folded(a) < folded(b))
            assert (plain(a) == plain(b)) == (folded(a) == folded(b))


_timed_change = st.tuples(
    st.integers(0, 40),
    st.sampled_from(list(Status)),
    st.sampled_from([None, 5.0, 7.0, 7.0 + 1e-6, 2.0**33]),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    column=st.sampled_from(["status", "started"]),
    polls=st.lists(st.lists(_timed_change, max_size=60), max_size=6),
    one_by_one=st.booleans(),
)
def test_polls_with_equal_times_match_a_rebuild(
    column: str, polls: list[list[tuple[int, Status, float | None, bool]]], one_by_one: bool
) -> None:
    """Rows that share a time (or have none) tie on the float the order bisects,
    in blocks of four so the ties span blocks: the sort key decides among them."""
    from jobwatch.tui.table_model import sortedkeys

    with mock.patch.object(sortedkeys, "BLOCK", 4), _bulk_merges(not one_by_one):
        rs = RunSet()
        rs.set_sort(column)
        rs.replace_all([row(i, started_at=7.0, created_at=None) for i in range(0, 40, 3)])
        for poll in polls:
            rs.apply(
                row(i, status, started_at=when, created_at=None, archived=archived)
                for i, status, when, archived in poll
            )
            fresh = RunSet()
            fresh.set_sort(column)
            fresh.replace_all(rs.rows.values())
            assert rs.order == fresh.order
            for key in rs.order:
                assert rs.key_at(rs.index_of(key) or 0) == key


NOW_S = 1_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW_S - 1800),
        ("1h", NOW_S - 3600),
        ("2d", NOW_S - 2 * 86400),
        ("1h30m", NOW_S - 5400),
        ("90s", NOW_S - 90),
        ("1w", NOW_S - 7 * 86400),
        ("2026-12-01T00:00:00+00:00", 1796083200.0),
        ("2026-12-01T08:00Z", 1796083200.0 + 8 * 3600),
        ("soon", None),
        ("1x", None),
        ("", None),
    ],
)
def test_filter_times(value: str, expected: float | None) -> None:
    assert parse_when(value, NOW_S) == expected


def test_a_naive_date_is_local_midnight() -> None:
    assert parse_when("2026-12-01", NOW_S) == datetime(2026, 12, 1).timestamp()


def test_since_and_before_match_the_last_change() -> None:
    """The later of end and start: a long run that just ended is in ``since:1h``."""
    now = 10_000.0
    rows = [
        row(1, started_at=now - 7200, ended_at=now - 60),  # long, just ended
        row(2, started_at=now - 600, ended_at=None, status=Status.RUNNING),
        row(3, started_at=now - 9000, ended_at=now - 8000),
        row(4, started_at=None, created_at=None),  # no time at all: never in a window
    ]
    rs = RunSet()
    rs.replace_all(rows)
    rs.set_filter("since:1h", now=now)
    assert set(ids(rs)) == {"run-0001", "run-0002"}
    assert rs.match_text() == "2 of 4 match"
    rs.set_filter("!since:1h", now=now)
    assert set(ids(rs)) == {"run-0003", "run-0004"}
    rs.set_filter(f"before:{datetime.fromtimestamp(now - 3600, UTC).isoformat()}", now=now)
    assert ids(rs) == ["run-0003"]
    rs.set_filter("since:1h job:nothing", now=now)
    assert rs.match_text() == "no match"
    rs.set_filter("since:soon", now=now)
    assert len(rs) == 4 and not rs.filter  # not applied, but said
    assert rs.match_text() == "cannot read since:soon (try 30m, 2h, 1d, 2026-12-01)"


def test_last_change_sort_and_marks_of_hidden_runs() -> None:
    rs = RunSet()
    rs.replace_all(
        [
            row(1, started_at=100.0, ended_at=900.0, status=Status.FAILED),
            row(2, started_at=500.0),
            row(3, started_at=700.0, ended_at=None, status=Status.RUNNING),
        ]
    )
    rs.set_sort("changed")
    assert ids(rs) == ["run-0001", "run-0003", "run-0002"]
    assert rs.mark_visible() == 3
    rs.set_filter("status:failed")
    assert sorted(rs.hidden_marks()) == [("local", "run-0002"), ("local", "run-0003")]
    assert rs.clear_marks() == 3 and not rs.marked


def test_relocated_tells_a_run_that_moved_itself_from_one_shifted() -> None:
    rs = RunSet(sort="status")
    rs.replace_all([row(i, Status.RUNNING) for i in range(5)])
    rs.apply([row(9, Status.RUNNING), row(2, Status.SUCCEEDED)])
    assert rs.relocated(("local", "run-0002")) and rs.relocated(("local", "run-0009"))
    assert not rs.relocated(("local", "run-0001"))  # only shifted by the new row


_new_row = st.tuples(
    st.integers(0, 199), st.sampled_from(list(Status)), st.booleans(), st.booleans()
)


@settings(max_examples=60, deadline=None)
@given(
    pages=st.lists(st.lists(_new_row, min_size=1, max_size=60), min_size=1, max_size=4),
    column=st.sampled_from(["started", "status", "duration"]),
    filtered=st.booleans(),
)
def test_a_first_sync_page_by_page_equals_one_load(
    pages: list[list[tuple[int, Status, bool, bool]]], column: str, filtered: bool
) -> None:
    """Pages of rows not held yet (the rest of a first sync, merged in one go)
    give the order and the counts of loading every row at once; a page that
    repeats a run or brings one again is merged as any poll."""
    rs = RunSet()
    rs.set_sort(column)
    if filtered:
        rs.set_filter("!job:job1")
    rs.replace_all([row(500)])
    every: dict[tuple[str, str], RunRow] = {("local", "run-0500"): row(500)}
    for page in pages:
        batch = [
            RunRow.broken("local", f"run-{i:04d}", "bad") if broken else row(i, s, archived=a)
            for i, s, a, broken in page
        ]
        rs.apply(batch, notice=False)
        every.update((r.key, r) for r in batch)
        fresh = RunSet()
        fresh.set_sort(column)
        fresh.replace_all(every.values())
        if filtered:
            fresh.set_filter("!job:job1")
        assert rs.order == fresh.order
        assert (+rs.counts, rs.archived_count, rs.unreadable_count) == (
            +fresh.counts,
            fresh.archived_count,
            fresh.unreadable_count,
        )
        assert not rs.unseen
