"""The Matatika adapter against a stand-in of its jobs API on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import polled, run_cli
from jobwatch.config import ConfigError, parse_config
from jobwatch.core import RecordError, Run, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors.matatika import (
    STATUS_MAP,
    MatatikaConfig,
    MatatikaSource,
    parse_log_body,
)
from standins.matatika import (
    ARG_SECRET,
    LINK_TOKEN,
    PIPELINE,
    PROFILE_EMAIL,
    SECRET_PASSWORD,
    TOKEN,
    WORKSPACE,
    MatatikaStandIn,
    make_job,
)
from standins.server import AsgiServer, serving

ENV = "MATATIKA_TEST_TOKEN"

# vendor-apis.md §7.2, written out here rather than read from the adapter.
TABLE = {
    "QUEUED": Status.QUEUED,
    "RUNNING": Status.RUNNING,
    "COMPLETE": Status.SUCCEEDED,
    "ERROR": Status.FAILED,
    "STOPPED": Status.ABORTED,
    "UNKNOWN": Status.UNKNOWN,
}


def ts(minute: int) -> str:
    return f"2024-04-10T14:{minute:02}:10.93044"


@pytest.fixture
def state() -> MatatikaStandIn:
    s = MatatikaStandIn()
    s.add(make_job("j-complete", "COMPLETE", created=ts(1), end="2024-04-10T14:18:01.804"))
    s.add(make_job("j-error", "ERROR", created=ts(2), end="2024-04-10T14:19:00", exit_code=1))
    s.add(make_job("j-stopped", "STOPPED", created=ts(3), end="2024-04-10T14:20:00", exit_code=143))
    s.add(make_job("j-running", "RUNNING", created=ts(4)))
    s.add(make_job("j-queued", "QUEUED", created=ts(5), start=None))
    s.add(
        make_job(
            "j-seed-error",
            "ERROR",
            seed_era=True,
            exit_code=2,
            end="2021-06-07T10:00:00",
            errorMessage="Extractor failed: password=hunter2 for jane.doe@example.com",
        )
    )
    s.add(make_job("j-seed-unknown", "UNKNOWN", seed_era=True))
    return s


@pytest.fixture
def server(state: MatatikaStandIn) -> Iterator[AsgiServer]:
    with serving(state.app) as running:
        yield running


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)


def config(server: AsgiServer, tmp_path: Path, **extra: Any) -> MatatikaConfig:
    data: dict[str, Any] = {
        "kind": "matatika",
        "url": server.url,
        "workspace_id": WORKSPACE,
        "token_env": ENV,
        "flags_store": str(tmp_path / "flags.db"),
    }
    data.update(extra)
    return MatatikaConfig.model_validate(data)


def source(server: AsgiServer, tmp_path: Path, **extra: Any) -> MatatikaSource:
    read_only = extra.pop("read_only", False)
    return config(server, tmp_path, **extra).build("mtk", read_only=read_only)


def list_pages(state: MatatikaStandIn) -> list[str]:
    return [
        r.query.get("page", "") for r in state.calls("GET", "/jobs") if "/api/jobs/" not in r.path
    ]


# -- sync ------------------------------------------------------------------------------


async def test_first_sync_reads_newest_pages_up_to_max_runs(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    async with source(server, tmp_path, page_size=2, max_runs=5) as mtk:
        first = await polled(mtk, None)
    assert [r.id for r in first.runs] == [
        "j-queued",
        "j-running",
        "j-stopped",
        "j-error",
        "j-complete",
    ]
    assert first.errors == []
    lists = [r for r in state.requests if r.path == f"/api/workspaces/{WORKSPACE}/jobs"]
    assert [r.query for r in lists] == [
        {"page": str(n), "size": "2", "sort": "created,desc"} for n in range(3)
    ]
    assert "application/hal+json" in lists[0].headers["accept"]


async def test_incremental_poll_stops_at_known_finished_runs(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.jobs.clear()
    for n, job_id in enumerate("abcdef"):
        state.add(make_job(job_id, "RUNNING" if job_id == "c" else "COMPLETE", created=ts(n)))
    async with source(server, tmp_path, page_size=3) as mtk:
        first = await polled(mtk, None)
        assert sorted(r.id for r in first.runs) == ["a", "b", "c", "d", "e", "f"]
        assert list_pages(state) == ["0", "1"]

        # Nothing new: one page of known, finished runs, then the active run alone.
        state.requests.clear()
        idle = await polled(mtk, first.cursor)
        assert idle.runs == [] and idle.errors == []
        assert [(r.method, r.path, r.query) for r in state.requests] == [
            (
                "GET",
                f"/api/workspaces/{WORKSPACE}/jobs",
                {"page": "0", "size": "3", "sort": "created,desc"},
            ),
            ("GET", "/api/jobs/c", {}),
        ]

        # A new run on top, the active one finished further down.
        state.jobs["c"].update(status="COMPLETE", endTime="2024-04-10T15:00:00")
        state.add(make_job("g", "RUNNING", created=ts(30)))
        state.requests.clear()
        delta = await polled(mtk, idle.cursor)
        assert {(r.id, r.status) for r in delta.runs} == {
            ("g", Status.RUNNING),
            ("c", Status.SUCCEEDED),
        }
        assert list_pages(state) == ["0", "1"]
        assert state.calls("GET", "/api/jobs/") == []

        # A run deleted in Matatika stops being active instead of being asked about forever.
        del state.jobs["g"]
        state.requests.clear()
        gone = await polled(mtk, delta.cursor)
        assert [(r.id, r.status, r.reason.type if r.reason else None) for r in gone.runs] == [
            ("g", Status.UNKNOWN, "deleted")
        ]
        state.requests.clear()
        await polled(mtk, gone.cursor)
        assert state.calls("GET", "/api/jobs/") == []


async def test_finished_runs_are_mapped(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.add(make_job("j-odd", "PAUSED_FOREVER", created=ts(9)))
    async with source(server, tmp_path) as mtk:
        runs = {r.id: r for r in (await polled(mtk, None)).runs}

    done = runs["j-complete"]
    assert (done.status, done.status_raw, done.error, done.exit_code) == (
        Status.SUCCEEDED,
        "COMPLETE",
        None,
        None,
    )
    assert done.created_at == datetime(2024, 4, 10, 14, 1, 10, 930440, tzinfo=UTC)
    assert done.started_at == datetime(2024, 4, 10, 14, 16, 37, 404000, tzinfo=UTC)
    assert done.duration_ms == pytest.approx(84_400.0)
    assert (done.job, done.label, done.type, done.owner) == (
        PIPELINE,
        "SIT-Generated Pipeline [postgres]",
        "PIPELINE_RUN",
        "@sit+prod",
    )
    assert done.progress is None  # Matatika counts no items
    assert done.metadata and done.metadata["attempt"] == 0

    failed = runs["j-error"]
    assert failed.status is Status.FAILED and failed.exit_code == 1
    assert failed.error is not None and failed.error.code == "1"

    seed = runs["j-seed-error"]
    assert seed.status is Status.FAILED and seed.created_at is None
    assert seed.error is not None and seed.error.code == "2"
    assert seed.error.message is not None and seed.error.message.startswith("Extractor failed")
    assert "hunter2" not in seed.error.message and "jane.doe" not in seed.error.message
    assert seed.label == "tap-postgres target-postgres"  # seed-era taskName

    stopped = runs["j-stopped"]
    assert stopped.status is Status.ABORTED and stopped.exit_code == 143
    assert stopped.reason is not None and "timed out" in (stopped.reason.message or "")

    assert (runs["j-seed-unknown"].status, runs["j-seed-unknown"].status_raw) == (
        Status.UNKNOWN,
        "UNKNOWN",
    )
    assert (runs["j-odd"].status, runs["j-odd"].status_raw) == (Status.UNKNOWN, "PAUSED_FOREVER")
    assert runs["j-queued"].status is Status.QUEUED and runs["j-queued"].started_at is None


async def test_get_reads_one_job(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    async with source(server, tmp_path) as mtk:
        await polled(mtk, None)
        state.jobs["j-running"].update(status="ERROR", exitCode=3, endTime="2024-04-10T15:00:00")
        state.requests.clear()
        run = await mtk.get("j-running")
        assert (run.status, run.exit_code, run.error and run.error.code) == (Status.FAILED, 3, "3")
        assert [r.path for r in state.requests] == ["/api/jobs/j-running"]
        with pytest.raises(RunNotFound):
            await mtk.get("no-such-job")


# -- logs ------------------------------------------------------------------------------


async def test_text_logs_are_read_incrementally_and_redacted(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.logs["j-error"] = [
        "2024-04-10T14:16:37.404 | INFO | meltano | Running extract & load...",
        "2024-04-10T14:16:38.000 | INFO | tap-postgres | connecting password=hunter2",
        "",
        "2024-04-10T14:16:39.500 | ERROR | tap-postgres | connection refused",
    ]
    async with source(server, tmp_path) as mtk:
        await polled(mtk, None)
        lines = await mtk.log_tail("j-error", 10)
        assert [ln.seq for ln in lines] == [1, 2, 3, 4]
        assert lines[0].ts == datetime(2024, 4, 10, 14, 16, 37, 404000, tzinfo=UTC)
        assert [ln.level for ln in lines] == ["info", "info", "info", "error"]
        assert "hunter2" not in lines[1].text and "connecting password=" in lines[1].text
        assert await mtk.first_error("j-error") == 4
        assert state.calls("GET", "/logs")[0].query == {"sequence": "0"}

        run = await mtk.get("j-error")
        state.logs["j-error"].append("2024-04-10T14:16:40 | INFO | done")
        more = await mtk.fetch_logs(run, 4)
        assert more is not None and [(ln.seq, ln.text) for ln in more] == [
            (5, "2024-04-10T14:16:40 | INFO | done")
        ]
        assert state.calls("GET", "/logs")[-1].query == {"sequence": "4"}
        assert await mtk.fetch_logs(run, 5) == []  # 204: nothing new


async def test_ndjson_logs_and_empty_log(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.log_format = "ndjson"
    state.logs["j-complete"] = [
        {"timestamp": "2024-04-10T14:16:40.1", "level": "WARN", "message": "slow page"},
        {"message": "token=abc123def456 sent", "stream": "stderr"},
        "a bare string record",
    ]
    async with source(server, tmp_path) as mtk:
        await polled(mtk, None)
        lines = await mtk.log_lines("j-complete")
        assert [(ln.seq, ln.level, ln.stream) for ln in lines] == [
            (1, "warn", "stdout"),  # the one level for a warning, whatever the word
            (2, "info", "stderr"),
            (3, "info", "stdout"),
        ]
        assert lines[0].ts == datetime(2024, 4, 10, 14, 16, 40, 100000, tzinfo=UTC)
        assert "abc123def456" not in lines[1].text
        assert lines[2].text == "a bare string record"
        accept = state.calls("GET", "/logs")[0].headers["accept"]
        assert "application/x-ndjson" in accept and "text/plain" in accept

        assert await mtk.log_tail("j-queued", 5) == []  # 204 on a job with no log


def test_partial_last_line_waits_while_the_job_runs() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    body = "one\ntwo\nthr"
    running = parse_log_body("r", 7, body, "text/plain", complete=False, ts=now)
    assert [(ln.seq, ln.text) for ln in running] == [(8, "one"), (9, "two")]
    done = parse_log_body("r", 7, body, "text/plain", complete=True, ts=now)
    assert [ln.seq for ln in done] == [8, 9, 10] and done[-1].text == "thr"


# -- actions ---------------------------------------------------------------------------


async def test_abort_stops_a_running_job_and_surfaces_refusals(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    async with source(server, tmp_path) as mtk:
        await polled(mtk, None)
        result = await mtk.abort("j-running", by="tester")
        assert state.jobs["j-running"]["status"] == "STOPPED"
        assert result.run.status is Status.ABORTED
        assert result.run.reason is not None and "tester" in (result.run.reason.message or "")
        assert "Job stop accepted" in result.message
        assert [r.path for r in state.calls("PUT")] == ["/api/jobs/j-running/stopped"]

        # Matatika stops RUNNING jobs only: its own message comes back.
        with pytest.raises(TransitionRefused, match=r"is not running \(QUEUED\)"):
            await mtk.abort("j-queued", by="tester")
        assert state.jobs["j-queued"]["status"] == "QUEUED"

        # Finished runs are refused before any call goes out.
        with pytest.raises(TransitionRefused, match="already succeeded"):
            await mtk.abort("j-complete", by="tester")
        assert len(state.calls("PUT")) == 2


# -- auth, secrets, bad records, rate limits -------------------------------------------


async def test_token_is_sent_and_never_shown(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with source(server, tmp_path) as mtk:
        await polled(mtk, None)
        assert TOKEN not in repr(mtk) and TOKEN not in repr(mtk.api)
    assert state.requests and all(
        r.headers.get("authorization") == f"Bearer {TOKEN}" for r in state.requests
    )

    monkeypatch.setenv(ENV, "mtk-wrong-token-0000")
    async with source(server, tmp_path) as mtk:
        with pytest.raises(SourceError) as refused:
            await polled(mtk, None)
    assert "401" in str(refused.value) and "mtk-wrong-token-0000" not in str(refused.value)

    monkeypatch.delenv(ENV)
    with pytest.raises(SourceError, match=ENV):
        async with source(server, tmp_path) as mtk:
            await polled(mtk, None)


async def test_sensitive_fields_never_reach_the_run(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    async with source(server, tmp_path) as mtk:
        runs = (await polled(mtk, None)).runs
        runs.append(await mtk.get("j-complete"))
    dumps = [run.model_dump_json() for run in runs]
    for secret in (SECRET_PASSWORD, PROFILE_EMAIL, LINK_TOKEN, ARG_SECRET, "jane.doe", "hunter2"):
        assert not any(secret in dump for dump in dumps), secret
    done = next(r for r in runs if r.id == "j-complete")
    assert done.config is not None
    props = done.config["pipeline"]["properties"]
    assert props == {
        k: "***"
        for k in ("tap-postgres.host", "tap-postgres.password", "tap-postgres.filter_schemas")
    }
    assert done.metadata is not None and "email" not in done.metadata["profile"]
    assert done.metadata["links"]["logs"].endswith("/logs?***")
    seed = next(r for r in runs if r.id == "j-seed-error")
    assert seed.config is not None and seed.config["arguments"][-2:] == ["--password", "***"]


async def test_malformed_records_become_error_rows(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.add({"id": "bad-status", "status": 5, "created": ts(40)})
    state.add({"status": "RUNNING", "created": ts(41)})
    state.add({"id": "bad-time", "status": "COMPLETE", "created": "yesterday-ish"})
    async with source(server, tmp_path) as mtk:
        first = await polled(mtk, None)
    assert len(first.runs) == 7
    assert {e.id for e in first.errors} == {"bad-status", None, "bad-time"}
    assert all("unreadable Matatika job" in e.message for e in first.errors)


# -- list variants ---------------------------------------------------------------------


async def test_pipeline_jobs_and_the_singular_2021_path(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.add(make_job("other", "COMPLETE", created=ts(50), _embedded={"pipeline": {"id": "x"}}))
    async with source(server, tmp_path, pipeline_id=PIPELINE, workspace_id=None) as mtk:
        runs = (await polled(mtk, None)).runs
    assert "other" not in {r.id for r in runs} and len(runs) == 5  # the seed-era ones have none
    assert {r.path for r in state.calls("GET", "/jobs")} == {f"/api/pipelines/{PIPELINE}/jobs"}

    state.singular_pipeline_path = True
    state.requests.clear()
    async with source(server, tmp_path, pipeline_id=PIPELINE) as mtk:
        first = await polled(mtk, None)
        assert len(first.runs) == 5
        await polled(mtk, first.cursor)
    assert [r.path for r in state.requests if r.path.endswith("/jobs")] == [
        f"/api/pipelines/{PIPELINE}/jobs",
        f"/api/pipeline/{PIPELINE}/jobs",
        f"/api/pipeline/{PIPELINE}/jobs",
    ]


async def test_embedded_key_variants_and_empty_collection(
    state: MatatikaStandIn, server: AsgiServer, tmp_path: Path
) -> None:
    state.embedded_key = "jobList"
    async with source(server, tmp_path) as mtk:
        assert len((await polled(mtk, None)).runs) == 7
    state.jobs.clear()
    async with source(server, tmp_path) as mtk:
        empty = await polled(mtk, None)
    assert empty.runs == [] and empty.errors == []


async def test_unknown_workspace_is_a_source_error(server: AsgiServer, tmp_path: Path) -> None:
    async with source(server, tmp_path, workspace_id="nope") as mtk:
        with pytest.raises(SourceError, match="no workspace nope"):
            await polled(mtk, None)


# -- config ----------------------------------------------------------------------------


async def test_built_from_a_config_file(server: AsgiServer, tmp_path: Path) -> None:
    text = f"""
[sources.my-matatika]
kind = "matatika"
url = "{server.url}/api"
workspace_id = "{WORKSPACE}"
token_env = "{ENV}"
max_runs = 3
page_size = 2
flags_store = "{tmp_path / "flags.db"}"
"""
    parsed = parse_config(text)
    assert parsed.warnings == []
    mtk = parsed.sources["my-matatika"].build("my-matatika")
    assert isinstance(mtk, MatatikaSource)
    assert (mtk.max_runs, mtk.page_size, mtk.workspace_id) == (3, 2, WORKSPACE)
    async with mtk:
        assert len((await polled(mtk, None)).runs) == 3  # "/api" in the url is not doubled

    with pytest.raises(ConfigError, match="workspace_id"):
        parse_config(f'[sources.m]\nkind = "matatika"\nurl = "{server.url}"\ntoken_env = "X"\n')


# -- the mapper, fuzzed ----------------------------------------------------------------

OFFLINE = MatatikaSource("mtk", ApiClient("http://127.0.0.1:9", name="mtk"), workspace_id="w")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "id",
    "created",
    "type",
    "exitCode",
    "status",
    "startTime",
    "endTime",
    "_embedded",
    "_links",
]
KEYS += ["attempt", "maxAttempts", "taskName", "exitMessage", "arguments", "errorMessage"]
JOB_LIKE = st.fixed_dictionaries({}, optional={key: JSON for key in KEYS})
VALID = [
    make_job("v1", "COMPLETE", end="2024-04-10T14:18:01.804", exit_code=0),
    make_job("v2", "ERROR", seed_era=True, exit_code=1, errorMessage="boom"),
]


def _prune(value: Any, keep: st.DataObject) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v, keep) for k, v in value.items() if keep.draw(st.booleans())}
    return value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(JSON, JOB_LIKE))
def test_mapper_never_raises_on_arbitrary_json(raw: Any) -> None:
    item = OFFLINE.parse_safely(raw, "job")
    assert isinstance(item, Run | RecordError)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), which=st.sampled_from(VALID), cut=st.integers(min_value=0, max_value=2000))
def test_mapper_never_raises_on_truncated_payloads(
    data: st.DataObject, which: dict[str, Any], cut: int
) -> None:
    pruned = _prune(which, data)
    assert isinstance(OFFLINE.parse_safely(pruned, "job"), Run | RecordError)
    text = json.dumps(which)[:cut]
    assert isinstance(OFFLINE.parse_safely(text, "job"), RecordError)


@settings(max_examples=200, deadline=None)
@given(
    which=st.sampled_from(VALID),
    raw_status=st.sampled_from(sorted(TABLE)),
    exit_code=st.none() | st.integers(min_value=-255, max_value=255),
)
def test_documented_statuses_follow_the_table(
    which: dict[str, Any], raw_status: str, exit_code: int | None
) -> None:
    run = OFFLINE.parse({**which, "status": raw_status, "exitCode": exit_code})
    assert (run.status, run.status_raw, run.exit_code) == (TABLE[raw_status], raw_status, exit_code)
    assert set(STATUS_MAP) == set(TABLE)


@settings(max_examples=200, deadline=None)
@given(raw_status=st.text(max_size=20).filter(lambda s: s.strip().upper() not in TABLE))
def test_unknown_statuses_keep_their_raw_value(raw_status: str) -> None:
    run = OFFLINE.parse({**VALID[0], "status": raw_status})
    assert (run.status, run.status_raw) == (Status.UNKNOWN, raw_status)


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(max_size=300),
    after=st.integers(min_value=0, max_value=10_000),
    kind=st.sampled_from(["text/plain", "application/x-ndjson"]),
    complete=st.booleans(),
)
def test_log_bodies_never_raise_and_number_lines_in_order(
    body: str, after: int, kind: str, complete: bool
) -> None:
    lines = parse_log_body("r", after, body, kind, complete=complete, ts=datetime.now(UTC))
    seqs = [ln.seq for ln in lines]
    assert seqs == sorted(set(seqs)) and all(s > after for s in seqs)


# -- task details and deletions (issue 13, items 3 and 11) ---------------------------------


def failed_with_details() -> dict[str, Any]:
    return make_job(
        "j-details",
        "ERROR",
        seed_era=True,
        exit_code=1,
        end="2021-06-07T10:00:00",
        taskName="tap-postgres target-snowflake",
        exitMessage="meltano elt exited with 1",
        errorMessage="Extractor failed: FATAL password authentication failed for bob@corp.io",
        arguments=["elt", "tap-postgres", "target-snowflake", "--password", ARG_SECRET],
    )


async def test_task_details_are_asked_for_and_shown_redacted(
    server: AsgiServer, state: MatatikaStandIn, tmp_path: Path
) -> None:
    state.add(failed_with_details())
    async with source(server, tmp_path) as mtk:
        first = await polled(mtk, None)
        run = next(r for r in first.runs if r.id == "j-details")
        again = await mtk.get("j-details")
    assert all(r.headers.get("enable-task-details") == "true" for r in state.requests)
    for got in (run, again):
        assert got.error is not None and got.error.code == "1"
        assert got.error.message == (
            "Extractor failed: FATAL password authentication failed for ***@corp.io"
        )
        assert got.label == "tap-postgres target-snowflake"
        assert got.metadata is not None
        assert got.metadata["exitMessage"] == "meltano elt exited with 1"
        assert got.metadata["taskName"] == "tap-postgres target-snowflake"
        assert got.config is not None
        assert got.config["arguments"] == [
            "elt",
            "tap-postgres",
            "target-snowflake",
            "--password",
            "***",
        ]
        assert ARG_SECRET not in json.dumps(got.model_dump(mode="json"))


def test_jobwatch_show_prints_the_task_details_redacted(
    server: AsgiServer, state: MatatikaStandIn, tmp_path: Path
) -> None:
    state.add(failed_with_details())
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[sources.mtk]\nkind = "matatika"\nurl = "{server.url}"\n'
        f'workspace_id = "{WORKSPACE}"\ntoken_env = "{ENV}"\n'
        f'flags_store = "{tmp_path / "flags.db"}"\n'
    )
    result = run_cli(
        tmp_path / "store.db", "--config", str(cfg), "show", "j-details", "--source", "mtk"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "password authentication failed for ***@corp.io" in out
    assert "meltano elt exited with 1" in out and "tap-postgres target-snowflake" in out
    assert ARG_SECRET not in out + result.stderr and "bob@corp.io" not in out


async def test_a_deleted_finished_job_is_marked_deleted_once(tmp_path: Path) -> None:
    state = MatatikaStandIn()
    for n in range(12):
        state.add(make_job(f"j{n:02}", "COMPLETE", created=ts(n), end="2024-04-10T15:00:00"))
    with serving(state.app) as server:
        async with source(server, tmp_path, page_size=4) as mtk:
            first = await polled(mtk, None)
            state.requests.clear()
            quiet = await polled(mtk, first.cursor)
            assert quiet.runs == [] and len(state.requests) == 1  # one page, nothing else

            state.delete("j10")  # on the newest page
            state.delete("j02")  # far down: only totalElements tells
            state.requests.clear()
            marked = await polled(mtk, quiet.cursor)
            assert sorted((r.id, r.status, r.deleted) for r in marked.runs) == [
                ("j02", Status.SUCCEEDED, True),
                ("j10", Status.SUCCEEDED, True),
            ]
            assert state.seen("/api/jobs/j02") and state.seen("/api/jobs/j10")  # the 404s

            state.requests.clear()
            again = await polled(mtk, marked.cursor)
            assert again.runs == [] and len(state.requests) == 1
