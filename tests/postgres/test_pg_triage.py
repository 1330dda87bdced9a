"""The triage fill on the shared store: the same jobs and failure groups as the
SQLite store gives for the same history (tests/pg_support.py starts the server)."""

from __future__ import annotations

from jobwatch.core import Status
from jobwatch.sources.poller import Poller
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.triage.feed import fill
from jobwatch.triage.index import WINDOW_S, TriageIndex
from triage_support import NOW, TIMES, history


async def test_the_fill_reads_jobs_and_groups(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        await store.add_many(history())
        index = TriageIndex(clock=lambda: NOW)
        assert await fill(index, Poller([store], mode="rows").feeds[0], NOW - WINDOW_S)
        rows = {r.id: r for r in (await store.row_changes(None)).rows}
    jobs = {s.job: s for s in index.jobs(NOW)}
    assert jobs["backup"].trend == "3 failed in a row"
    assert jobs["ingest"].last_status is Status.RUNNING
    groups = index.failures(NOW - WINDOW_S, NOW)
    assert [(g.count, g.new) for g in groups] == [(3, False), (1, True)]
    assert "sk-live" not in groups[1].text
    assert index.slowness(rows["run-etl-slow"], NOW) == f"5.0{TIMES} this job's median"
