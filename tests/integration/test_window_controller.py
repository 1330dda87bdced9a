"""The monitor's bounded window over a real store: what it holds, where, and that
it never holds more than its cap, checked against the whole table in memory; on
both store kinds (a SQLite file, a real PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobwatch.core import Run, RunRow, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import WindowView
from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.table_model.window import PENDING, WindowController, WindowedRunSet

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
COUNT = 2000
CAP = 300
MARGIN = 50
CYCLE = (Status.SUCCEEDED, Status.FAILED, Status.RUNNING, Status.ABORTED, Status.QUEUED)


def history(count: int = COUNT) -> list[Run]:
    return [
        Run(
            id=f"run-{i:06d}",
            source="local",
            job=("etl", "backup", "report")[i % 3],
            status=CYCLE[i % len(CYCLE)],
            created_at=T0 - timedelta(seconds=(i // 2) * 10),  # pairs tie on the time
            started_at=T0 - timedelta(seconds=(i // 2) * 10),
            archived=i % 50 == 49,
        )
        for i in range(count)
    ]


Store = SqliteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store: Store
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "big.db")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"), mode="write")
    await store.open()
    await store.add_many(history())
    yield store
    await store.close()


async def everything(store: Store, runs: WindowedRunSet) -> RunSet:
    """The same view with every row in memory: what the window must agree with."""
    whole = RunSet(sort=runs.sort, show_archived=runs.show_archived, reverse=runs.reverse)
    whole.set_filter(runs.filter.text)
    whole.replace_all((await store.row_changes(None)).rows)
    return whole


def make(store: Store) -> tuple[WindowedRunSet, WindowController]:
    runs = WindowedRunSet(cap=CAP, margin=MARGIN)
    return runs, WindowController(store, runs)


def shown(runs: RunSet, start: int, stop: int) -> list[tuple[str, str]]:
    return [runs.key_at(i) for i in range(start, stop)]


async def test_the_first_read_holds_the_top_and_counts_the_whole_history(
    store: Store,
) -> None:
    runs, window = make(store)
    await window.settle()
    whole = await everything(store, runs)
    assert runs.held() == MARGIN // 2  # one screen first, for the first paint...
    runs.want(0)  # ...whose drawing reads more
    await window.settle()
    assert runs.held() == MARGIN // 2 + CAP // 2
    assert len(runs) == len(whole) == COUNT - COUNT // 50  # the table's height: everything
    assert shown(runs, 0, runs.held()) == whole.order[: runs.held()]
    assert runs.key_at(CAP + 10) == PENDING
    assert runs.counts == whole.counts
    assert runs.archived_count == COUNT // 50


async def test_scrolling_past_the_edge_reads_the_next_rows_and_never_holds_more(
    store: Store,
) -> None:
    runs, window = make(store)
    await window.settle()
    whole = await everything(store, runs)
    seen: list[tuple[str, str]] = []
    for index in range(len(whole)):  # down the whole table, row by row, as the table draws
        if runs.key_at(index) == PENDING:
            runs.want(index)
            await window.settle()
        runs.want(index)
        if runs.need_extend:
            await window.settle()
        assert runs.held() <= CAP
        seen.append(runs.key_at(index))
    assert seen == whole.order
    assert runs.base > 0


async def test_a_jump_reads_the_rows_there(store: Store) -> None:
    runs, window = make(store)
    await window.settle()
    whole = await everything(store, runs)
    assert runs.key_at(1500) == PENDING
    runs.want(1500)
    await window.settle()
    assert shown(runs, 1490, 1510) == whole.order[1490:1510]
    runs.want(len(runs) - 1)  # End
    await window.settle()
    assert runs.key_at(len(runs) - 1) == whole.order[-1]
    assert runs.held() <= CAP


async def test_a_jump_reads_from_the_nearer_end(store: Store) -> None:
    """A jump below the middle is read counted from the end (a far offset walks the
    rows it skips first), and holds the same rows as one read from the top."""
    runs, window = make(store)
    await window.settle()
    whole = await everything(store, runs)
    asked: list[dict[str, Any]] = []
    real = store.window_rows

    async def record(view: WindowView, **kw: Any) -> list[RunRow]:
        asked.append(kw)
        return await real(view, **kw)

    store.window_rows = record  # type: ignore[method-assign]
    for target, from_end in ((1700, True), (1200, True), (800, False), (300, False)):
        asked.clear()
        runs.want(target)
        await window.settle()
        assert shown(runs, target - 20, target + 20) == whole.order[target - 20 : target + 20]
        jumps = [kw for kw in asked if "after" not in kw and "before" not in kw]
        assert jumps and all(kw.get("from_end", False) is from_end for kw in jumps), asked
        if from_end:
            assert all(kw["offset"] > 0 for kw in jumps), asked  # not the last page


async def test_a_filter_or_sort_change_reads_the_view_again(store: Store) -> None:
    runs, window = make(store)
    await window.settle()
    reads = window.reads
    runs.set_filter("status:fail job:etl")
    assert runs.need_reload
    await window.settle()
    assert window.reads > reads
    whole = await everything(store, runs)
    assert len(runs) == len(whole) < COUNT
    assert shown(runs, 0, runs.held()) == whole.order[: runs.held()]
    runs.set_sort("status")
    await window.settle()
    whole = await everything(store, runs)
    assert shown(runs, 0, runs.held()) == whole.order[: runs.held()]
    runs.set_filter("")
    runs.toggle_reverse()
    runs.want(0)
    await window.settle()
    whole = await everything(store, runs)
    assert shown(runs, 0, 20) == whole.order[-20:][::-1]
    assert runs.held() <= CAP


async def changed(store: Store, runs: list[Run]) -> list[RunRow]:
    """Write ``runs`` and read them back as the poller does."""
    cursor = await store.head_cursor()
    await store.add_many(runs)
    return (await store.row_changes(cursor)).rows


async def test_a_poll_merges_rows_inside_the_window_and_drops_the_rest(
    store: Store,
) -> None:
    runs, window = make(store)
    await window.settle()
    old = {r.id: r for r in history()}
    inside = old["run-000003"].evolve(status=Status.FAILED)  # on screen: changes in place
    deep = old["run-001500"]
    risen = deep.evolve(started_at=T0 + timedelta(seconds=5))  # from far down to the top
    away = old["run-001700"].evolve(status=Status.FAILED)  # stays far down
    sunk = old["run-000010"].evolve(started_at=T0 - timedelta(days=9))  # on screen: sinks
    rows = await changed(store, [inside, risen, away, sunk])
    faulted = runs.apply(rows)
    assert runs.held() <= CAP
    assert runs.rows[("local", "run-000003")].status is Status.FAILED
    assert runs.key_at(0) == ("local", "run-001500")
    assert ("local", "run-001700") not in runs.rows  # outside: not held...
    assert ("local", "run-001700") in runs.recent  # ...but kept for the toast
    assert ("local", "run-000010") not in runs.rows  # left the window's stretch
    assert set(faulted) >= {("local", "run-000003"), ("local", "run-001700")}
    assert runs.need_resync
    await window.settle()
    whole = await everything(store, runs)
    assert shown(runs, 0, runs.held()) == whole.order[: runs.held()]
    assert runs.counts == whole.counts
    assert len(runs) == len(whole)


async def test_a_poll_far_down_the_table_keeps_the_window_in_place(store: Store) -> None:
    runs, window = make(store)
    await window.settle()
    runs.want(1200)
    await window.settle()
    base = runs.base
    assert base > 0
    old = {r.id: r for r in history()}
    # Ten rows from above the window sink below it, ten new runs arrive on top.
    sunk = [old[f"run-{i:06d}"].evolve(started_at=T0 - timedelta(days=9)) for i in range(10)]
    new = [
        old["run-000000"].model_copy(update={"id": f"new-{i}", "started_at": T0}) for i in range(10)
    ]
    runs.apply(await changed(store, sunk + new))
    await window.settle()
    whole = await everything(store, runs)
    assert runs.base == whole.index_of(runs.order[0])
    assert shown(runs, runs.base, runs.base + 50) == whole.order[runs.base : runs.base + 50]
    assert len(runs) == len(whole)
    assert runs.held() <= CAP


async def test_a_batch_bigger_than_the_window_is_held_to_the_cap(store: Store) -> None:
    runs, window = make(store)
    await window.settle()
    fresh = [
        r.model_copy(update={"id": f"burst-{i:05d}", "started_at": T0 + timedelta(seconds=i)})
        for i, r in enumerate(history(1000))
    ]
    runs.apply(await changed(store, fresh))
    assert runs.held() <= CAP
    await window.settle()
    whole = await everything(store, runs)
    assert shown(runs, 0, 100) == whole.order[:100]
    assert Counter(runs.counts) == Counter(whole.counts)


async def test_a_held_row_that_sorts_beyond_the_window_leaves_it(store: Store) -> None:
    runs, window = make(store)
    await window.settle()
    old = {r.id: r for r in history()}
    sunk = old["run-000010"].evolve(started_at=T0 - timedelta(days=9))
    held = runs.held()
    runs.apply(await changed(store, [sunk]))
    assert ("local", "run-000010") not in runs.rows  # its place is far below the window
    assert runs.key_at(held - 1) != ("local", "run-000010")
    assert runs.held() == held - 1
    await window.settle()
    whole = await everything(store, runs)
    assert len(runs) == len(whole)
    runs.want(len(runs) - 1)
    await window.settle()
    assert runs.key_at(len(runs) - 1) == ("local", "run-000010")


def test_a_row_still_being_read_is_no_selection() -> None:
    """The table's cursor may sit on a row the window has not read yet; the actions
    ask ``if cursor_key`` and must see nothing to act on."""
    runs = WindowedRunSet(cap=CAP)
    assert runs.key_at(5) == PENDING and not PENDING
    runs.toggle_mark(PENDING)
    assert not runs.marked


async def test_a_marked_run_the_window_lets_go_of_stays_marked_and_known(store: Store) -> None:
    """Mark a run at the top, jump to the end: the window no longer holds the row,
    but the mark still names it (counted as hidden, acted on), and a poll that
    changes it keeps what the set knows of it current."""
    runs, window = make(store)
    await window.settle()
    key = ("local", "run-000001")
    runs.toggle_mark(key)
    runs.want(len(runs) - 1)  # End: the stretch moves to the oldest runs
    await window.settle()
    assert key not in runs.rows and runs.held() <= CAP
    assert runs.row_of(key) is not None
    assert runs.hidden_marks() == [key]
    old = {r.id: r for r in history()}
    await changed(store, [old["run-000001"].evolve(status=Status.ABORTED)])
    runs.apply(await changed(store, [old["run-000001"].evolve(status=Status.FAILED)]))
    row = runs.row_of(key)
    assert row is not None and row.status is Status.FAILED
    runs.toggle_mark(key)  # unmarked: let go of
    assert runs.row_of(key) is None and not runs.pinned


async def test_a_failure_outside_the_window_is_announced_once(store: Store) -> None:
    """A row the window does not hold has no old state to compare with: without a
    memory of it, every later change of a failed run far down was a new failure."""
    runs, window = make(store)
    await window.settle()
    old = {r.id: r for r in history()}
    far = old["run-001700"]
    assert ("local", far.id) not in runs.rows
    first = runs.apply(await changed(store, [far.evolve(status=Status.FAILED)]))
    assert ("local", far.id) in first
    again = runs.apply(await changed(store, [far.evolve(status=Status.FAILED, label="retry 1")]))
    assert ("local", far.id) not in again
    # a held failure scrolled out of the window is known too
    top_failed = next(k for k, r in runs.rows.items() if r.status is Status.FAILED)
    runs.want(len(runs) - 1)
    await window.settle()
    assert top_failed not in runs.rows
    row = old[top_failed[1]]
    later = runs.apply(await changed(store, [row.evolve(label="touched")]))
    assert top_failed not in later
    # a run that stops being a fault can fail anew, and is announced again
    runs.apply(await changed(store, [far.evolve(status=Status.RUNNING)]))
    anew = runs.apply(await changed(store, [far.evolve(status=Status.FAILED)]))
    assert ("local", far.id) in anew
