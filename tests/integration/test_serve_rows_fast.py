"""The server's fast path for ``rows/1``: the store's records encoded as they are
(no RunRow per record), the next page read ahead, and a format a newer server
may extend. Real store files; the read-ahead's own rules with a plain reader."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_serve_rows import SECRET, runs

from jobwatch.core import RunRow, Status
from jobwatch.core.redact import clean
from jobwatch.server.app import _rows_body
from jobwatch.server.pages_ahead import Page, PagesAhead
from jobwatch.sources.http import rows as codec
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.protocol import RowRecords


async def test_records_encode_exactly_as_their_rows_do(store_path: Path) -> None:
    """Byte for byte the same answer from the records as from the rows, a run
    shown lost by a read-only open included (its shown row, not its record)."""
    async with SqliteStore(store_path) as store:
        await store.add_many(runs(300))
        lost = (await store.get("run-000002")).evolve(status=Status.UNKNOWN, status_raw="lost")
        revision = await store.revision()
        store._show_lost_runs({"run-000002": (revision, lost)})
        records = await store.row_records(None, 200)
        rows = await store.row_changes(None, 200)
        assert isinstance(records, RowRecords) and len(records.records) == 200
        assert (records.cursor, records.more) == (rows.cursor, rows.more)
        from_records = _rows_body(records)
        assert from_records == _rows_body(rows)
        body = json.loads(from_records)
        back = {r.id: r for r in codec.decode(body)}
        assert back["run-000002"].status_raw == "lost"
        assert SECRET not in from_records.decode()
        rest = await store.row_records(records.cursor, 200)
        assert rest is not None and not rest.more
        # the last page sends the run shown lost once more (its revision did not move)
        assert [r[1] for r in rest.records][-1] == "run-000002" and len(rest.records) == 101


def test_records_without_a_field_send_its_default() -> None:
    """A store whose records lack a field (``deleted``, ``error``) sends the row's
    default in every row, so an old client still finds every column."""
    row = RunRow.from_run(runs(1)[0])
    fields = ("source", "id", "status", "created_at")
    columns = codec.encode_records(fields, [("local", row.id, "failed", 1.5, 99)], clean)
    body = {"format": codec.FORMAT, "fields": list(codec.FIELDS), "count": 1, "columns": columns}
    (back,) = codec.decode(json.loads(json.dumps(body)))
    assert (back.id, back.status, back.created_at) == (row.id, Status.FAILED, 1.5)
    assert (back.job, back.aborting, back.deleted, back.error) == (None, False, False, None)


def test_a_client_ignores_a_field_it_does_not_know_and_may_miss_error() -> None:
    """rows/1 is extensible: a newer server's extra column (say ``message``) is
    ignored, and ``error`` (the same in every good row) may be left out."""
    rows = [RunRow.from_run(r) for r in runs(3)]
    columns = dict(zip(codec.FIELDS, codec.encode(rows, clean), strict=True))
    del columns["error"]
    columns["message"] = ["a", "b", "c"]
    body = {
        "format": codec.FORMAT,
        "fields": list(columns),
        "count": 3,
        "columns": list(columns.values()),
    }
    back = codec.decode(json.loads(json.dumps(body)))
    assert [r.id for r in back] == [r.id for r in rows]
    assert [r.error for r in back] == [None] * 3


class Reader:
    """Pages of ten numbers up to ``end``; counts its reads."""

    def __init__(self, end: int = 40, fail_at: int | None = None) -> None:
        self.end = end
        self.fail_at = fail_at
        self.reads: list[int | str | None] = []

    async def __call__(self, cursor: int | str | None, limit: int) -> Page:
        self.reads.append(cursor)
        start = int(cursor or 0)
        await asyncio.sleep(0)
        if start == self.fail_at:
            self.fail_at = None
            raise OSError("store failed")
        stop = min(self.end, start + limit)
        return Page(str(list(range(start, stop))).encode(), stop, stop < self.end)


async def settle(pages: PagesAhead) -> None:
    for _ in range(50):  # bounded: each read is a few loop turns
        await asyncio.sleep(0)


async def test_the_next_page_is_read_before_it_is_asked_for_and_handed_out_once() -> None:
    reader = Reader()
    pages = PagesAhead(reader)
    first = await pages.page(None, 10)
    await settle(pages)
    assert first.more and reader.reads == [None, 10]  # page two read before it is asked for
    second = await pages.page(10, 10)
    assert second.body == str(list(range(10, 20))).encode() and pages.hits == 1
    await settle(pages)
    assert reader.reads == [None, 10, 20]
    again = await pages.page(10, 10)  # asked twice (a second client): read afresh
    await settle(pages)
    assert again == second and reader.reads == [None, 10, 20, 10] and pages.hits == 1
    assert (await pages.page(20, 10)).cursor == 30 and pages.hits == 2
    last = await pages.page(30, 10)
    await settle(pages)
    assert not last.more and 40 not in reader.reads  # nothing after the last page
    pages.close()


async def test_a_page_read_ahead_that_failed_is_read_again() -> None:
    reader = Reader(fail_at=10)
    pages = PagesAhead(reader)
    await pages.page(None, 10)
    await settle(pages)
    second = await pages.page(10, 10)
    assert second.cursor == 20 and reader.reads[:3] == [None, 10, 10]
    pages.close()


async def test_pages_read_ahead_are_bounded_and_expire() -> None:
    now = [0.0]
    reader = Reader(end=1000)
    pages = PagesAhead(reader, size=2, ttl=5.0, clock=lambda: now[0])
    for start in (0, 100, 200):  # three syncs at once: at most two pages ahead
        await pages.page(start, 10)
    assert len(pages._ahead) == 2
    await settle(pages)
    now[0] = 6.0  # too old to hand out
    await pages.page(210, 10)
    assert pages.hits == 0 and reader.reads.count(210) == 2
    pages.close()
    assert not pages._ahead


@pytest.mark.parametrize("size", [0])
async def test_no_read_ahead_when_switched_off(size: int) -> None:
    reader = Reader()
    pages = PagesAhead(reader, size=size)
    await pages.page(None, 10)
    await settle(pages)
    assert reader.reads == [None]


async def test_the_first_page_is_read_while_the_first_screen_is_drawn() -> None:
    """After the newest rows, the server starts the sync's first page (the page
    size the client named), so the client's first page request finds it."""
    reader = Reader()
    pages = PagesAhead(reader)
    pages.prefetch(None, 10)
    await settle(pages)
    assert reader.reads == [None]
    first = await pages.page(None, 10)
    assert pages.hits == 1 and first.cursor == 10
    pages.prefetch(None, 10)  # once handed out, a prefetch reads it afresh
    await settle(pages)
    assert reader.reads.count(None) == 2
    pages.close()
