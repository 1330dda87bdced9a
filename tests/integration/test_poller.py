"""The poller over several sources: keys, routing, per-source health, and the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import LoopbackServer, run_cli, wait_for_async
from jobwatch.config import Config, ConfigError, parse_config
from jobwatch.core import Run, Status
from jobwatch.core.errors import AmbiguousRunId, RunNotFound, TransitionRefused
from jobwatch.core.rules import Action
from jobwatch.sources.health import Backoff, SourceHealth
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.poller import Poller, RunKey
from jobwatch.sources.select import open_sources

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(run_id: str, status: Status = Status.SUCCEEDED, minutes: int = 0) -> Run:
    when = T0 + timedelta(minutes=minutes)
    return Run(id=run_id, source="local", job="j", status=status, created_at=when, started_at=when)


async def fill(path: Path, *runs: Run) -> None:
    async with SqliteStore(path) as store:
        await store.add_many(list(runs))


async def test_same_id_in_two_sources_and_routed_actions(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    await fill(a, run("run-same", Status.RUNNING), run("run-only-a"))
    await fill(b, run("run-same", Status.RUNNING))
    multi = Poller([SqliteStore(a, name="a"), SqliteStore(b, name="b")], mode="runs", keep=True)
    async with multi:
        report = await multi.poll_once()
        assert sorted(report.changed) == [
            RunKey("a", "run-only-a"),
            RunKey("a", "run-same"),
            RunKey("b", "run-same"),
        ]
        assert len(multi) == 3
        with pytest.raises(AmbiguousRunId, match="several sources"):
            await multi.act(Action.ABORT, "run-same", by="t")
        result = await multi.act(Action.ABORT, RunKey("b", "run-same"), by="t")
        assert result.run.status is Status.ABORTED
        assert multi.get_run(RunKey("b", "run-same")).status is Status.ABORTED  # type: ignore[union-attr]
        assert multi.get_run(RunKey("a", "run-same")).status is Status.RUNNING  # type: ignore[union-attr]
        assert multi.feed_for(multi.key_for("run-only-a")).name == "a"  # type: ignore[union-attr]
        with pytest.raises(TransitionRefused, match="it is still running"):
            await multi.act(Action.ARCHIVE, RunKey("a", "run-same"))
        with pytest.raises(RunNotFound):
            multi.key_for("run-nowhere")
        await multi.poll_once()
    async with SqliteStore(a) as store:  # the other source was not touched
        assert (await store.get("run-same")).status is Status.RUNNING


async def test_a_failing_source_is_stale_and_the_others_still_show(tmp_path: Path) -> None:
    good, later = tmp_path / "good.db", tmp_path / "later.db"
    await fill(good, run("run-g1"))
    multi = Poller(
        [SqliteStore(good, name="good"), SqliteStore(later, name="later", create=False)],
        mode="runs",
        keep=True,
        backoff_base=0.02,
        backoff_cap=0.1,
    )
    async with multi:  # opening "later" fails; that is not an error for the whole
        health = multi.health()
        assert health["later"].stale and "no store at" in (health["later"].error or "")
        report = await multi.poll_once()
        assert [k.id for k in report.changed] == ["run-g1"]
        assert health["good"].ok and not health["later"].ok
        assert "stale for" in health["later"].describe()

        await fill(later, run("run-l1"))  # it appears: recovered by itself
        await wait_for_async(lambda: _poll_until(multi, "later"))
        assert {k.id for k, _ in multi.entries()} == {"run-g1", "run-l1"}
        assert health["later"].ok and health["later"].stale_since is None


async def _poll_until(multi: Poller, name: str) -> bool:
    report = await multi.poll_once()
    return name in report.recovered


async def test_run_loop_stops_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    for i in range(30):  # one revision each, so pages can split them
        await fill(path, run(f"run-{i}"))
    multi = Poller([SqliteStore(path, name="r")], mode="runs", keep=True, page=10, refresh=0.05)
    seen: list[int] = []
    stop = asyncio.Event()

    def on_update(report: object) -> None:
        seen.append(len(multi))
        if multi.synced():
            stop.set()

    async with multi:
        await asyncio.wait_for(multi.run(stop=stop, after=on_update, max_polls=50), timeout=30)
    assert seen[:3] == [10, 20, 30] and multi.synced()  # a long first sync goes on at once


async def test_poller_over_http_and_local(
    loopback_server: LoopbackServer, store_path: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local.db"
    await fill(local, run("run-1", Status.RUNNING))
    await fill(store_path, run("run-1", Status.RUNNING))  # the server's store: same id
    remote = HttpSource(loopback_server.url, name="remote", token=loopback_server.token)
    multi = Poller([SqliteStore(local, name="local"), remote], mode="runs", keep=True)
    async with multi:
        await multi.poll_once()
        assert sorted(multi.entries()) == sorted(
            [
                (RunKey("local", "run-1"), multi.get_run(RunKey("local", "run-1"))),
                (RunKey("remote", "run-1"), multi.get_run(RunKey("remote", "run-1"))),
            ]
        )
        result = await multi.act(Action.ABORT, RunKey("remote", "run-1"), by="carol")
        assert "aborted" in result.message
        await multi.poll_once()
        assert multi.get_run(RunKey("remote", "run-1")).status is Status.ABORTED  # type: ignore[union-attr]
        assert multi.get_run(RunKey("local", "run-1")).status is Status.RUNNING  # type: ignore[union-attr]


def test_open_sources_precedence(tmp_path: Path) -> None:
    config = parse_config(
        f'default_sources = ["x"]\n[sources.x]\nkind = "sqlite"\npath = "{tmp_path / "x.db"}"\n'
    )
    assert [s.name for s in open_sources(config, [])] == ["x"]  # the config's defaults
    given = open_sources(config, [], store=tmp_path / "s.db")  # --store replaces them
    assert [s.name for s in given] == ["local"]
    both = open_sources(config, [str(tmp_path / "y.db"), "x", "x"], store=tmp_path / "s.db")
    assert [s.name for s in both] == ["local", str(tmp_path / "y.db"), "x"]
    url = open_sources(Config(), ["http://127.0.0.1:8787"])[0]
    assert isinstance(url, HttpSource) and url.name == "127.0.0.1:8787"
    default = open_sources(Config(), [])[0]
    assert isinstance(default, SqliteStore) and default.name == "local"
    with pytest.raises(ConfigError, match="unknown source 'zzz'"):
        open_sources(config, ["zzz"])
    twins = open_sources(Config(), ["a/runs.db", "b/runs.db"])
    assert len({s.name for s in twins}) == 2


def test_health_and_backoff_are_plain_data() -> None:
    health = SourceHealth()
    assert health.describe() == "not polled yet"
    health.mark_failed("boom", 4.0, now=T0)
    health.mark_failed("boom again", 8.0, now=T0 + timedelta(seconds=5))
    assert health.stale_since == T0 and health.error == "boom again" and health.failures == 2
    assert (
        health.describe(now=T0 + timedelta(seconds=6)) == "stale for 6s: boom again (retry in 7s)"
    )
    health.mark_ok(now=T0 + timedelta(seconds=20))
    assert health.ok and health.stale_since is None and health.last_ok is not None

    backoff = Backoff(base=1.0, cap=8.0)
    delays = [backoff.next() for _ in range(6)]
    assert all(0.5 <= d <= 1.0 for d in delays[:1]) and all(d <= 8.0 for d in delays)
    assert all(4.0 <= d <= 8.0 for d in delays[3:])
    assert backoff.next(at_least=100) == 8.0  # a Retry-After is capped too
    backoff.reset()
    assert backoff.peek() == 1.0
    full = Backoff(base=1.0, cap=8.0, jitter="full")
    assert all(0 <= full.next() <= 8.0 for _ in range(20))


def seed_two(a: Path, b: Path) -> None:
    asyncio.run(fill(a, run("run-aaa1", Status.FAILED, 1), run("run-dup", Status.RUNNING, 2)))
    asyncio.run(fill(b, run("run-bbb1", Status.SUCCEEDED, 3), run("run-dup", Status.RUNNING, 4)))


def test_cli_over_two_stores(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    seed_two(a, b)
    both = ("--source", str(a), "--source", str(b))
    listed = run_cli(tmp_path / "unused.db", "list", *both)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(r[0], r[2]) for r in rows] == [
        (str(b), "run-dup"),
        (str(b), "run-bbb1"),
        (str(a), "run-dup"),
        (str(a), "run-aaa1"),
    ]
    as_json = json.loads(run_cli(tmp_path / "unused.db", "list", "--json", *both).stdout)
    assert [r["origin"] for r in as_json] == [str(b), str(b), str(a), str(a)]
    faults = run_cli(tmp_path / "unused.db", "list", "--faults", *both)
    assert [line.split("\t")[2] for line in faults.stdout.splitlines()] == ["run-aaa1"]

    shown = run_cli(tmp_path / "unused.db", "show", "bbb1", *both)
    assert shown.returncode == 0 and "run-bbb1" in shown.stdout
    dup = run_cli(tmp_path / "unused.db", "abort", "run-dup", "--yes", *both)
    assert dup.returncode == 2 and "several sources" in dup.stderr  # like a usage error
    one = run_cli(tmp_path / "unused.db", "abort", "run-dup", "--yes", "--source", str(b))
    assert one.returncode == 0 and one.stdout.strip() == "aborted run-dup"

    # A missing store among several: a warning, the others still listed.
    partial = run_cli(tmp_path / "unused.db", "list", *both, "--source", str(tmp_path / "no.db"))
    assert partial.returncode == 0
    assert "no store at" in partial.stderr and len(partial.stdout.splitlines()) == 4


def test_cli_uses_the_configs_default_sources(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    seed_two(a, b)
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_sources = ["one"]\n[sources.one]\nkind = "sqlite"\npath = "{a}"\n'
        f'[sources.two]\nkind = "sqlite"\npath = "{b}"\n'
    )
    listed = run_cli(tmp_path / "unused.db", "--config", str(config), "list", "--json")
    assert sorted(r["id"] for r in json.loads(listed.stdout)) == ["run-aaa1", "run-dup"]
    named = run_cli(
        tmp_path / "unused.db", "list", "--json", "--config", str(config), "--source", "two"
    )
    assert sorted(r["id"] for r in json.loads(named.stdout)) == ["run-bbb1", "run-dup"]
    # --store alone still means exactly that store.
    store = run_cli(
        tmp_path / "unused.db", "list", "--json", "--config", str(config), "--store", str(b)
    )
    assert sorted(r["id"] for r in json.loads(store.stdout)) == ["run-bbb1", "run-dup"]
