"""The store's windowed queries against the monitor's own Python sort and filter
(``RunSet``) over the same rows: pages by offset, by keyset either way, counts and
positions, with ties on every sort key, missing times, empty and non-ASCII text.
Every such test runs on both store kinds: a SQLite file and a real PostgreSQL."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobwatch.core import Progress, Reason, Run, RunError, RunRow, Status
from jobwatch.core.columns import SORTS
from jobwatch.core.errors import NewerStoreError
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.local import window as store_window
from jobwatch.sources.local.schema import MIGRATIONS, SCHEMA_VERSION, SORT_INDEX_VERSION
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.protocol import WindowTerm, WindowView
from jobwatch.sources.window_sql import JUMP_FROM
from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.table_model.window import WindowedRunSet

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
JOBS = ("etl", "ETL", "backup", "", None, "Ünïcode-Job", "ünïcode-job", "report_2%")
SOURCES = ("local", "letta-demo", "intuned-demo")
FILTERS = (
    "",
    "status:fail",
    "status:failed,timed_out",
    "!status:succeeded",
    "job:etl",
    "job:",
    "!job:",
    "source:letta",
    "id:00001",
    "problem:exit",
    "label:nightly",
    "raw:DONE",
    "etl",
    "ünï",
    "ÜNÏ",
    "report_2%",
    "!etl status:fail",
    "job:backup,etl !source:local",
    "since:3m",
    "!since:3m",
    "before:90s job:etl",
    "since:2027-01-15T11:58",
)


def make_runs(count: int, seed: int = 3) -> list[Run]:
    rng = random.Random(seed)
    runs = []
    for i in range(count):
        status = rng.choice(list(Status))
        minutes = rng.choice((0, 1, 1, 2, 5, 30))  # many ties on the time
        when = T0 - timedelta(minutes=minutes)
        started = None if rng.random() < 0.2 else when
        created = None if started is not None and rng.random() < 0.3 else when
        job = rng.choice(JOBS)
        problem = rng.choice((None, None, "exit-2", "timeout", ""))
        runs.append(
            Run(
                id=f"r{i % 7:02d}{i:05d}",
                source=rng.choice(SOURCES),
                job=job,
                label=rng.choice((None, "nightly run", "")),
                status=status,
                status_raw=rng.choice(("done", "DONE", None)),
                created_at=created,
                started_at=started,
                ended_at=when + timedelta(seconds=rng.choice((30, 90, 400))) if i % 3 else None,
                duration_ms=rng.choice((None, 0.0, 1000.0, 1000.0, 25.5)),
                progress=Progress(total=10, succeeded=3) if rng.random() < 0.3 else None,
                error=RunError(code=problem, message="x") if problem else None,
                reason=Reason(type="timeout") if problem == "" else None,
                archived=rng.random() < 0.1,
            )
        )
    return runs


Store = SqliteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
async def filled(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, list[RunRow]]:
    """400 runs in a store of each kind (PostgreSQL: a fresh database on the server)."""
    store: Store
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "w.db")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"), mode="write")
    await store.open()
    await store.add_many(make_runs(400))
    rows = (await store.row_changes(None)).rows
    yield store, rows
    await store.close()


def oracle(rows: list[RunRow], sort: str, text: str, archived: bool, faults: bool) -> RunSet:
    runs = RunSet(sort=sort, show_archived=archived, faults_only=faults)
    runs.set_filter(text, now=T0.timestamp())
    runs.replace_all(rows)
    return runs


def view_of(runs: RunSet) -> WindowView:
    terms = tuple(WindowTerm(t.field, t.value, t.negate, t.at) for t in runs.filter.terms)
    return WindowView(runs.sort, terms, runs.show_archived, runs.faults_only)


@pytest.mark.parametrize("sort", SORTS)
async def test_pages_match_the_python_order_for_every_sort(
    filled: tuple[Store, list[RunRow]], sort: str
) -> None:
    store, rows = filled
    for archived in (False, True):
        expected = oracle(rows, sort, "", archived, False)
        want = expected.order
        view = view_of(expected)
        got = [r.key for r in await store.window_rows(view, limit=1000)]
        assert got == want
        assert await store.window_count(view) == len(want)
        # pages by offset, then by keyset forwards and backwards, line up exactly
        page = [r.key for r in await store.window_rows(view, offset=37, limit=50)]
        assert page == want[37:87]
        anchor = expected.rows[want[100]]
        after = [r.key for r in await store.window_rows(view, after=anchor, limit=40)]
        assert after == want[101:141]
        before = [r.key for r in await store.window_rows(view, before=anchor, limit=40)]
        assert before == want[60:100]
        tail = [r.key for r in await store.window_rows(view, limit=30, from_end=True)]
        assert tail == want[-30:]
        assert await store.window_count(view, before=anchor) == 100


def far_offsets(count: int) -> list[int]:
    """Offsets read key first (and the last one read by ``OFFSET``), up to past the end."""
    return [JUMP_FROM - 1, JUMP_FROM, JUMP_FROM + 13, count - 7, count - 1, count, count + 3]


async def assert_jumps_match(
    store: Store, view: WindowView, want: list[str], limits: tuple[int, ...] = (1, 25)
) -> None:
    """Pages at far offsets, forwards and from the end, are the Python order's slices."""
    n = len(want)
    for offset in far_offsets(n):
        for limit in limits:
            page = [r.key for r in await store.window_rows(view, offset=offset, limit=limit)]
            assert page == want[offset : offset + limit], (view, offset, limit)
            tail = await store.window_rows(view, offset=offset, limit=limit, from_end=True)
            start, stop = max(0, n - offset - limit), max(0, n - offset)
            assert [r.key for r in tail] == want[start:stop], (view, offset, limit, "from_end")


@pytest.mark.parametrize("sort", SORTS)
async def test_far_jumps_match_the_python_order_for_every_sort(
    filled: tuple[Store, list[RunRow]], sort: str
) -> None:
    """A far jump reads the key of the row before the page, then the page by keyset:
    exactly what ``OFFSET`` gives, through ties on every sort key, archived or not."""
    store, rows = filled
    for archived in (False, True):
        expected = oracle(rows, sort, "", archived, False)
        assert len(expected) > JUMP_FROM + 20
        await assert_jumps_match(store, view_of(expected), expected.order)


JUMP_FILTERS = ("", "status:fail", "!status:succeeded", "etl", "ünï", "!job:backup")


@pytest.fixture(params=["sqlite", "postgres"])
async def filled_big(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, list[RunRow]]:
    """4,000 runs, so that a filtered view still reaches the jump offset."""
    store: Store
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "w.db")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"), mode="write")
    await store.open()
    await store.add_many(make_runs(4000, seed=5))
    yield store, (await store.row_changes(None)).rows
    await store.close()


async def test_far_jumps_match_the_python_filter(filled_big: tuple[Store, list[RunRow]]) -> None:
    """Jumps through filtered views: status terms, free text (ASCII and not, which
    SQLite reads by a scan), a negated term, faults only."""
    store, rows = filled_big
    for text in JUMP_FILTERS:
        for sort in ("started", "status", "job"):
            for faults in (False, True):
                expected = oracle(rows, sort, text, False, faults)
                assert len(expected) > JUMP_FROM, (text, faults)
                await assert_jumps_match(store, view_of(expected), expected.order, (25,))


@pytest.mark.parametrize("text", FILTERS)
async def test_filters_match_the_python_filter(
    filled: tuple[Store, list[RunRow]], text: str
) -> None:
    store, rows = filled
    for sort in ("started", "status", "job", "changed"):
        for faults in (False, True):
            expected = oracle(rows, sort, text, False, faults)
            view = view_of(expected)
            got = [r.key for r in await store.window_rows(view, limit=1000)]
            assert got == expected.order, (text, sort, faults)
            assert await store.window_count(view) == len(expected)


async def test_counts_by_aggregate_follow_inserts_updates_and_archiving(
    filled: tuple[Store, list[RunRow]],
) -> None:
    store, rows = filled

    def by_python() -> tuple[dict[str, int], int]:
        live = [r for r in rows if not r.archived]
        counts: dict[str, int] = {}
        for r in live:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        return counts, len(rows) - len(live)

    counts = await store.status_counts()
    assert (counts.by_status, counts.archived) == by_python()
    run = await store.get(rows[0].id)
    await store.add(run.evolve(status=Status.FAILED, archived=not run.archived))
    await store.add(run.model_copy(update={"id": "brand-new"}))
    rows = (await store.row_changes(None)).rows
    counts = await store.status_counts()
    assert (counts.by_status, counts.archived) == by_python()
    assert counts.total == 401


async def test_a_store_of_schema_2_is_migrated_with_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = {v: MIGRATIONS[v] for v in (1, 2)}
    with sqlite3.connect(path) as db:
        for version, statements in old.items():
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
        db.execute(
            "INSERT INTO runs (id, revision, source, status, archived) VALUES "
            "('a', 1, 'local', 'failed', 0), ('b', 1, 'local', 'failed', 1), "
            "('c', 1, 'local', 'running', 0)"
        )
    async with SqliteStore(path) as store:
        counts = await store.status_counts()
        assert counts.by_status == {"failed": 1, "running": 1}
        assert counts.archived == 1
        indexes = {r[0] for r in await store._fetchall("SELECT name FROM sqlite_master")}
        assert {"runs_sort_started", "runs_sort_status", "run_counts"} <= indexes
        assert not {"runs_win_started", "runs_win_status"} & indexes


def test_the_migration_indexes_are_the_window_sorts() -> None:
    """The frozen SQL of migration 7 indexes exactly the expressions the queries sort
    by, then ``archived``; version 3's had the same order."""

    def columns(statement: str) -> str:
        return " ".join(statement.split(" ON runs ", 1)[1].split())

    frozen = [columns(s) for s in MIGRATIONS[SORT_INDEX_VERSION] if s.startswith("CREATE INDEX")]
    assert frozen == [columns(s) for s in store_window.INDEXES]
    assert all(f.endswith(", archived)") for f in frozen)
    v3 = [columns(s) for s in MIGRATIONS[3] if s.startswith("CREATE INDEX")]
    assert [f.removesuffix(", archived)") + ")" for f in frozen[:2]] == v3


async def test_a_store_of_schema_6_gets_the_jump_indexes(tmp_path: Path) -> None:
    """An old file opened by this code gets version 7's indexes (and loses version 3's),
    a far jump on it is right, and a newer schema is still refused."""
    path = tmp_path / "v6.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 7):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
        db.executemany(
            "INSERT INTO runs (id, revision, source, status, archived, created_at) "
            "VALUES (?, 1, 'local', ?, ?, ?)",
            [
                (f"r{i:04d}", ("failed", "succeeded")[i % 2], i % 5 == 0, 1e9 + i // 3)
                for i in range(300)
            ],
        )
    async with SqliteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == SORT_INDEX_VERSION == 7
        found = {r[0]: r[1] for r in await store._fetchall("SELECT name, sql FROM sqlite_master")}
        assert not {"runs_win_started", "runs_win_status"} & set(found)
        for sort in store_window.INDEXED:
            assert " ".join(found[f"runs_sort_{sort}"].split()).endswith(", archived)")
        rows = (await store.row_changes(None)).rows
        for sort in ("started", "status"):
            expected = oracle(rows, sort, "", False, False)
            assert len(expected) == 240
            await assert_jumps_match(store, view_of(expected), expected.order)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(NewerStoreError, match="newer jobwatch"):
        async with SqliteStore(path):
            pass


@pytest.mark.parametrize("filled", ["sqlite"], indirect=True)
async def test_the_default_view_is_read_by_index(filled: tuple[Store, list[RunRow]]) -> None:
    store, rows = filled
    await store._conn.execute("ANALYZE")
    expected = oracle(rows, "started", "", False, False)
    anchor = expected.rows[expected.order[50]]
    key = store_window.key_of("started", anchor)
    exprs = store_window.SORT_SQL["started"]
    conditions, params = store_window.where(WindowView())
    store_window._keyset(conditions, params, exprs, key, ">")
    plan = await store._fetchall(
        f"EXPLAIN QUERY PLAN SELECT id FROM runs WHERE {' AND '.join(conditions)} "
        f"ORDER BY {', '.join(exprs)} LIMIT 10",
        params,
    )
    text = " ".join(str(r[3]) for r in plan)
    assert "SEARCH runs USING INDEX runs_sort_started" in text, text
    assert "TEMP B-TREE" not in text


@pytest.mark.parametrize("filled", ["sqlite"], indirect=True)
async def test_a_far_jump_key_is_read_from_the_sort_index(
    filled: tuple[Store, list[RunRow]],
) -> None:
    """The key query of a jump walks the sort's index (its last column ``archived``
    tests the filter there, without reading the table), forwards and from the end."""
    store, _ = filled
    assert isinstance(store, SqliteStore)
    await store._conn.execute("ANALYZE")
    sent: list[tuple[str, list[Any]]] = []
    real = store._fetchone

    async def record(sql: str, params: Any = ()) -> Any:
        sent.append((sql, list(params)))
        return await real(sql, params)

    store._fetchone = record  # type: ignore[method-assign]
    for sort in store_window.INDEXED:
        for from_end in (False, True):
            sent.clear()
            await store.window_rows(
                WindowView(sort=sort), offset=JUMP_FROM + 50, limit=20, from_end=from_end
            )
            keys = [(q, v) for q, v in sent if q.endswith("LIMIT ? OFFSET ?")]
            assert len(keys) == 1, sent
            sql, params = keys[0]
            plan = await store._fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
            text = " ".join(str(r[3]) for r in plan)
            assert f"SCAN runs USING INDEX runs_sort_{sort}" in text, text
            assert "TEMP B-TREE" not in text, text
    # no index answers these alone: a key query would be one more walk of the table
    for view in (WindowView(sort="job"), WindowView(terms=(WindowTerm("status", "fail"),))):
        sent.clear()
        await store.window_rows(view, offset=JUMP_FROM + 50, limit=20)
        assert not [q for q, _ in sent if q.endswith("LIMIT ? OFFSET ?")], view


async def test_an_unknown_filter_field_is_refused() -> None:
    view = WindowView(terms=(WindowTerm("since", "1h"),))  # a time term without its bound
    assert not store_window.translatable(view)
    with pytest.raises(ValueError, match="no SQL translation"):
        store_window.where(view)


def test_a_windowed_set_view_carries_the_filter() -> None:
    runs = WindowedRunSet(sort="status")
    runs.set_filter("!job:etl status:fail")
    view = runs.view()
    assert view.sort == "status"
    assert view.terms == (WindowTerm("job", "etl", True), WindowTerm("status", "fail", False))
