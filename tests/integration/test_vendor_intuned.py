"""The Intuned adapter against a stand-in of its API served on 127.0.0.1."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import polled, run_cli
from jobwatch.config import ConfigError, parse_config
from jobwatch.core import RecordError, Run, Status
from jobwatch.core.errors import AmbiguousRunId, RunNotFound, SourceError, TransitionRefused
from jobwatch.core.redact import mask_url
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors.intuned import (
    DEFAULT_URL,
    STATUS_MAP,
    IntunedConfig,
    IntunedSource,
    map_run,
)
from standins.intuned import (
    API_KEY,
    BASE_TIME,
    PAUSED_BY,
    PROJECT,
    S3_SECRET,
    SECRETS,
    WORKSPACE,
    IntunedStandIn,
    huge_error,
    job_run,
    malformed,
    paused_run,
)
from standins.server import AsgiServer, serving

JOB_A, JOB_B = "job-nightly", "job-hourly"


def at(minutes: int) -> datetime:
    return BASE_TIME + timedelta(minutes=minutes)


def source_for(
    server: AsgiServer,
    tmp_path: Path,
    *,
    jobs: tuple[str, ...] = (JOB_A, JOB_B),
    key: str = API_KEY,
    **config: Any,
) -> IntunedSource:
    """The adapter built the way a config file builds it."""
    cfg = IntunedConfig(
        kind="intuned",
        url=server.url,
        workspace_id=WORKSPACE,
        project=PROJECT,
        jobs=list(jobs),
        token=key,
        flags_store=tmp_path / "flags.db",
        **config,
    )
    source = cfg.build("intuned-test")
    assert isinstance(source, IntunedSource)
    return source


@pytest.fixture
def standin() -> IntunedStandIn:
    """Job A: 25 runs, newest first a-00 (PENDING) … a-24; a-15 is PAUSED.
    Job B: 3 finished runs."""
    state = IntunedStandIn()
    for i in range(25):
        status = {0: "PENDING", 15: "PAUSED"}.get(i, "SUCCESS")
        minutes = None if status in ("PENDING", "PAUSED") else 30
        state.add(
            job_run(f"a-{i:02}", job_id=JOB_A, status=status, start=at(-60 * i), minutes=minutes)
        )
    for i in range(3):
        state.add(job_run(f"b-{i:02}", job_id=JOB_B, start=at(-90 * i - 7), sink="s3"))
    return state


@pytest.fixture
def server(standin: IntunedStandIn) -> Iterator[AsgiServer]:
    with serving(standin.app) as running:
        yield running


def list_calls(standin: IntunedStandIn, job: str) -> list[dict[str, str]]:
    path = f"/api/v1/workspace/{WORKSPACE}/projects/{PROJECT}/jobs/{job}/runs"
    return [seen.query for seen in standin.requests if seen.path == path]


# -- polling ---------------------------------------------------------------------------


async def test_first_sync_reads_every_page_newest_first(standin, server, tmp_path):
    async with source_for(server, tmp_path, page_size=10) as source:
        first = await polled(source, None)
    assert len(first.runs) == 28 and first.errors == []
    pages = list_calls(standin, JOB_A)
    assert [q["pageNumber"] for q in pages] == ["0", "1", "2"]  # stops at the short page
    assert {q["pageSize"] for q in pages} == {"10"}
    assert {q["sortBy"] for q in pages} == {"start_time,desc"}
    assert [q["pageNumber"] for q in list_calls(standin, JOB_B)] == ["0"]
    runs = {run.id: run for run in first.runs}
    assert runs["a-00"].status is Status.RUNNING and runs["a-00"].status_raw == "PENDING"
    assert runs["a-15"].status is Status.PAUSED
    assert runs["b-02"].job == JOB_B and runs["b-02"].source == "intuned-test"


async def test_first_sync_is_bounded_by_max_runs(standin, server, tmp_path):
    async with source_for(server, tmp_path, page_size=5, max_runs=8) as source:
        first = await polled(source, None)
    assert len(first.runs) == 8
    # The 8 most recently started across both jobs, not 8 per job.
    expected = sorted(
        (r for records in standin.jobs.values() for r in records),
        key=lambda r: r["start_time"],
        reverse=True,
    )[:8]
    assert {run.id for run in first.runs} == {r["id"] for r in expected}
    assert [q["pageNumber"] for q in list_calls(standin, JOB_A)] == ["0", "1"]
    assert {q["pageSize"] for q in list_calls(standin, JOB_A)} == {"5"}


async def test_incremental_poll_reads_only_the_newest_page_and_active_runs(
    standin, server, tmp_path
):
    async with source_for(server, tmp_path, page_size=10) as source:
        first = await polled(source, None)
        idle = await polled(source, first.cursor)
        assert idle.runs == [] and idle.errors == []

        before = len(standin.requests)
        standin.add(job_run("a-new", job_id=JOB_A, status="PENDING", start=at(30), minutes=None))
        standin.update("a-15", status="SUCCESS", end_time="2023-12-31T09:30:00Z")
        delta = await polled(source, idle.cursor)

    assert sorted((run.id, run.status) for run in delta.runs) == [
        ("a-15", Status.SUCCEEDED),
        ("a-new", Status.RUNNING),
    ]
    new = standin.requests[before:]
    lists = [seen.query["pageNumber"] for seen in new if seen.path.endswith("/runs")]
    assert lists == ["0", "0"]  # one page per job: a-01 is known and finished
    details = [seen.path.rsplit("/", 1)[1] for seen in new if not seen.path.endswith("/runs")]
    assert details == ["a-15"]  # the active run beyond page 0, asked for directly


async def test_an_unknown_job_is_an_error_row_and_other_jobs_still_arrive(
    standin, server, tmp_path
):
    async with source_for(server, tmp_path, jobs=("job-gone", JOB_B)) as source:
        first = await polled(source, None)
    assert sorted(run.id for run in first.runs) == ["b-00", "b-01", "b-02"]
    assert len(first.errors) == 1 and "job-gone" in first.errors[0].message


async def test_a_malformed_record_is_an_error_row_and_the_rest_arrive(standin, server, tmp_path):
    broken = job_run("a-broken", job_id=JOB_A, start=at(10))
    del broken["id"]
    standin.jobs[JOB_A].append(broken)
    standin.jobs[JOB_B].append("not a record")
    async with source_for(server, tmp_path) as source:
        first = await polled(source, None)
    assert len(first.runs) == 28
    assert len(first.errors) == 2
    assert all("unreadable Intuned job run" in err.message for err in first.errors)
    assert any("no id" in err.message for err in first.errors)


# -- mapping -----------------------------------------------------------------------------


async def test_finished_runs_map_error_reason_progress(standin, server, tmp_path):
    error = {
        "message": "An error occurred while executing the job",
        "code": "internal-server-error",
        "category": "infrastructure",
        "correlationId": "123e4567-e89b-12d3-a456-426614174000",
        "retirable": True,
        "doc_url": "https://docs.intunedhq.com/docs/support/errors",
    }
    reason = {
        "type": "auth-session-validate-dependency-failed",
        "message": "Auth session validation failed",
        "doc_url": "https://docs.intunedhq.com/docs/support/reasons",
    }
    standin.add(
        job_run(
            "c-partial", job_id=JOB_B, status="COMPLETED", successful=90, failed=5, start=at(5)
        ),
        job_run("c-failed", job_id=JOB_B, status="FAILURE", error=error, start=at(4)),
        job_run("c-canceled", job_id=JOB_B, status="CANCELED", reason=reason, start=at(3)),
    )
    async with source_for(server, tmp_path, jobs=(JOB_B,)) as source:
        runs = {run.id: run for run in (await polled(source, None)).runs}

    partial = runs["c-partial"]
    assert partial.status is Status.SUCCEEDED and partial.partial
    assert (partial.progress.total, partial.progress.succeeded) == (100, 90)
    assert (partial.progress.failed, partial.progress.pending) == (5, 5)
    assert partial.started_at == at(5) and partial.ended_at == at(35)
    assert partial.duration_ms == 30 * 60 * 1000
    assert partial.type == "SCHEDULED" and partial.job == JOB_B

    failed = runs["c-failed"]
    assert failed.status is Status.FAILED and not failed.partial
    assert failed.error.code == "internal-server-error"
    assert failed.error.category == "infrastructure"
    assert failed.error.correlation_id == error["correlationId"]
    assert failed.error.retriable is True
    assert failed.error.doc_url == error["doc_url"]

    canceled = runs["c-canceled"]
    assert canceled.status is Status.ABORTED
    assert canceled.reason.type == "auth-session-validate-dependency-failed"
    assert canceled.reason.doc_url == reason["doc_url"]


def test_camel_case_and_error_code_page_spellings_map_the_same():
    """The SDK's camelCase (the seed) and the error-codes page's spellings."""
    raw = {
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "startTime": "2024-01-01T00:00:00Z",
        "endTime": "2024-01-01T00:30:00Z",
        "workspaceId": WORKSPACE,
        "jobId": "job-123e4567-e89b-12d3",
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z",
        "type": "SCHEDULED",
        "status": "SUCCESS",
        "payloads": 100,
        "successfulRuns": 95,
        "failedRuns": 5,
        "error": {"message": "m", "code": "c", "correlation_id": "corr-1", "retriable": False},
        "reason": {"type": "another-job-run-active", "message": "x", "docUrl": "https://d/r"},
        "jobConfigurationSnapshot": {
            "configuration": {"retry": {}},
            "sink": {
                "type": "s3",
                "bucket": "b",
                "accessKeyId": "AKIAIOSFODNN7EXSSPLE",
                "secretAccessKey": S3_SECRET,
                "region": "us-west-2",
            },
            "authSession": {"id": "auth-session-123"},
        },
    }
    run = map_run(raw, "src")
    assert run.job == "job-123e4567-e89b-12d3" and run.status is Status.SUCCEEDED
    assert run.partial and run.progress.pending == 0
    assert run.error.correlation_id == "corr-1" and run.error.retriable is False
    assert run.reason.doc_url == "https://d/r"
    assert run.metadata["workspace_id"] == WORKSPACE
    dumped = run.model_dump_json()
    assert "AKIAIOSFODNN7EXSSPLE" not in dumped and S3_SECRET not in dumped
    assert run.config["sink"]["bucket"] == "b"


def test_pending_never_negative_and_unknown_status_kept():
    raw = job_run("x", status="WEIRD_NEW_STATE", payloads=3, successful=5, failed=1)
    run = map_run(raw, "src")
    assert run.status is Status.UNKNOWN and run.status_raw == "WEIRD_NEW_STATE"
    assert run.progress.pending == 0


def test_mask_url_strips_userinfo_and_query_with_or_without_scheme():
    assert mask_url("http://u:p@proxy:8080/x?token=1") == "http://***@proxy:8080/x?***"
    assert mask_url("u:p@proxy:8080") == "***@proxy:8080"
    assert mask_url("https://hooks.example.com/a") == "https://hooks.example.com/a"


# -- detail, logs ----------------------------------------------------------------------


async def test_get_reads_the_detail_with_results_minus_the_signed_url(standin, server, tmp_path):
    async with source_for(server, tmp_path, page_size=10) as source:
        first = await polled(source, None)
        run = await source.get("b-01")
        assert run.metadata["results"]["format"] == "json"
        assert run.metadata["results"]["size"] == 2048
        assert run.metadata["results"]["signed_url"] == "***"
        assert standin.paths()[-1].endswith(f"/jobs/{JOB_B}/runs/b-01")

        # A later list poll (no results in list items) keeps what the detail said,
        # so the run does not flip back and forth between polls.
        shown = await polled(source, first.cursor)
        assert [r.id for r in shown.runs] == ["b-01"]
        before = len(standin.requests)
        again = await polled(source, shown.cursor)
        assert len(standin.requests) > before  # it really polled the list again
        assert again.runs == []
        assert "results" in source.cached("b-01").metadata

        # A run the list never showed is found by asking each watched job.
        standin.add(job_run("b-late", job_id=JOB_B, start=at(-10_000)))
        late = await source.get("b-late")
        assert late.job == JOB_B

        with pytest.raises(RunNotFound):
            await source.get("nope")


async def test_logs_show_the_plain_note(standin, server, tmp_path):
    async with source_for(server, tmp_path) as source:
        await polled(source, None)
        lines = await source.log_tail("b-00", 10)
    assert len(lines) == 1 and lines[0].seq == 1
    assert lines[0].text == IntunedSource.CAPABILITIES.logs_note
    assert "no API for job-run logs" in lines[0].text and "dashboard" in lines[0].text
    assert not any("log" in seen.path for seen in standin.requests)


# -- actions ---------------------------------------------------------------------------


async def test_abort_terminates_through_the_api(standin, server, tmp_path):
    async with source_for(server, tmp_path) as source:
        await polled(source, None)
        result = await source.abort("a-00", by="tester")
    assert result.message == "JobRun terminated successfully."
    assert result.run.status is Status.ABORTED and result.run.status_raw == "TERMINATED"
    assert result.run.reason.type == "terminated"
    assert standin.find(JOB_A, "a-00")["status"] == "TERMINATED"
    assert standin.paths("POST") == [
        f"/api/v1/workspace/{WORKSPACE}/projects/{PROJECT}/jobs/{JOB_A}/runs/a-00/terminate"
    ]


async def test_intuned_refusal_is_surfaced_with_its_message(standin, server, tmp_path):
    standin.fault(
        409,
        "Job run is being paused; try again when it is paused",
        method="POST",
        path="/terminate",
    )
    async with source_for(server, tmp_path) as source:
        await polled(source, None)
        with pytest.raises(TransitionRefused, match="being paused; try again"):
            await source.abort("a-15", by="tester")
        assert standin.find(JOB_A, "a-15")["status"] == "PAUSED"

        # A finished run is refused by jobwatch's rules before any POST.
        posts = len(standin.paths("POST"))
        with pytest.raises(TransitionRefused, match="already"):
            await source.abort("a-01", by="tester")
        assert len(standin.paths("POST")) == posts


# -- auth, secrets, config ------------------------------------------------------------


async def test_api_key_header_sent_and_never_shown(standin, server, tmp_path):
    async with source_for(server, tmp_path) as source:
        await polled(source, None)
        assert repr(source).count(API_KEY) == 0
    assert standin.requests and all(s.headers["x-api-key"] == API_KEY for s in standin.requests)

    wrong = "in-wrong-key-000111222"
    async with source_for(server, tmp_path, key=wrong) as source:
        with pytest.raises(SourceError) as caught:
            await polled(source, None)
    assert "401" in str(caught.value) and wrong not in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_secrets_never_reach_a_run(standin, server, tmp_path):
    standin.add(job_run("p-1", job_id=JOB_B, sink="webhook", proxy=True, start=at(1)))
    async with source_for(server, tmp_path) as source:
        await polled(source, None)
        detailed = [await source.get(i) for i in ("p-1", "b-00", "a-01")]
    for run in detailed:
        dumped = run.model_dump_json()
        for secret in SECRETS:
            assert secret not in dumped, (run.id, secret)
    webhook, s3 = detailed[0], detailed[1]
    assert webhook.config["sink"]["headers"] == {"Authorization": "***"}
    assert webhook.config["proxy"]["url"] == "http://***@proxy.example.com:8080"
    assert webhook.callback.url == "https://hooks.example.com/intuned?***"
    assert s3.config["sink"]["region"] == "us-west-2"
    assert s3.config["sink"]["secretAccessKey"] == "***"
    assert s3.callback.url == "s3://my-s3-bucket/runs/"


async def test_build_from_a_config_file(standin, server, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_INTUNED_KEY", API_KEY)
    config = parse_config(
        f"""
        [sources.my-intuned]
        kind = "intuned"
        url = "{server.url}"
        workspace_id = "{WORKSPACE}"
        project = "{PROJECT}"
        jobs = ["{JOB_A}", "{JOB_B}"]
        token_env = "MY_INTUNED_KEY"
        flags_store = "{tmp_path / "flags.db"}"
        page_size = 20
        """
    )
    assert config.warnings == []
    source = config.sources["my-intuned"].build("my-intuned")
    assert isinstance(source, IntunedSource) and API_KEY not in repr(config)
    async with source:
        first = await polled(source, None)
    assert len(first.runs) == 28
    assert {seen.headers["x-api-key"] for seen in standin.requests} == {API_KEY}
    assert {q["pageSize"] for q in list_calls(standin, JOB_A)} == {"20"}


def test_config_defaults_and_refusals():
    config = parse_config(
        '[sources.i]\nkind = "intuned"\nworkspace_id = "w"\nproject = "p"\njobs = "j"\n'
    )
    src = config.sources["i"]
    assert isinstance(src, IntunedConfig)
    assert (src.url, src.token_env, src.jobs) == (DEFAULT_URL, "INTUNED_API_KEY", ["j"])
    assert src.base_path() == "/w/projects/p"
    with pytest.raises(ConfigError, match="jobs"):
        parse_config(
            '[sources.i]\nkind = "intuned"\nworkspace_id = "w"\nproject = "p"\njobs = []\n'
        )
    with pytest.raises(ConfigError, match="workspace_id"):
        parse_config('[sources.i]\nkind = "intuned"\nproject = "p"\njobs = ["j"]\n')


# -- the official client agrees with the stand-in ---------------------------------------


async def test_official_client_accepts_the_standin(standin, server, tmp_path):
    from intuned_client import models
    from intuned_client.async_client import AsyncIntunedClient
    from intuned_client.transport import parse_payload

    error = {
        "message": "boom",
        "code": "insufficient-resource-credits",
        "category": "billing",
        "correlationId": "corr-9",
        "retirable": False,
        "doc_url": "https://d/e",
    }
    reason = {"type": "user-request", "message": "paused by user"}
    standin.add(
        job_run("o-1", job_id=JOB_B, status="FAILURE", error=error, start=at(2), proxy=True),
        job_run("o-2", job_id=JOB_B, status="PAUSED", reason=reason, start=at(3), minutes=None),
    )
    client = AsyncIntunedClient(
        api_key=API_KEY, workspace_id=WORKSPACE, base_url=server.url + "/api/v1/workspace"
    )
    async with client:
        runs = client.projects.jobs.runs
        listed = await runs.list(
            project_name=PROJECT,
            job_id=JOB_B,
            page_size="10",
            page_number="0",
            sort_by="start_time,desc",
        )
        assert listed.total_count == 5 and [r.id for r in listed.job_runs][:2] == ["o-2", "o-1"]
        detail = await runs.get(project_name=PROJECT, job_id=JOB_B, job_run_id="o-1")
        assert detail.job_run.error.code == "insufficient-resource-credits"
        assert detail.results is not None and detail.results.format == "json"
        said = await runs.terminate(project_name=PROJECT, job_id=JOB_B, job_run_id="o-2")
        assert said.message == "JobRun terminated successfully."
    for records in standin.jobs.values():
        for record in records:
            parse_payload(models.JobsRunsListResponseJobRunsItem, record)


# -- properties of the mapper ---------------------------------------------------------

PARSER = IntunedSource("prop", ApiClient("http://127.0.0.1:9", name="prop"), jobs=["j"])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = sorted(
    job_run(
        "v",
        error={"message": "m", "code": "c", "category": "x"},
        reason={"type": "t", "message": "m"},
        proxy=True,
    )
)
VALID = job_run(
    "v",
    error={"message": "m", "code": "c", "category": "x"},
    reason={"type": "t", "message": "m"},
    proxy=True,
    sink="s3",
)


def _truncate(value: Any, depth: int, data: st.DataObject) -> Any:
    """Drop some keys at every level, replace some values with junk."""
    if isinstance(value, dict) and depth < 4:
        keep = data.draw(st.sets(st.sampled_from(sorted(value))) if value else st.just(set()))
        return {
            key: (
                data.draw(json_values)
                if data.draw(st.booleans()) and depth
                else _truncate(item, depth + 1, data)
            )
            for key, item in value.items()
            if key in keep
        }
    return value


@settings(max_examples=200, deadline=None)
@given(
    raw=json_values | st.dictionaries(st.sampled_from([*FIELDS, "jobRun", "results"]), json_values)
)
def test_mapper_never_raises_on_arbitrary_json(raw: Any):
    item = PARSER.parse_safely(raw, "job run")
    assert isinstance(item, Run | RecordError)
    if isinstance(item, Run):
        json.dumps(item.model_dump(mode="json"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mapper_never_raises_on_truncated_valid_payloads(data: st.DataObject):
    raw = _truncate(copy.deepcopy(VALID), 0, data)
    if data.draw(st.booleans()):
        raw = {"jobRun": raw, "results": {"signed_url": "https://x/y?sig=1", "format": "json"}}
    item = PARSER.parse_safely(raw, "job run")
    assert isinstance(item, Run | RecordError)
    if isinstance(item, Run):
        assert S3_SECRET not in item.model_dump_json()


TABLE = {  # vendor-apis.md §7.2, Intuned row
    "PENDING": Status.RUNNING,
    "PAUSING": Status.PAUSED,
    "PAUSED": Status.PAUSED,
    "RESUMING": Status.RUNNING,
    "SUCCESS": Status.SUCCEEDED,
    "COMPLETED": Status.SUCCEEDED,
    "FAILURE": Status.FAILED,
    "TERMINATED": Status.ABORTED,
    "CANCELED": Status.ABORTED,
}


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from(sorted(TABLE)),
    payloads=st.integers(0, 10_000),
    successful=st.integers(0, 10_000),
    failed=st.integers(0, 10_000),
    camel=st.booleans(),
)
def test_documented_statuses_map_to_the_table(status, payloads, successful, failed, camel):
    raw = job_run("r", status=status, payloads=payloads, successful=successful, failed=failed)
    if camel:
        raw["successfulRuns"], raw["failedRuns"] = (
            raw.pop("successful_runs"),
            raw.pop("failed_runs"),
        )
    run = PARSER.parse_safely(raw)
    assert isinstance(run, Run)
    assert run.status is TABLE[status] and run.status_raw == status
    assert run.partial == (TABLE[status] is Status.SUCCEEDED and failed > 0)
    assert run.progress.pending == max(0, payloads - successful - failed)
    assert all(STATUS_MAP[key] is value for key, value in TABLE.items())


# -- issue 13 ----------------------------------------------------------------------------


async def test_three_malformed_records_are_three_error_rows_with_stable_ids(
    standin, server, tmp_path
):
    standin.jobs[JOB_A].extend(malformed(3, job_id=JOB_A))
    async with source_for(server, tmp_path) as source:
        first = await polled(source, None)
        rows = await source.row_changes(None)
        again = await polled(source, first.cursor)
    assert len(first.errors) == 3
    assert all(err.id is None for err in first.errors)  # none has a readable id
    ids = {err.row_id for err in first.errors}
    assert len(ids) == 3 and all(i.startswith("unreadable-") for i in ids)
    broken = [row for row in rows.rows if row.error]
    assert len(broken) == 3 and {row.id for row in broken} == ids
    assert again.errors == []  # the same bad records again: no new rows


async def test_paused_by_is_masked_in_metadata_and_messages(standin, server, tmp_path):
    standin.add(paused_run("a-paused", job_id=JOB_A))
    async with source_for(server, tmp_path) as source:
        first = await polled(source, None)
        run = next(r for r in first.runs if r.id == "a-paused")
        detail = await source.get("a-paused")
    for seen in (run, detail):
        dumped = seen.model_dump_json()
        assert PAUSED_BY not in dumped and "ops.lead" not in dumped
        assert seen.metadata is not None
        assert seen.metadata["reason_details"]["pausedBy"] == "***@shop.example"
        assert seen.reason is not None and seen.reason.message == "Paused by ***@shop.example"


async def test_a_200_kb_error_message_is_cut_with_a_visible_count(standin, server, tmp_path):
    standin.add(
        job_run("a-huge", job_id=JOB_A, status="FAILURE", start=at(5), error=huge_error(204_835))
    )
    async with source_for(server, tmp_path) as source:
        run = next(r for r in (await polled(source, None)).runs if r.id == "a-huge")
    assert run.error is not None and run.error.message is not None
    assert run.error.message.endswith("… (194,835 more characters)")
    assert len(run.error.message) == 10_000 + len("… (194,835 more characters)")


async def test_a_prefix_resolves_and_an_ambiguous_one_lists_its_candidates(
    standin, server, tmp_path
):
    standin.add(job_run("run-50004fb9-7d1e", job_id=JOB_B, start=at(3)))
    async with source_for(server, tmp_path) as source:  # a fresh process: nothing polled
        assert (await source.get("run-50004fb9")).id == "run-50004fb9-7d1e"
    async with source_for(server, tmp_path) as source:
        with pytest.raises(
            AmbiguousRunId, match=r"matches 3 runs in intuned-test: b-00, b-01"
        ) as e:
            await source.get("b-0")
    assert e.value.exit_code == 2


def test_the_cli_resolves_prefixes_and_counts_unreadable_records_apart(
    standin, server, tmp_path, monkeypatch
):
    """The issue's own commands, in a real ``jobwatch`` process per call."""
    standin.add(job_run("run-50004fb9-7d1e", job_id=JOB_B, start=at(3)))
    standin.jobs[JOB_A].extend(malformed(3, job_id=JOB_A))
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
        [sources.it]
        kind = "intuned"
        url = "{server.url}"
        workspace_id = "{WORKSPACE}"
        project = "{PROJECT}"
        jobs = ["{JOB_A}", "{JOB_B}"]
        token_env = "JOBWATCH_TEST_INTUNED_KEY"
        flags_store = "{tmp_path / "flags.db"}"
        """
    )
    monkeypatch.setenv("JOBWATCH_TEST_INTUNED_KEY", API_KEY)

    def cli(*args: str) -> Any:
        return run_cli(tmp_path / "unused.db", "--config", str(config), *args)

    shown = cli("show", "run-50004fb9", "--source", "it")
    assert shown.returncode == 0, shown.stderr
    assert "run-50004fb9-7d1e" in shown.stdout
    ambiguous = cli("show", "b-0", "--source", "it")
    assert ambiguous.returncode == 2
    assert "matches 3 runs in it: b-00, b-01, b-02" in ambiguous.stderr
    listed = cli("list", "--source", "it")
    assert listed.returncode == 0, listed.stderr
    bad = [ln for ln in listed.stderr.splitlines() if ln.startswith("! it unreadable-")]
    assert len(bad) == 3, listed.stderr
    assert len(bad) == 3
    assert "jobwatch: 3 unreadable records, not counted as runs" in listed.stderr
