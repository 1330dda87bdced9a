"""All five vendor systems watched together in one table, next to local runs.

Salesforce, Letta, Intuned, Modzy and Matatika each run as a stand-in server on
127.0.0.1; one config file names them and a local store, and the monitor and
``jobwatch list`` are built from that file exactly as a user would start them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import run_cli, wait_for_async
from jobwatch.cli import build_parser, monitor_app, monitor_options
from jobwatch.core import Run, RunError, Status
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.screens.sources import sources_table
from jobwatch.tui.widgets.runs_table import RunsTable
from standins import intuned as intuned_standin
from standins import letta as letta_standin
from standins import matatika as matatika_standin
from standins import modzy as modzy_standin
from standins import salesforce as sf_standin
from standins.server import serving
from tui_support import loaded, plain, settle, stop_polling

NAMES = ("sf", "letta", "intuned", "modzy", "matatika", "local")
ENV = {
    "sf": "JW_ALL_SF_TOKEN",
    "letta": "JW_ALL_LETTA_TOKEN",
    "intuned": "JW_ALL_INTUNED_KEY",
    "modzy": "JW_ALL_MODZY_KEY",
    "matatika": "JW_ALL_MATATIKA_TOKEN",
}
TOKENS = {
    "sf": sf_standin.TOKEN,
    "letta": letta_standin.TOKEN,
    "intuned": intuned_standin.API_KEY,
    "modzy": modzy_standin.API_KEY,
    "matatika": matatika_standin.TOKEN,
}
INTUNED_JOB = "job-nightly"
NOW = datetime.now(UTC)


@dataclass
class World:
    """The stand-ins, the files, and what each source should show."""

    config: Path
    flags: Path
    local: Path
    sf: sf_standin.SalesforceStandIn
    letta: letta_standin.LettaStandIn
    intuned: intuned_standin.IntunedStandIn
    modzy: modzy_standin.ModzyStandIn
    matatika: matatika_standin.MatatikaStandIn
    expected: dict[str, dict[str, Status]] = field(default_factory=dict)
    """Source name → run id → the normalized status it must show."""
    running: dict[str, str] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)

    def writes(self) -> dict[str, list[tuple[str, str]]]:
        """Every request other than a read that each stand-in received."""
        seen = {
            "sf": self.sf.requests,
            "letta": self.letta.requests,
            "intuned": self.intuned.requests,
            "modzy": self.modzy.requests,
            "matatika": self.matatika.requests,
        }
        return {
            name: [(s.method, s.path) for s in requests if s.method != "GET"]
            for name, requests in seen.items()
        }


def seed_salesforce(world: World) -> None:
    state, want = world.sf, world.expected.setdefault("sf", {})
    at = sf_standin.sf_time
    base = sf_standin.BASE_TIME
    new = state.add_run("New")["Id"]
    running = state.add_run("InProgress", StartTime=at(base + timedelta(seconds=1)))["Id"]
    done = state.add_run(
        "Completed",
        StartTime=at(base + timedelta(seconds=2)),
        EndTime=at(base + timedelta(seconds=62)),
    )["Id"]
    failed = state.add_run(
        "Failed",
        StartTime=at(base + timedelta(seconds=3)),
        EndTime=at(base + timedelta(seconds=4)),
        ErrorCode="LLM_TIMEOUT",
        ErrorMessage="Model call timed out",
    )["Id"]
    want.update(
        {new: Status.NEW, running: Status.RUNNING, done: Status.SUCCEEDED, failed: Status.FAILED}
    )
    world.running["sf"], world.finished["sf"] = running, done


def seed_letta(world: World) -> None:
    s, want = world.letta, world.expected.setdefault("letta", {})
    done = s.add_run("completed")["id"]
    failed = s.add_run(
        "failed",
        stop_reason="llm_api_error",
        metadata={"run_type": "send_message_async", "error": "OpenAI answered 503: overloaded"},
    )["id"]
    running = s.add_run("running", completed_at=None, total_duration_ns=None)["id"]
    job = s.add_job("completed")["id"]
    want.update(
        {
            done: Status.SUCCEEDED,
            failed: Status.FAILED,
            running: Status.RUNNING,
            job: Status.SUCCEEDED,
        }
    )
    world.running["letta"], world.finished["letta"] = running, done


def seed_intuned(world: World) -> None:
    s, want = world.intuned, world.expected.setdefault("intuned", {})
    base = intuned_standin.BASE_TIME
    s.add(
        intuned_standin.job_run(
            "in-running", job_id=INTUNED_JOB, status="PENDING", start=base, minutes=None
        ),
        intuned_standin.job_run(
            "in-failed",
            job_id=INTUNED_JOB,
            status="FAILURE",
            start=base - timedelta(hours=1),
            successful=10,
            failed=90,
            error={"code": "browser-crash", "message": "the browser crashed"},
        ),
        intuned_standin.job_run("in-done", job_id=INTUNED_JOB, start=base - timedelta(hours=2)),
    )
    want.update(
        {"in-running": Status.RUNNING, "in-failed": Status.FAILED, "in-done": Status.SUCCEEDED}
    )
    world.running["intuned"], world.finished["intuned"] = "in-running", "in-done"


def seed_modzy(world: World) -> None:
    m, want = world.modzy, world.expected.setdefault("modzy", {})
    done = m.add_job("COMPLETED")["jobIdentifier"]
    failed = m.add_job("ERROR", completed=2, failed=1)["jobIdentifier"]
    running = m.add_job("IN_PROGRESS")["jobIdentifier"]
    want.update({done: Status.SUCCEEDED, failed: Status.FAILED, running: Status.RUNNING})
    world.running["modzy"], world.finished["modzy"] = running, done


def seed_matatika(world: World) -> None:
    s, want = world.matatika, world.expected.setdefault("matatika", {})
    make = matatika_standin.make_job
    s.add(make("mt-done", "COMPLETE", created="2024-04-10T14:01:10", end="2024-04-10T14:05:00"))
    s.add(
        make(
            "mt-failed",
            "ERROR",
            created="2024-04-10T14:02:10",
            end="2024-04-10T14:03:00",
            exit_code=1,
        )
    )
    s.add(make("mt-running", "RUNNING", created="2024-04-10T14:03:10"))
    want.update(
        {"mt-done": Status.SUCCEEDED, "mt-failed": Status.FAILED, "mt-running": Status.RUNNING}
    )
    world.running["matatika"], world.finished["matatika"] = "mt-running", "mt-done"


async def seed_local(world: World) -> None:
    runs = [
        Run(
            id="local-backup-1",
            source="local",
            job="backup",
            status=Status.SUCCEEDED,
            created_at=NOW - timedelta(minutes=30),
            started_at=NOW - timedelta(minutes=30),
            ended_at=NOW - timedelta(minutes=29),
            exit_code=0,
        ),
        Run(
            id="local-etl-2",
            source="local",
            job="etl",
            status=Status.FAILED,
            created_at=NOW - timedelta(minutes=20),
            started_at=NOW - timedelta(minutes=20),
            ended_at=NOW - timedelta(minutes=19),
            exit_code=2,
            error=RunError(code="exit-2", message="disk full"),
        ),
    ]
    async with SqliteStore(world.local) as store:
        for run in runs:
            await store.add(run)
    world.expected["local"] = {run.id: run.status for run in runs}


def write_config(world: World, urls: dict[str, str]) -> None:
    q = json.dumps  # a JSON string is a valid TOML basic string
    flags = q(str(world.flags))
    body = f"""\
default_sources = {json.dumps(list(NAMES))}
refresh = 3600

[sources.sf]
kind = "salesforce"
url = {q(urls["sf"])}
token_env = {q(ENV["sf"])}
flags_store = {flags}

[sources.letta]
kind = "letta"
url = {q(urls["letta"])}
token_env = {q(ENV["letta"])}
flags_store = {flags}

[sources.intuned]
kind = "intuned"
url = {q(urls["intuned"])}
workspace_id = {q(intuned_standin.WORKSPACE)}
project = {q(intuned_standin.PROJECT)}
jobs = [{q(INTUNED_JOB)}]
token_env = {q(ENV["intuned"])}
flags_store = {flags}

[sources.modzy]
kind = "modzy"
url = {q(urls["modzy"])}
token_env = {q(ENV["modzy"])}
flags_store = {flags}

[sources.matatika]
kind = "matatika"
url = {q(urls["matatika"])}
workspace_id = {q(matatika_standin.WORKSPACE)}
token_env = {q(ENV["matatika"])}
flags_store = {flags}

[sources.local]
kind = "sqlite"
path = {q(str(world.local))}
"""
    world.config.write_text(body, encoding="utf-8")
    os.chmod(world.config, 0o600)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """Five stand-ins on 127.0.0.1, a local store, and a config naming all six."""
    w = World(
        config=tmp_path / "config.toml",
        flags=tmp_path / "flags.db",
        local=tmp_path / "local.db",
        sf=sf_standin.SalesforceStandIn(),
        letta=letta_standin.LettaStandIn(),
        intuned=intuned_standin.IntunedStandIn(jobs={INTUNED_JOB: []}),
        modzy=modzy_standin.ModzyStandIn(),
        matatika=matatika_standin.MatatikaStandIn(),
    )
    seed_salesforce(w)
    seed_letta(w)
    seed_intuned(w)
    seed_modzy(w)
    seed_matatika(w)
    await seed_local(w)
    for name, var in ENV.items():
        monkeypatch.setenv(var, TOKENS[name])
    with contextlib.ExitStack() as stack:
        apps = {
            "sf": w.sf.app,
            "letta": w.letta.app,
            "intuned": w.intuned.app,
            "modzy": w.modzy.app,
            "matatika": w.matatika.app,
        }
        urls = {name: stack.enter_context(serving(app)).url for name, app in apps.items()}
        write_config(w, urls)
        yield w


# -- the monitor ----------------------------------------------------------------------


def status_line(app: JobwatchApp) -> str:
    return plain(app.main.query_one("#status").content, width=600)


async def poll_until(app: JobwatchApp, check: Callable[[], bool], timeout: float = 60) -> None:
    """The app's own poll, again, until ``check`` holds (bounded; no sleeping)."""

    async def polled() -> bool:
        await app.poll_once()
        return check()

    await wait_for_async(polled, timeout=timeout, every=0.02)


async def row_text(app: JobwatchApp, pilot: object, key: tuple[str, str]) -> str:
    """The table line drawn for ``key`` (moving the cursor there scrolls it in)."""
    table = app.main.query_one(RunsTable)
    assert table.select_key(key), f"{key} is not shown in the table"
    await loaded(app, pilot)
    index = app.runs.index_of(key)
    assert index is not None
    y = index - int(table.scroll_offset.y) + 1  # line 0 is the header
    assert 0 < y < table.size.height, f"{key} is not on screen"
    return table.render_line(y).text


async def test_five_vendors_and_local_runs_in_one_monitor(world: World) -> None:
    options = monitor_options(build_parser().parse_args(["--config", str(world.config)]))
    assert [s.name for s in options.sources] == list(NAMES)
    assert options.warnings == []  # chmod 600 and tokens from the environment
    app = monitor_app(options)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await app.synced.wait()
            wanted = {(src, rid) for src, runs in world.expected.items() for rid in runs}
            await poll_until(
                app,
                lambda: (
                    all(f.health.ok and f.synced for f in app.feeds)
                    and wanted <= set(app.runs.rows)
                ),
            )
            # Every source's runs, and only theirs, keyed by the configured name.
            assert {key[0] for key in app.runs.rows} == set(NAMES)
            assert set(app.runs.rows) == wanted
            for source, runs in world.expected.items():
                for run_id, status in runs.items():
                    row = app.runs.rows[(source, run_id)]
                    assert row.status is status, (source, run_id, row.status)
                    assert not row.error and not row.archived
            # ...and drawn: each source's failed run shows as failed under its name.
            for source, runs in world.expected.items():
                failed = [rid for rid, st in runs.items() if st is Status.FAILED]
                assert failed, f"{source} has no failed run to show"
                text = await row_text(app, pilot, (source, failed[0]))
                assert source in text and "failed" in text, text
            sources = plain(sources_table(app.feeds, app.poller.clock()), width=600)
            assert all(h.ok for h in app.poller.health().values()), sources
            assert all(name in sources for name in NAMES)
            assert f"{len(NAMES)} sources ok" in status_line(app)

            # Abort a running Modzy job: the DELETE reaches Modzy, and nothing else.
            # No poll runs from here on: what the rows show is the actions' results.
            await stop_polling(app, pilot)
            before = world.writes()
            modzy_key = ("modzy", world.running["modzy"])
            await row_text(app, pilot, modzy_key)
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(app, pilot, "actions")
            job_id = world.running["modzy"]
            assert world.modzy.jobs[job_id]["status"] == "CANCELED"
            after = world.writes()
            assert after["modzy"][len(before["modzy"]) :] == [("DELETE", f"/api/jobs/{job_id}")]
            for name in ("sf", "letta", "intuned", "matatika"):
                assert after[name] == before[name], name
            # The result is on screen at once: Modzy is polled every 15 s, and no
            # poll has run since the action (the row would show "running").
            assert app.runs.rows[modzy_key].status is Status.ABORTED
            assert "aborted" in await row_text(app, pilot, modzy_key)
            for name in ("sf", "letta", "intuned", "matatika"):  # the others still run
                assert app.runs.rows[(name, world.running[name])].status is Status.RUNNING

            # Archive a finished Matatika job: a local flag, hidden from the table.
            done_key = ("matatika", world.finished["matatika"])
            before = world.writes()
            await row_text(app, pilot, done_key)
            await pilot.press("A")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(app, pilot, "actions")
            assert app.runs.rows[done_key].archived  # at once, not at the next poll
            assert app.runs.index_of(done_key) is None  # archived runs are hidden
            assert not app.main.query_one(RunsTable).select_key(done_key)
            async with SqliteStore(world.flags, create=False) as flags:
                assert await flags.local_archived("matatika") == {done_key[1]}
                for name in ("sf", "letta", "intuned", "modzy"):
                    assert await flags.local_archived(name) == set()
            # Matatika has no archive: nothing was sent (its DELETE would destroy the job).
            assert world.writes() == before
            assert done_key[1] in world.matatika.jobs
            assert world.matatika.jobs[done_key[1]]["status"] == "COMPLETE"

            shown = [n.message for n in app._notifications] + [status_line(app), sources]
            for token in TOKENS.values():
                assert not any(token in text for text in shown)
    finally:
        for source in options.sources:
            await source.close()


# -- the command line -------------------------------------------------------------------


def test_list_json_shows_every_source_and_no_token(world: World) -> None:
    result = run_cli(
        world.local, "list", "--json", "--limit", "0", "--config", str(world.config), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr  # every source opened and answered
    items = json.loads(result.stdout)
    got: dict[str, dict[str, str]] = {}
    for item in items:
        got.setdefault(item["origin"], {})[item["id"]] = item["status"]
    assert set(got) == set(NAMES)
    for source, runs in world.expected.items():
        assert got[source] == {rid: st.value for rid, st in runs.items()}, source
    for name, token in TOKENS.items():
        assert token not in result.stdout, name
        assert token not in result.stderr, name
