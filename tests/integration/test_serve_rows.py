"""``GET /api/v1/rows`` (format ``rows/1``): the compact first sync, its round
trip, and old and new clients and servers together, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TEST_TOKEN, LoopbackServer
from jobwatch.core import Progress, Run, RunRow, Status
from jobwatch.core.redact import clean
from jobwatch.sources.http import rows as codec
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
COUNT = 2500


def runs(count: int = COUNT) -> list[Run]:
    return [
        Run(
            id=f"run-{i:06d}",
            source="local",
            job=("etl", "backup", "Ünïcode")[i % 3],
            label=f"deploy token={SECRET}" if i == 7 else None,
            status=(Status.SUCCEEDED, Status.FAILED, Status.RUNNING)[i % 3],
            status_raw="done\x1b[31m" if i == 8 else None,
            created_at=T0 - timedelta(seconds=i),
            started_at=None if i % 5 == 0 else T0 - timedelta(seconds=i),
            duration_ms=1234.5 if i % 2 else None,
            progress=Progress(total=10, succeeded=i % 10, failed=1) if i % 4 == 0 else None,
            archived=i % 50 == 49,
            partial=i % 9 == 0,
        )
        for i in range(count)
    ]


def test_rows_round_trip_through_json_with_text_cleaned() -> None:
    rows = [RunRow.from_run(r) for r in runs(40)]
    rows.append(RunRow.broken("local", "broken-1", "unreadable record: status"))
    body = {
        "format": codec.FORMAT,
        "fields": list(codec.FIELDS),
        "count": len(rows),
        "columns": codec.encode(rows, clean),
        "revision": 3,
        "more": False,
    }
    back = codec.decode(json.loads(json.dumps(body)))

    def sent(name: str, value: Any) -> Any:
        if name in codec.TEXT and isinstance(value, str):
            return clean(value)
        if name in codec.MILLIS and value is not None:  # whole milliseconds
            return round(value) if name == "duration_ms" else round(value * 1000) / 1000
        return value

    expected = [RunRow(*(sent(n, getattr(r, n)) for n in codec.FIELDS)) for r in rows]
    assert back == expected
    assert SECRET not in json.dumps(body) and "\x1b" not in json.dumps(body)
    assert back[7].label is not None and "token=" in back[7].label
    assert back[-1].error == "unreadable record: status"
    # a status column is a dictionary of its four values, whatever the row count
    status = body["columns"][codec.FIELDS.index("status")]
    assert isinstance(status, dict) and len(status["d"]) == 4


def test_a_repeated_message_is_cleaned_once_and_sent_once() -> None:
    """A failure's message often repeats across a page; it was cleaned (redaction
    included) once per row. Distinct messages still go as a plain list."""
    base = [dataclasses.replace(RunRow.from_run(r), message=None) for r in runs(40)]
    same = f"step 3 failed: token={SECRET}"
    repeated = [dataclasses.replace(r, message=same if i % 2 else None) for i, r in enumerate(base)]
    distinct = [dataclasses.replace(r, message=f"failed at row {i}") for i, r in enumerate(base)]
    where = codec.FIELDS.index("message")
    for rows, shape in ((repeated, dict), (distinct, list)):
        seen: list[str] = []

        def counting(text: str, seen: list[str] = seen) -> str:
            seen.append(text)
            return clean(text)

        columns = codec.encode(rows, counting)
        assert isinstance(columns[where], shape)
        body = {"format": codec.FORMAT, "fields": list(codec.FIELDS), "count": len(rows)}
        back = codec.decode(json.loads(json.dumps({**body, "columns": columns})))
        assert [r.message for r in back] == [
            None if r.message is None else clean(r.message) for r in rows
        ]
        if shape is dict:
            assert seen.count(same) == 1 and SECRET not in json.dumps(columns)


def test_the_fields_are_the_rows_own_in_order() -> None:
    """Rows are built positionally: a field added to ``RunRow`` needs its column."""
    own = tuple(f.name for f in dataclasses.fields(RunRow))
    assert own == codec.FIELDS + codec.LOCAL_FIELDS


def test_an_answer_without_a_later_optional_field_still_reads() -> None:
    rows = [RunRow.from_run(r) for r in runs(3)]
    names = [n for n in codec.FIELDS if n != "deleted"]
    columns = codec.encode(rows, clean)
    body = {
        "format": codec.FORMAT,
        "fields": names,
        "count": 3,
        "columns": [c for n, c in zip(codec.FIELDS, columns, strict=True) if n != "deleted"],
    }
    assert [r.deleted for r in codec.decode(json.loads(json.dumps(body)))] == [False] * 3


def _spoil_value(column: Any, value: Any) -> None:
    """A bad value in a text column, in whichever shape the page sent it."""
    if isinstance(column, dict):
        column["d"][0] = value
    else:
        column[3] = value


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b.update(format="rows/9"),
        lambda b: b.update(count=-1),
        lambda b: b["fields"].remove("id"),
        lambda b: b["columns"][codec.FIELDS.index("started_at")].__setitem__(0, "soon"),
        lambda b: b["columns"][codec.FIELDS.index("status")]["c"].__setitem__(0, 99),
        lambda b: b["columns"][codec.FIELDS.index("id")].pop(),
        lambda b: b["columns"][codec.FIELDS.index("id")].__setitem__(1, 7),
        lambda b: b["columns"][codec.FIELDS.index("job")]["d"].__setitem__(0, ["etl"]),
        lambda b: b["columns"][codec.FIELDS.index("total")].__setitem__(2, True),
        lambda b: _spoil_value(b["columns"][codec.FIELDS.index("error")], {"x": 1}),
        lambda b: _spoil_value(b["columns"][codec.FIELDS.index("message")], 12),
    ],
)
def test_a_malformed_rows_answer_is_refused(spoil: Any) -> None:
    rows = [RunRow.from_run(r) for r in runs(5)]
    body = json.loads(
        json.dumps(
            {
                "format": codec.FORMAT,
                "fields": list(codec.FIELDS),
                "count": 5,
                "columns": codec.encode(rows, clean),
            }
        )
    )
    spoil(body)
    with pytest.raises(codec.RowsFormatError):
        codec.decode(body)


@pytest.fixture
async def filled(store_path: Path) -> AsyncIterator[list[RunRow]]:
    async with SqliteStore(store_path) as store:
        await store.add_many(runs()[:1000])
        await store.add_many(runs()[1000:])
        yield (await store.row_changes(None)).rows


@contextlib.asynccontextmanager
async def client(server: LoopbackServer, **kw: Any) -> AsyncIterator[HttpSource]:
    source = HttpSource(server.url, name="served", token=TEST_TOKEN, **kw)
    await source.open()
    try:
        yield source
    finally:
        await source.close()


async def sync_rows(source: HttpSource) -> tuple[dict[tuple[str, str], RunRow], list[int]]:
    rows: dict[tuple[str, str], RunRow] = {}
    sizes: list[int] = []
    cursor: int | str | None = None
    for _ in range(20):
        delta = await source.row_changes(cursor)
        rows.update((r.key, r) for r in delta.rows)
        sizes.append(len(delta.rows))
        cursor = delta.cursor
        if not delta.more:
            break
    return rows, sizes


async def test_a_new_client_syncs_rows_page_by_page(
    filled: list[RunRow], loopback_server: LoopbackServer, store_path: Path
) -> None:
    async with client(loopback_server, row_page=700) as source:
        got, sizes = await sync_rows(source)
        assert sizes == [700, 700, 700, 400]  # pages cross the two revisions
        assert set(got) == {r.key for r in filled}
        mine = next(r for r in filled if r.id == "run-000003")
        theirs = got[("local", "run-000003")]
        assert (theirs.job, theirs.status, theirs.total, theirs.partial) == (
            mine.job,
            mine.status,
            mine.total,
            mine.partial,
        )
        assert theirs.started_at is not None and mine.started_at is not None
        assert abs(theirs.started_at - mine.started_at) < 0.001  # whole milliseconds
        label = got[("local", "run-000007")].label or ""
        assert SECRET not in label and label.startswith("deploy token=")
        newest = await source.first_rows(5)
        assert newest is not None and len(newest) == 5 and newest[0].id == "run-000000"
        # a later poll brings just what changed
        async with SqliteStore(store_path) as writer:
            run = await writer.get("run-000010")
            await writer.add(run.evolve(status=Status.FAILED))
        cursor = (await source.row_changes(None, 100_000)).cursor
        await_changed = await source.row_changes(cursor)
        assert await_changed.rows == []
        async with SqliteStore(store_path) as writer:
            await writer.add(run.evolve(status=Status.ABORTED))
        changed = await source.row_changes(cursor)
        assert [(r.id, r.status) for r in changed.rows] == [("run-000010", Status.ABORTED)]


async def test_an_old_client_still_reads_full_runs_from_a_new_server(
    filled: list[RunRow], loopback_server: LoopbackServer
) -> None:
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=loopback_server.url, headers=headers) as http:
        answer = await http.get("/api/v1/runs", params={"limit": 10})
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"runs", "revision", "more", "errors"}
        assert body["more"] is True and len(body["runs"]) == 10
        Run.model_validate(body["runs"][0])


class OldServer(LoopbackServer):
    """The same server without ``/rows``: a ``jobwatch serve`` from before rows/1,
    which answers that path as any unknown route (checked against the real app's
    answer to a route it has not got)."""

    @contextlib.asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        async with super().serving_app() as app:

            async def without_rows(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http" and scope["path"] == "/api/v1/rows":
                    scope = {**scope, "path": "/api/v1/no-such-route", "raw_path": b""}
                await app(scope, receive, send)

            yield without_rows


@pytest.fixture
def old_server(store_path: Path, filled: list[RunRow]) -> Iterator[OldServer]:
    server = OldServer(store_path).start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_new_client_falls_back_to_runs_on_an_old_server(
    filled: list[RunRow], old_server: OldServer
) -> None:
    async with client(old_server, page=1000) as source:
        assert await source.first_rows(5) is None
        got, sizes = await sync_rows(source)
        assert sizes == [1000, 1000, 500]  # pages of full runs, as before
        assert set(got) == {r.key for r in filled}
        assert not source._rows_api  # asked once, then remembered


async def read_ahead_landed(source: HttpSource) -> None:
    """Wait for the page the client asked for ahead of time (bounded)."""
    ahead = source._ahead
    assert ahead is not None, "no page was read ahead"
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(ahead[1]), 20)


async def test_the_next_page_of_a_first_sync_is_read_ahead(
    filled: list[RunRow], loopback_server: LoopbackServer
) -> None:
    """While the caller shows one page the server prepares the next: that page
    arrives even if the server went away meanwhile."""
    async with client(loopback_server, row_page=700) as source:
        newest = await source.first_rows(5)
        assert newest is not None
        assert source._ahead is None  # nothing competes with drawing the first screen
        first = await source.row_changes(None)
        assert len(first.rows) == 700 and first.more
        await read_ahead_landed(source)
        loopback_server.stop()
        second = await source.row_changes(first.cursor)
        assert len(second.rows) == 700
        assert not {r.key for r in first.rows} & {r.key for r in second.rows}
        loopback_server.start()
        got, _ = await sync_rows(source)  # a sync from the start is not given a later page
        assert set(got) == {r.key for r in filled}


async def test_a_read_ahead_that_failed_is_read_again(
    filled: list[RunRow], loopback_server: LoopbackServer
) -> None:
    async with client(loopback_server, row_page=700, attempts=1) as source:
        first = await source.row_changes(None)
        assert first.more
        loopback_server.faults.reset_hits()
        loopback_server.faults.status, loopback_server.faults.times = 500, 1
        await read_ahead_landed(source)
        assert loopback_server.faults.hits == 1  # the read-ahead got the error
        second = await source.row_changes(first.cursor)
        assert len(second.rows) == 700
        assert not {r.key for r in first.rows} & {r.key for r in second.rows}
