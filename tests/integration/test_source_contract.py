"""One contract, every source: the local store, ``jobwatch serve`` and each vendor.

Each kind of source contributes a factory (:class:`standins.contract.Upstream`):
it seeds runs in its system's words, changes one upstream, plants a malformed
record and builds the source as a config file would. The checks below know no
system; a sixth vendor is one line in :data:`FACTORIES` (and the suite fails
until the registry and this list agree). Refusals are compared with the text of
:mod:`jobwatch.core.rules` itself, so every source refuses in the same words.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_TOKEN, polled, serve_cli
from jobwatch.config.schema import JobwatchSourceConfig, SqliteSourceConfig
from jobwatch.core import Run, RunRow, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.core.levels import LogLevel
from jobwatch.core.rules import Action, Capabilities, refusal, source_refusal
from jobwatch.sources.http.transport import RemoteUnavailable
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.protocol import ListQuery, Source, newest_first
from jobwatch.sources.vendors import VENDORS
from standins import intuned, letta, matatika, modzy, salesforce
from standins.contract import Seeded, Upstream, VendorUpstream

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class StoreUpstream(Upstream):
    """The local store: a SQLite file written by another connection, as by
    ``jobwatch run`` in another process."""

    name = "local"

    async def __aenter__(self) -> StoreUpstream:
        self.path = self.tmp / "runs.db"
        self.writer = SqliteStore(self.path)
        await self.writer.open()
        self.count = 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.writer.close()

    async def seed(self, status: Status) -> Seeded:
        self.count += 1
        created = T0 + timedelta(minutes=self.count)
        run = Run(
            id=f"run-contract-{self.count:04d}",
            source="local",
            job="contract",
            status=status,
            status_raw=f"{status.value}-by-wrapper",
            created_at=created,
            started_at=created,
            ended_at=created + timedelta(seconds=30) if status.is_terminal else None,
        )
        await self.writer.add(run)
        return Seeded(run.id, status, run.status_raw or "")

    async def change(self, run: Seeded) -> Seeded:
        def finish(old: Run) -> Run:
            return old.evolve(status=Status.SUCCEEDED, status_raw="done", ended_at=T0)

        await self.writer.update(run.id, finish)
        return Seeded(run.id, Status.SUCCEEDED, "done")

    async def malform(self) -> str:
        broken = await self.seed(Status.SUCCEEDED)
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE run_docs SET data = ? WHERE id = ?", ('{"id": 5}', broken.id))
        return broken.id

    async def seed_log(self, run: Seeded) -> str:
        ts = T0.timestamp()
        lines = [
            (ts, "stdout", "info", "starting the extract"),
            (ts + 1, "stderr", "error", "connection refused"),
            (ts + 2, "stdout", "info", "extract stopped"),
        ]
        await self.writer.append_logs(run.id, lines)
        return "extract"

    async def aborted(self, run: Seeded) -> bool:
        return (await self.writer.get(run.id)).status is Status.ABORTED

    def build(self, *, read_only: bool = False, **settings: Any) -> Source:
        config = SqliteSourceConfig(kind="sqlite", path=self.path, **settings)
        return config.build(self.name, read_only=read_only)


class ServeUpstream(StoreUpstream):
    """The same store behind a real ``jobwatch serve``, read with the HTTP client."""

    name = "remote"

    async def __aenter__(self) -> ServeUpstream:
        await super().__aenter__()
        self._serve = serve_cli(self.path, tmp=self.tmp)
        self.url = self._serve.__enter__().url
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._serve.__exit__(None, None, None)
        await super().__aexit__()

    def build(self, *, read_only: bool = False, **settings: Any) -> Source:
        config = JobwatchSourceConfig(kind="jobwatch", url=self.url, token=TEST_TOKEN, **settings)
        return config.build(self.name, read_only=read_only)


class PostgresUpstream(StoreUpstream):
    """The shared store: a database on the session's real PostgreSQL server,
    written by another store object (another connection, as another host)."""

    name = "shared"
    server: Any = None
    """Set by the ``world`` fixture from ``pg_server``."""

    async def __aenter__(self) -> PostgresUpstream:
        from jobwatch.sources.postgres.store import PostgresStore

        self.dsn = self.server.new_database()
        self.writer = PostgresStore(self.dsn)  # type: ignore[assignment]
        await self.writer.open()
        self.count = 0
        return self

    async def malform(self) -> str:
        broken = await self.seed(Status.SUCCEEDED)
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("UPDATE runs SET data = %s WHERE id = %s", ('{"id": 5}', broken.id))
        return broken.id

    def build(self, *, read_only: bool = False, **settings: Any) -> Source:
        from jobwatch.config import Config
        from jobwatch.sources.select import source_from_spec

        source = source_from_spec(self.dsn, Config(), read_only=read_only)
        source.name = self.name
        return source


FACTORIES: dict[str, type[Upstream]] = {
    "sqlite": StoreUpstream,
    "jobwatch": ServeUpstream,
    "postgres": PostgresUpstream,
    "salesforce": salesforce.Contract,
    "letta": letta.Contract,
    "intuned": intuned.Contract,
    "modzy": modzy.Contract,
    "matatika": matatika.Contract,
}
"""Every kind of source, and the factory of its system: one line each."""
VENDOR_FACTORIES = [kind for kind in FACTORIES if kind in VENDORS]


@dataclass
class World:
    """A factory with four runs seeded, oldest first: active, succeeded, failed,
    succeeded."""

    up: Upstream
    runs: list[Seeded]

    @property
    def active(self) -> Seeded:
        return self.runs[0]

    @property
    def finished(self) -> Seeded:
        return self.runs[1]

    @property
    def failed_id(self) -> str:
        return self.runs[2].id

    async def seeded(self, source: Source) -> dict[str, Run]:
        first = await source.changes(None)
        return {run.id: run for run in first.runs}


async def seed(up: Upstream) -> World:
    statuses = (up.active, Status.SUCCEEDED, Status.FAILED, Status.SUCCEEDED)
    return World(up, [await up.seed(status) for status in statuses])


@pytest.fixture(params=list(FACTORIES))
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "postgres":
        PostgresUpstream.server = request.getfixturevalue("pg_server")
    async with FACTORIES[request.param](tmp_path) as up:
        yield await seed(up)


@pytest.fixture(params=VENDOR_FACTORIES)
async def vendor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with FACTORIES[request.param](tmp_path) as up:
        yield await seed(up)


def test_every_registered_vendor_is_under_the_contract() -> None:
    assert set(FACTORIES) == {"sqlite", "jobwatch", "postgres", *VENDORS}


# -- reading -----------------------------------------------------------------------------


async def test_open_close_and_declared_capabilities(world: World) -> None:
    source = world.up.build()
    assert isinstance(source, Source)
    caps = source.capabilities
    assert isinstance(caps, Capabilities) and caps.abort_effect and caps.archive_effect
    assert caps.logs is world.up.has_logs  # declared as the system really is
    assert caps.logs or caps.logs_note  # no log: a note says where to look instead
    if isinstance(world.up, VendorUpstream):
        assert caps.pace > 0 and source.pace == caps.pace  # API quotas: never every second
    await source.open()
    try:
        assert await world.seeded(source)
    finally:
        await source.close()
    await source.close()  # closing twice is harmless
    async with world.up.build() as again:  # and it opens again afresh
        assert await world.seeded(again)


async def test_first_sync_has_every_run_normalized_with_its_raw_status(world: World) -> None:
    async with world.up.build() as source:
        first = await source.changes(None)
    assert first.errors == []
    got = {run.id: (run.status, run.status_raw) for run in first.runs}
    assert got == {s.id: (s.status, s.raw) for s in world.runs}


async def test_an_idle_poll_is_empty_and_one_change_is_the_whole_delta(world: World) -> None:
    async with world.up.build() as source:
        first = await polled(source, None)
        idle = await polled(source, first.cursor)
        assert (idle.runs, idle.errors) == ([], [])

        changed = await world.up.change(world.active)
        delta = await polled(source, idle.cursor)
        assert [(r.id, r.status, r.status_raw) for r in delta.runs] == [
            (changed.id, changed.status, changed.raw)
        ]
        assert delta.errors == []
        assert (await polled(source, delta.cursor)).runs == []


async def test_row_changes_are_the_changes_as_rows(world: World) -> None:
    async with world.up.build() as source:
        runs = await source.changes(None)
        rows = await source.row_changes(None)
        assert {row.id: row for row in rows.rows} == {
            run.id: RunRow.from_run(run) for run in runs.runs
        }
        await world.up.change(world.active)
        await source.refresh()
        delta, row_delta = await source.changes(runs.cursor), await source.row_changes(rows.cursor)
    assert [RunRow.from_run(run) for run in delta.runs] == row_delta.rows
    assert [row.id for row in row_delta.rows] == [world.active.id]


async def test_a_malformed_record_is_an_error_row_and_the_rest_arrive(world: World) -> None:
    bad_id = await world.up.malform()
    async with world.up.build() as source:
        first = await source.changes(None)  # never an exception
        rows = await source.row_changes(None)
    assert {run.id for run in first.runs} == {s.id for s in world.runs}
    (error,) = first.errors
    assert error.message and error.id == bad_id
    by_id = {row.id: row for row in rows.rows}
    if source.capabilities.rows:
        # The store reads rows from columns, which a broken document leaves intact.
        assert bad_id in by_id
    else:
        broken = [row for row in rows.rows if row.problem and row.status is Status.UNKNOWN]
        assert len(broken) == 1 and (bad_id is None or broken[0].id == bad_id)
    assert {s.id for s in world.runs} <= set(by_id)


async def test_get_reads_one_run_afresh_by_id_or_unique_prefix(world: World) -> None:
    async with world.up.build() as source:
        await polled(source, None)
        changed = await world.up.change(world.active)
        run = await source.get(changed.id)  # asks upstream: no poll in between
        assert (run.id, run.status, run.status_raw) == (changed.id, changed.status, changed.raw)
        others = [s.id for s in world.runs if s.id != world.failed_id]
        prefix = unique_prefix(world.failed_id, others)
        failed = await source.get(prefix)
        assert (failed.id, failed.status) == (world.failed_id, Status.FAILED)
        with pytest.raises(RunNotFound):
            await source.get("no-such-run-0000")


async def test_list_runs_is_newest_first_and_filtered(world: World) -> None:
    newest = [s.id for s in reversed(world.runs)]
    async with world.up.build() as source:
        runs, errors = await source.list_runs(ListQuery())
        assert [run.id for run in runs] == newest and errors == []
        assert runs == sorted(runs, key=newest_first)
        failed, _ = await source.list_runs(ListQuery(statuses=("failed",)))
        assert [run.id for run in failed] == [world.failed_id]
        two, _ = await source.list_runs(ListQuery(limit=2))
        assert [run.id for run in two] == newest[:2]
        done, _ = await source.list_runs(ListQuery(statuses=("succeeded", "failed"), limit=1))
        assert [run.id for run in done] == newest[:1]


# -- acting ------------------------------------------------------------------------------


async def test_read_only_refuses_before_anything_goes_out(world: World) -> None:
    async with world.up.build(read_only=True) as source:
        await polled(source, None)
        asked, writes = world.up.requests(), world.up.writes()
        for action, run in ((Action.ABORT, world.active), (Action.ARCHIVE, world.finished)):
            with pytest.raises(TransitionRefused) as refused:
                if action is Action.ABORT:
                    await source.abort(run.id, by="contract")
                else:
                    await source.archive(run.id)
            assert str(refused.value) == source_refusal(action, run.id, source)
        assert (world.up.requests(), world.up.writes()) == (asked, writes)
    assert not await world.up.aborted(world.active)


async def test_abort_of_a_finished_run_is_refused_by_the_rules(world: World) -> None:
    async with world.up.build() as source:
        await polled(source, None)
        writes = world.up.writes()
        run = await source.get(world.finished.id)
        with pytest.raises(TransitionRefused) as refused:
            await source.abort(world.finished.id, by="contract")
        assert str(refused.value) == refusal(Action.ABORT, run, source)
        assert world.up.writes() == writes  # nothing was asked of the system


async def test_abort_of_an_active_run_is_carried_out(world: World) -> None:
    async with world.up.build() as source:
        first = await polled(source, None)
        before = world.up.writes()
        result = await source.abort(world.active.id, by="contract")
        assert result.run.id == world.active.id and result.message
        assert result.run.status is Status.ABORTED  # shown at once, not on the next poll
        assert await world.up.aborted(world.active)
        if (call := world.up.abort_call(world.active)) is not None:
            assert before is not None and world.up.writes() == [*before, call]
        delta = await polled(source, first.cursor)
        assert [(r.id, r.status) for r in delta.runs] == [(world.active.id, Status.ABORTED)]

        # Now it has finished: a second abort is the rules' refusal, with no call.
        writes = world.up.writes()
        with pytest.raises(TransitionRefused) as refused:
            await source.abort(world.active.id, by="contract")
        assert str(refused.value) == refusal(Action.ABORT, result.run, source)
        assert world.up.writes() == writes


async def test_archive_and_unarchive_round_trip(world: World) -> None:
    done = world.finished
    async with world.up.build() as source:
        first = await polled(source, None)
        active = await source.get(world.active.id)
        with pytest.raises(TransitionRefused) as refused:
            await source.archive(active.id)
        assert str(refused.value) == refusal(Action.ARCHIVE, active, source)

        before = world.up.writes()
        result = await source.archive(done.id)
        assert result.run.archived and result.run.status is done.status  # outcome kept
        calls = world.up.archive_calls(done)
        if before is not None and calls is not None:
            assert world.up.writes() == [*before, *calls]
        if calls == []:  # the system has no archive: the message says it is kept here
            assert "locally" in result.message
        delta = await polled(source, first.cursor)
        assert [(r.id, r.archived, r.status) for r in delta.runs] == [(done.id, True, done.status)]
        listed, _ = await source.list_runs(ListQuery())
        assert done.id not in {run.id for run in listed}
        everything, _ = await source.list_runs(ListQuery(include_archived=True))
        assert done.id in {run.id for run in everything}

    async with world.up.build() as source:  # the flag outlives the process
        runs = await world.seeded(source)
        assert runs[done.id].archived and runs[done.id].status is done.status
        assert not runs[world.failed_id].archived
        if not source.capabilities.supports(Action.UNARCHIVE):
            with pytest.raises(TransitionRefused) as refused:
                await source.unarchive(done.id)
            assert str(refused.value) == source_refusal(Action.UNARCHIVE, done.id, source)
            return
        back = await source.unarchive(done.id)
        assert not back.run.archived and back.run.status is done.status
        assert not (await source.get(done.id)).archived


# -- logs --------------------------------------------------------------------------------


async def test_logs_read_the_same_by_every_call(world: World) -> None:
    run = world.finished
    needle = await world.up.seed_log(run) if world.up.has_logs else "no such text"
    async with world.up.build() as source:
        await polled(source, None)
        asked = world.up.requests()
        lines = await source.log_lines(run.id, 0, 10_000)
        bounds = await source.log_bounds(run.id)
        if not world.up.has_logs:  # the system keeps none: the declared note says so
            assert [(line.seq, line.text) for line in lines] == [(1, source.capabilities.logs_note)]
            assert (bounds.first, bounds.last) == (1, 1)
            assert await source.log_tail(run.id, 5) == lines
            assert await source.first_error(run.id) is None
            assert await source.log_find(run.id, needle, start=0) is None
            assert world.up.requests() == asked  # and asks the system for nothing
            return
        seqs = [line.seq for line in lines]
        assert len(lines) >= 3 and seqs == sorted(set(seqs))
        assert (bounds.first, bounds.last, bounds.count) == (seqs[0], seqs[-1], len(seqs))
        assert await source.log_tail(run.id, 2) == lines[-2:]
        assert await source.log_lines(run.id, after=seqs[0], limit=1) == [lines[1]]
        errors = [line.seq for line in lines if line.level is LogLevel.ERROR]
        assert errors and await source.first_error(run.id) == errors[0]
        hits = [line.seq for line in lines if needle.casefold() in line.text.casefold()]
        assert hits
        assert await source.log_find(run.id, needle.upper(), start=0) == hits[0]
        last = await source.log_find(run.id, needle, start=seqs[-1] + 1, backwards=True)
        assert last == hits[-1]
        assert await source.log_find(run.id, "no such text at all", start=0) is None


# -- vendors: the same faults, the same answers ---------------------------------------------


async def test_a_429_with_retry_after_is_retried_for_reads_and_actions(vendor: World) -> None:
    up = vendor.up
    assert isinstance(up, VendorUpstream)
    throttled = up.standin.throttle()
    async with up.build() as source:
        first = await polled(source, None)
        assert {run.id for run in first.runs} == {s.id for s in vendor.runs}
        assert throttled.hits == 1
        assert source.api.calls == up.requests()  # type: ignore[attr-defined]
        # A 429 says the request was not processed, so even an abort is sent again.
        method, path = up.abort_call(vendor.active) or ("", "")
        again = up.standin.throttle(method=method, path=path)
        await source.abort(vendor.active.id, by="contract")
    assert again.hits == 1 and await up.aborted(vendor.active)


@pytest.mark.parametrize(
    "fault",
    [{"status": 500, "times": None}, {"garbage": "html"}, {"garbage": "truncated"}],
    ids=["500", "html", "truncated-json"],
)
async def test_a_failing_server_fails_the_poll_with_a_source_error_only(
    vendor: World, fault: dict[str, Any]
) -> None:
    up = vendor.up
    assert isinstance(up, VendorUpstream)
    async with up.build(timeout=2.0) as source:
        first = await polled(source, None)
        up.standin.fault(**fault)
        with pytest.raises(SourceError):
            await polled(source, first.cursor)
        up.standin.clear_faults()
        changed = await up.change(vendor.active)  # nothing is lost meanwhile
        delta = await polled(source, first.cursor)
    assert [(r.id, r.status) for r in delta.runs] == [(changed.id, changed.status)]


async def test_a_slow_server_times_out_as_a_source_error(vendor: World) -> None:
    up = vendor.up
    assert isinstance(up, VendorUpstream)
    async with up.build(timeout=0.2) as source:
        up.standin.slow(1.0, times=None)
        with pytest.raises(RemoteUnavailable, match=r"did not answer within 0\.2s"):
            await polled(source, None)


def unique_prefix(run_id: str, others: list[str]) -> str:
    """The shortest start of ``run_id`` no other id shares (the id itself if none)."""
    for end in range(1, len(run_id)):
        if not any(other.startswith(run_id[:end]) for other in others):
            return run_id[:end]
    return run_id
