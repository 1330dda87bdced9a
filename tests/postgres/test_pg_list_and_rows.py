"""What both stores build from the one SQL builder (``sources/window_sql.py``):
``jobwatch list``'s filter answers the same on SQLite and PostgreSQL, and
``jobwatch serve`` encodes PostgreSQL's records as it encodes its rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobwatch.core import Run, Status, utcnow
from jobwatch.server.app import _rows_body
from jobwatch.sources import window_sql
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PG_DIALECT, PostgresStore
from jobwatch.sources.protocol import ListQuery

STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.RUNNING, Status.ABORTED)


def make_runs(count: int = 40) -> list[Run]:
    now = utcnow()
    return [
        Run(
            id=f"run-{i:04d}",
            source=("local", "ci")[i % 2],
            job=f"job-{i % 3}",
            status=STATUSES[i % 4],
            created_at=now - timedelta(minutes=1000 - i),
            archived=i % 7 == 6 and STATUSES[i % 4].is_terminal,
        )
        for i in range(count)
    ]


QUERIES = [
    ListQuery(),
    ListQuery(include_archived=True),
    ListQuery(statuses=("failed",)),
    ListQuery(statuses=("failed", "aborted"), include_archived=True, limit=4),
    ListQuery(jobs=("job-1",), limit=3),
    ListQuery(jobs=("job-0", "job-2"), run_sources=("ci",)),
    ListQuery(run_sources=("local",), statuses=("succeeded",), include_archived=True),
    ListQuery(jobs=("nope",)),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
async def test_list_filters_answer_the_same_on_both_stores(
    query: ListQuery, pg_dsn: str, tmp_path: Path
) -> None:
    runs = make_runs()
    async with PostgresStore(pg_dsn) as pg, SqliteStore(tmp_path / "runs.db") as lite:
        await pg.add_many(runs)
        await lite.add_many(runs)
        on_pg, _ = await pg.list_runs(query)
        on_lite, _ = await lite.list_runs(query)
    expected = [r.id for r in sorted(runs, key=lambda r: r.created_at, reverse=True)]
    expected = [i for i in expected if query.matches(next(r for r in runs if r.id == i))]
    expected = expected[: query.limit] if query.limit is not None else expected
    assert [r.id for r in on_pg] == [r.id for r in on_lite] == expected


def test_the_list_filter_is_the_shared_builders() -> None:
    """Both engines spell it from the one builder: only ``archived`` differs."""
    query = ListQuery(statuses=("failed",), jobs=("a", "b"))
    assert window_sql.list_where(query) == (
        ["status IN (?)", "job IN (?, ?)", "archived = 0"],
        ["failed", "a", "b"],
    )
    assert window_sql.list_where(query, PG_DIALECT)[0][-1] == "NOT archived"
    shown = window_sql.list_where(query, shown_ids=["run-1"])
    assert shown[0][0] == "(status IN (?) OR id IN (?))" and shown[1][:2] == ["failed", "run-1"]


async def test_pg_records_encode_as_its_rows(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        runs = make_runs(30)
        await store.add_many(runs)
        records = await store.row_records(None, 20)
        rows = await store.row_changes(None, 20)
        assert len(records.records) == 20 and records.more and rows.more
        assert records.cursor == rows.cursor
        assert _rows_body(records) == _rows_body(rows)
        rest = await store.row_records(records.cursor, 20)
        assert len(rest.records) == 10 and not rest.more
