"""The Letta adapter against a stand-in Letta API served on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from conftest import polled, run_cli
from jobwatch.config import parse_config
from jobwatch.core import RecordError, Run, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.core.format import status_word
from jobwatch.core.row import RunRow
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors.letta import (
    STATUS_MAP,
    STOP_REASON_STATUS,
    LettaConfig,
    LettaSource,
    message_lines,
    parse_record,
)
from standins.letta import TOKEN, LettaStandIn, batch_messages, letta_messages
from standins.server import AsgiServer, serving

AGENT = "agent-7f3c2a10-1111-4000-8000-000000000001"


@pytest.fixture
def standin() -> LettaStandIn:
    """Three runs, a job and two batches (one finished, so the batch list hides it)."""
    s = LettaStandIn()
    s.add_run("completed")
    s.add_run(
        "failed",
        stop_reason="llm_api_error",
        metadata={"run_type": "send_message_async", "error": "OpenAI answered 503: overloaded"},
    )
    running = s.add_run("running", completed_at=None, total_duration_ns=None)
    s.messages[running["id"]] = letta_messages(running["id"], AGENT)
    s.add_job("completed")
    batch = s.add_job("running", job_type="batch", agent_id=AGENT)
    s.batch_messages[batch["id"]] = batch_messages(AGENT)
    s.add_job("completed", job_type="batch")
    return s


@pytest.fixture
def server(standin: LettaStandIn) -> Iterator[AsgiServer]:
    with serving(standin.app) as srv:
        yield srv


def make(server: AsgiServer, tmp_path: Path, **settings_: Any) -> LettaSource:
    config = LettaConfig(
        kind="letta", url=server.url, token=TOKEN, flags_store=tmp_path / "flags.db", **settings_
    )
    return config.build("letta")


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


# -- polling -----------------------------------------------------------------------------


async def test_first_sync_reads_every_kind(standin: LettaStandIn, server: AsgiServer, tmp_path):
    async with make(server, tmp_path) as source:
        first = await polled(source, None)
    got = {r.id: r for r in first.runs}
    runs, jobs = standin.runs, standin.jobs
    # The finished batch is not in Letta's batch list (it only shows created/running).
    assert set(got) == {*ids(runs), jobs[0]["id"], jobs[1]["id"]}
    assert first.errors == []
    assert [got[r["id"]].status for r in runs] == [
        Status.SUCCEEDED,
        Status.FAILED,
        Status.RUNNING,
    ]
    assert got[jobs[0]["id"]].type == "job" and got[jobs[0]["id"]].status is Status.SUCCEEDED
    batch = got[jobs[1]["id"]]
    assert (batch.type, batch.status, batch.job) == ("batch", Status.RUNNING, AGENT)
    done = got[runs[0]["id"]]
    assert done.type == "run" and done.job == AGENT and done.label == AGENT
    assert done.ttft_ms == 850.0 and done.duration_ms == 42_000.0
    assert done.reason is not None and done.reason.type == "end_turn"
    assert done.config is not None and done.config["request_config"]["use_assistant_message"]
    assert done.ended_at is not None and done.updated_at is None  # a Run has no updated_at
    assert got[jobs[0]["id"]].owner == "user-00000000-0000-4000-8000-000000000000"
    # One newest-first page per kind, bounded by the page size; every active batch.
    lists = [s for s in standin.requests if s.path.endswith(("/runs/", "/jobs/", "/batches"))]
    assert [(s.path, s.param("order"), s.param("limit")) for s in lists] == [
        ("/v1/runs/", "desc", "100"),
        ("/v1/jobs/", "desc", "100"),
        ("/v1/messages/batches", "desc", "1000"),
    ]
    assert all(s.headers["authorization"] == f"Bearer {TOKEN}" for s in standin.requests)


async def test_first_sync_is_bounded_by_max_runs_and_page_size(tmp_path):
    standin = LettaStandIn()
    made = [standin.add_run("completed") for _ in range(7)]
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs"], max_runs=5, page_size=2) as source:
            first = await polled(source, None)
    newest_five = ids(made)[::-1][:5]
    assert sorted(r.id for r in first.runs) == sorted(newest_five)
    pages = standin.seen("/v1/runs/")
    assert [(s.param("limit"), s.param("after")) for s in pages] == [
        ("2", None),
        ("2", newest_five[1]),
        ("1", newest_five[3]),
    ]


async def test_incremental_poll_lists_only_newer_and_rereads_active(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    async with make(server, tmp_path) as source:
        first = await polled(source, None)
        running, batch = standin.runs[2], standin.jobs[1]
        standin.requests.clear()

        idle = await polled(source, first.cursor)
        assert idle.runs == [] and idle.errors == []

        # The running run finishes, a new run starts, the batch disappears.
        running.update(
            status="completed", stop_reason="max_steps", completed_at=running["created_at"]
        )
        new = standin.add_run("created", completed_at=None)
        standin.jobs.remove(batch)
        standin.requests.clear()
        delta = await polled(source, idle.cursor)

    got = {r.id: r for r in delta.runs}
    assert set(got) == {running["id"], new["id"], batch["id"]}
    finished = got[running["id"]]
    assert finished.status is Status.SUCCEEDED
    assert finished.reason is not None and finished.reason.message.startswith("Warning")
    assert got[new["id"]].status is Status.QUEUED
    gone = got[batch["id"]]
    assert gone.status is Status.UNKNOWN and gone.reason.type == "deleted" and gone.deleted
    # The cheap requests only: a small newest-first page per kind, the active runs in
    # one list, and one GET for each record that left the active lists.
    runs_lists = standin.seen("/v1/runs/")
    assert [(s.param("order"), s.param("limit"), s.param("after")) for s in runs_lists] == [
        ("desc", "10", None),
        ("desc", "1000", None),
    ]
    assert [v for k, v in runs_lists[1].pairs if k == "statuses"] == ["created", "running"]
    assert ("GET", f"/v1/runs/{running['id']}") in {(s.method, s.path) for s in standin.requests}
    assert standin.seen(f"/v1/messages/batches/{batch['id']}")
    assert len(standin.requests) == 6  # runs twice, jobs, batches, two GETs


async def test_failed_run_maps_error_reason_and_timing(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    failed_id = standin.runs[1]["id"]
    async with make(server, tmp_path, watch=["runs"]) as source:
        await polled(source, None)
        run = await source.get(failed_id[:12])  # an id prefix is enough
    assert run.id == failed_id and run.status is Status.FAILED and run.status_raw == "failed"
    assert run.error is not None
    assert (run.error.code, run.error.category) == ("llm_api_error", "llm")
    assert run.error.message == "OpenAI answered 503: overloaded"
    assert run.reason is not None and run.reason.type == "llm_api_error"
    assert run.duration_ms == 42_000.0 and run.ended_at is not None


def test_stop_reasons_refine_the_outcome():
    base = {"id": "run-0000000a", "agent_id": AGENT, "status": "completed"}
    # Background runs that hit an error are stored as completed with a failing reason.
    errored = parse_record({**base, "stop_reason": "insufficient_credits"}, "letta")
    assert errored.status is Status.FAILED and errored.error.category == "billing"
    approval = parse_record({**base, "stop_reason": "requires_approval"}, "letta")
    assert approval.status is Status.SUCCEEDED
    assert approval.reason.message.startswith("Needs attention")
    cancelled = parse_record({**base, "stop_reason": "cancelled"}, "letta")
    assert cancelled.status is Status.ABORTED
    odd = parse_record({**base, "status": "paused", "stop_reason": "brand_new_reason"}, "letta")
    assert (odd.status, odd.status_raw, odd.reason.type) == (
        Status.UNKNOWN,
        "paused",
        "brand_new_reason",
    )


async def test_detail_of_unlisted_records_and_not_found(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    hidden_batch = standin.jobs[2]  # finished: the batch list never shows it
    async with make(server, tmp_path) as source:
        await polled(source, None)
        run = await source.get(hidden_batch["id"])
        assert (run.type, run.status) == ("batch", Status.SUCCEEDED)
        assert standin.seen(f"/v1/jobs/{hidden_batch['id']}")
        with pytest.raises(RunNotFound):
            await source.get("run-deadbeef-0000-4000-8000-000000000000")


# -- logs --------------------------------------------------------------------------------


async def test_run_messages_become_log_lines(standin: LettaStandIn, server: AsgiServer, tmp_path):
    running = standin.runs[2]
    async with make(server, tmp_path, watch=["runs"]) as source:
        await polled(source, None)
        lines = await source.log_lines(running["id"])
        assert [ln.seq for ln in lines] == list(range(1, len(lines) + 1))
        assert [(ln.stream, ln.level) for ln in lines] == [
            ("user", "info"),
            ("user", "info"),
            ("reasoning", "info"),
            ("tool", "info"),
            ("tool", "error"),
            ("stdout", "error"),
            ("stderr", "error"),
            ("assistant", "info"),
        ]
        assert lines[3].text == 'call get_weather({"city": "Paris"})'
        assert lines[7].text == "I could not reach the weather service."
        text = "\n".join(ln.text for ln in lines)
        assert "abcdEFGH1234secret" not in text and "WEATHERKEY123" not in text
        assert await source.first_error(running["id"]) == 5

        # The next read asks only for messages after the last one seen.
        standin.messages[running["id"]].append(
            {
                "id": "message-00000005",
                "date": "2026-03-01T12:40:00Z",
                "message_type": "assistant_message",
                "content": "Done.",
            }
        )
        run = source.cached(running["id"])
        more = await source.fetch_logs(run, after=lines[-1].seq)
        assert [(ln.seq, ln.text) for ln in more] == [(9, "Done.")]
        asked = standin.seen(f"/v1/runs/{running['id']}/messages")[-1]
        assert (asked.param("order"), asked.param("after")) == ("asc", "message-00000004")


async def test_job_log_is_a_note_and_batch_log_has_its_messages(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    job, batch = standin.jobs[0], standin.jobs[1]
    async with make(server, tmp_path) as source:
        await polled(source, None)
        note = await source.log_tail(job["id"], 10)
        assert len(note) == 1 and "Letta keeps no messages" in note[0].text
        assert not standin.seen(f"/v1/jobs/{job['id']}/messages")
        lines = await source.log_lines(batch["id"])
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("user", "Summarize the report."),
        ("assistant", "The report says revenue grew."),
    ]
    assert standin.seen(f"/v1/messages/batches/{batch['id']}/messages")[0].param("order") == "asc"


# -- actions -----------------------------------------------------------------------------


async def test_abort_a_run_through_its_agent(standin: LettaStandIn, server: AsgiServer, tmp_path):
    running = standin.runs[2]
    async with make(server, tmp_path) as source:
        await polled(source, None)
        done = await source.abort(running["id"], by="test")
        assert done.message == f"Letta cancelled {running['id']}"
        assert done.run.status is Status.ABORTED and running["status"] == "cancelled"
        post = standin.seen(f"/v1/agents/{AGENT}/messages/cancel", "POST")
        assert len(post) == 1
        # Finished now: the transition rules refuse before any request goes out.
        with pytest.raises(TransitionRefused, match="already been aborted"):
            await source.abort(running["id"], by="test")
        assert len(standin.seen(f"/v1/agents/{AGENT}/messages/cancel", "POST")) == 1


async def test_abort_refusals_carry_lettas_words(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    running = standin.runs[2]
    orphan = standin.add_run("running", agent_id=None)
    job = standin.add_job("running")
    async with make(server, tmp_path) as source:
        await polled(source, None)
        standin.track_agent_run = False
        with pytest.raises(TransitionRefused, match="Agent run tracking is disabled"):
            await source.abort(running["id"], by="test")
        with pytest.raises(TransitionRefused, match="Agent run tracking is disabled"):
            await source.abort(job["id"], by="test")
        assert running["status"] == "running" and job["status"] == "running"
        with pytest.raises(TransitionRefused, match="names no agent_id"):
            await source.abort(orphan["id"], by="test")
        assert not standin.seen("/v1/agents/None/messages/cancel", "POST")

        # Letta's quirk: cancelling a job that has just finished answers `false`.
        standin.track_agent_run = True
        cached = source.cached(job["id"])
        job["status"] = "completed"
        with pytest.raises(TransitionRefused, match="answered false"):
            await source.remote_abort(cached, by="test")


async def test_abort_job_and_batch(standin: LettaStandIn, server: AsgiServer, tmp_path):
    job = standin.add_job("pending")
    batch = standin.jobs[1]
    other = standin.add_job("created", job_type="batch")
    async with make(server, tmp_path) as source:
        await polled(source, None)
        done = await source.abort(job["id"], by="test")
        assert done.run.status is Status.ABORTED and job["status"] == "cancelled"
        assert standin.seen(f"/v1/jobs/{job['id']}/cancel", "PATCH")
        done = await source.abort(batch["id"], by="test")
        assert done.run.status is Status.ABORTED and batch["status"] == "cancelled"
        assert standin.seen(f"/v1/messages/batches/{batch['id']}/cancel", "PATCH")
        standin.provider_batch_cancel = False
        with pytest.raises(TransitionRefused, match="Batch job cancellation is not enabled"):
            await source.abort(other["id"], by="test")


# -- auth, secrets, bad data, rate limits --------------------------------------------------


async def test_auth_headers_and_the_token_never_shows(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    standin.token = "the-right-one"
    config = LettaConfig(
        kind="letta", url=server.url, token=TOKEN, flags_store=tmp_path / "f.db", project_id="p-1"
    )
    source = config.build("letta")
    assert TOKEN not in repr(source) and TOKEN not in repr(config)
    async with source:
        with pytest.raises(SourceError) as caught:
            await polled(source, None)
    assert "401" in str(caught.value) and "Unauthorized" in str(caught.value)
    assert TOKEN not in str(caught.value)
    seen = standin.requests[0].headers
    assert seen["authorization"] == f"Bearer {TOKEN}" and seen["x-project-id"] == "p-1"

    # A self-hosted server's password header.
    standin.token = TOKEN
    standin.requests.clear()
    async with make(server, tmp_path, auth="password", user_id="user-1") as source:
        assert (await polled(source, None)).runs
    seen = standin.requests[0].headers
    assert seen["x-bare-password"] == f"password {TOKEN}" and seen["user_id"] == "user-1"
    assert "authorization" not in seen


async def test_secret_fields_are_masked(standin: LettaStandIn, server: AsgiServer, tmp_path):
    leaky = standin.add_run(
        "completed",
        callback_url="https://hook:hunter2pass@hooks.example.com/letta/done?token=CBTOKEN777",
        callback_sent_at="2026-03-01T13:00:00Z",
        callback_status_code=401,
        callback_error="401 from hook: {'authorization': 'Bearer ECHOED-SECRET-42'}",
        metadata={"api_key": "META-KEY-99", "note": "password=META-PASS-11", "team": "ops"},
        request_config={"use_assistant_message": True, "client_secret": "REQ-SECRET-5"},
    )
    async with make(server, tmp_path, watch=["runs"]) as source:
        await polled(source, None)
        run = await source.get(leaky["id"])
    dump = run.model_dump_json()
    for secret in (
        "hunter2pass",
        "CBTOKEN777",
        "ECHOED-SECRET-42",
        "META-KEY-99",
        "META-PASS-11",
        "REQ-SECRET-5",
    ):
        assert secret not in dump
    assert run.callback is not None
    assert run.callback.url == "https://***@hooks.example.com/letta/done?***"
    assert run.callback.status_code == 401 and run.callback.sent_at is not None
    assert run.metadata["team"] == "ops"


async def test_malformed_records_become_error_rows(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    standin.runs += [
        {"id": 42, "status": "running", "created_at": "2026-03-01T13:00:00Z"},
        {"status": "running", "created_at": "2026-03-01T13:01:00Z"},
        {"id": "run-0badda7e", "created_at": "yesterday-ish"},
    ]
    async with make(server, tmp_path, watch=["runs"]) as source:
        first = await polled(source, None)
    assert sorted(r.id for r in first.runs) == sorted(ids(standin.runs[:3]))
    assert len(first.errors) == 3
    assert all("unreadable Letta run" in e.message for e in first.errors)
    assert {e.id for e in first.errors} >= {"42", "run-0badda7e"}


async def test_a_list_this_server_lacks_is_one_error_row(
    standin: LettaStandIn, server: AsgiServer, tmp_path
):
    standin.gone.add("/v1/jobs/")
    async with make(server, tmp_path) as source:
        first = await polled(source, None)
        assert {r.type for r in first.runs} == {"run", "batch"}
        assert [e.id for e in first.errors] == ["jobs"] and "404" in first.errors[0].message
        await polled(source, first.cursor)
    assert len(standin.seen("/v1/jobs/")) == 1  # asked once, not on every poll
    assert len(standin.seen("/v1/runs/")) == 3  # the first page, then a probe and the active


async def test_a_deleted_cursor_record_restarts_the_listing(tmp_path):
    """A server that lists jobs oldest first is walked forward from the newest jobs
    seen; a deleted newest job is noticed, and if the cursor itself is gone (404 on
    a strict server) the list starts over."""
    standin = LettaStandIn(strict_cursors=True, oss_paging=True)
    for _ in range(3):
        standin.add_job("completed")
    second, newest = standin.add_job("completed"), standin.add_job("completed")
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["jobs"], page_size=2) as source:
            first = await polled(source, None)
            assert {r.id for r in first.runs} == {j["id"] for j in standin.jobs}
            standin.delete(newest["id"])
            later = standin.add_job("running")
            seen = await polled(source, first.cursor)
            assert sorted((r.id, r.deleted) for r in seen.runs) == [
                (newest["id"], True),
                (later["id"], False),
            ]
            standin.delete(second["id"])  # the walk's cursor
            standin.delete(later["id"])
            newer = standin.add_job("running")
            gone = await polled(source, seen.cursor)  # 404 on the cursor: no error row
            assert gone.errors == []
            assert (later["id"], True) in {(r.id, r.deleted) for r in gone.runs}
            standin.requests.clear()
            again = await polled(source, gone.cursor)
            assert again.errors == []
            assert newer["id"] in {r.id for r in [*gone.runs, *again.runs]}
            assert source.cached(newer["id"]) is not None
    assert standin.seen("/v1/jobs/")[0].param("after") is None  # listed afresh


async def test_built_from_a_config_file(
    standin: LettaStandIn, server: AsgiServer, tmp_path, monkeypatch
):
    monkeypatch.setenv("LETTA_TEST_KEY", TOKEN)
    text = f"""
[sources.my-letta]
kind = "letta"
url = "{server.url}/v1"
token_env = "LETTA_TEST_KEY"
watch = ["runs", "batches"]
agent_id = "{AGENT}"
project_id = "proj-1"
flags_store = "{tmp_path / "flags.db"}"
page_size = 50
"""
    config = parse_config(text)
    assert config.warnings == []
    source = config.sources["my-letta"].build("my-letta")
    assert isinstance(source, LettaSource)
    assert source.page_size == 50 and source.agent_id == AGENT
    async with source:
        first = await polled(source, None)
    assert {r.type for r in first.runs} == {"run", "batch"}
    runs_list = standin.seen("/v1/runs/")[0]
    assert runs_list.param("agent_id") == AGENT and runs_list.param("limit") == "50"
    assert runs_list.headers["x-project-id"] == "proj-1"
    assert not standin.seen("/v1/jobs/")

    monkeypatch.delenv("LETTA_TEST_KEY")
    with pytest.raises(SourceError, match="LETTA_TEST_KEY is not set"):
        async with config.sources["my-letta"].build("my-letta") as source:
            await polled(source, None)


# -- the mapper under hypothesis -------------------------------------------------------------

FIELDS = (
    "id",
    "agent_id",
    "background",
    "base_template_id",
    "callback_error",
    "callback_sent_at",
    "callback_status_code",
    "callback_url",
    "completed_at",
    "conversation_id",
    "created_at",
    "created_by_id",
    "job_type",
    "last_updated_by_id",
    "metadata",
    "request_config",
    "status",
    "stop_reason",
    "total_duration_ns",
    "ttft_ns",
    "updated_at",
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
PAYLOADS = JSON | st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, JSON))
SOURCE = LettaSource("letta", ApiClient("http://127.0.0.1:9", name="letta"))


def valid_payloads() -> list[dict[str, Any]]:
    s = LettaStandIn()
    s.add_run("failed", stop_reason="error", callback_url="https://h.example/x?t=1")
    s.add_job("completed", stop_reason="end_turn")
    s.add_job("running", job_type="batch")
    return [*s.runs, *s.jobs]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS)
def test_mapper_never_raises_on_arbitrary_json(raw: Any):
    result = SOURCE.parse_safely(raw, "run")
    assert isinstance(result, Run | RecordError)
    for line in message_lines(raw):
        assert isinstance(line[3], str)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(valid_payloads()), st.data())
def test_mapper_never_raises_on_truncated_payloads(valid: dict[str, Any], data: st.DataObject):
    keep = data.draw(st.sets(st.sampled_from(sorted(valid))))
    assert isinstance(SOURCE.parse_safely({k: valid[k] for k in keep}), Run | RecordError)
    text = json.dumps(valid)
    cut = text[: data.draw(st.integers(0, len(text)))]
    assert isinstance(SOURCE.parse_safely(cut), Run | RecordError)
    with contextlib.suppress(json.JSONDecodeError):
        assert isinstance(SOURCE.parse_safely(json.loads(cut)), Run | RecordError)


TABLE = {
    "created": Status.QUEUED,
    "pending": Status.QUEUED,
    "running": Status.RUNNING,
    "completed": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "cancelled": Status.ABORTED,
    "expired": Status.TIMED_OUT,
}
"""vendor-apis.md §7.2, Letta rows (Job/BatchJob and Run)."""


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(valid_payloads()),
    st.sampled_from(sorted(TABLE)),
    st.sampled_from(
        [None, *sorted(k for k, v in STOP_REASON_STATUS.items() if v is Status.SUCCEEDED)]
    ),
)
def test_documented_statuses_map_to_the_table(valid: dict, raw_status: str, stop: str | None):
    run = SOURCE.parse_safely({**valid, "status": raw_status, "stop_reason": stop})
    assert isinstance(run, Run)
    assert (run.status, run.status_raw) == (TABLE[raw_status], raw_status)
    assert STATUS_MAP == TABLE


# -- the official client agrees with the stand-in --------------------------------------------

SEED_ID = re.compile(r"^(job|run)-[a-fA-F0-9]{8}")


def seed_model() -> type[BaseModel]:
    """The ``BatchJob`` seed schema as a strict model, typed with letta-client's enums
    (letta-client 1.12 has no jobs or batches resource of its own)."""
    from datetime import datetime

    from letta_client.types.agents.job_status import JobStatus
    from letta_client.types.agents.job_type import JobType
    from letta_client.types.stop_reason_type import StopReasonType

    opt = None
    return create_model(
        "SeedBatchJob",
        __config__=ConfigDict(extra="forbid"),
        created_by_id=(str | None, opt),
        last_updated_by_id=(str | None, opt),
        created_at=(datetime, opt),
        updated_at=(datetime | None, opt),
        status=(JobStatus, "created"),
        completed_at=(datetime | None, opt),
        stop_reason=(StopReasonType | None, opt),
        metadata=(dict[str, Any] | None, opt),
        job_type=(JobType, "batch"),
        background=(bool | None, opt),
        agent_id=(str | None, opt),
        callback_url=(str | None, opt),
        callback_sent_at=(datetime | None, opt),
        callback_status_code=(int | None, opt),
        callback_error=(str | None, opt),
        ttft_ns=(int | None, opt),
        total_duration_ns=(int | None, opt),
        id=(str, opt),
    )


async def test_official_client_reads_the_standin(standin: LettaStandIn, server: AsgiServer):
    from letta_client import AsyncLetta
    from letta_client.types.agents.message import Message
    from letta_client.types.agents.run import Run as LettaRun

    running = standin.runs[2]
    standin.runs[0].update(
        callback_url="https://hooks.example.com/x",
        callback_sent_at="2026-03-01T13:00:00Z",
        callback_status_code=200,
        conversation_id="conv-1",
    )
    # Every record the stand-in serves validates against the client's own models.
    for raw in standin.runs:
        LettaRun.model_validate(raw)
        assert set(raw) <= set(LettaRun.model_fields)
    seed = seed_model()
    for raw in standin.jobs:
        seed.model_validate(raw)
        assert SEED_ID.match(raw["id"])
    raw_msgs = standin.messages[running["id"]]
    messages = TypeAdapter(list[Message]).validate_python(raw_msgs)
    assert [type(m).__name__ for m in messages] == [
        "UserMessage",
        "ReasoningMessage",
        "ToolCallMessage",
        "ToolReturnMessage",
        "AssistantMessage",
    ]

    # And the client's own calls (paths, envelopes, cursors) work against it.
    async with httpx.AsyncClient(trust_env=False) as http:
        client = AsyncLetta(api_key=TOKEN, base_url=server.url, http_client=http)
        listed = [r.id async for r in client.runs.list(limit=2)]
        assert listed == ids(standin.runs)[::-1]
        one = await client.runs.retrieve(running["id"])
        assert isinstance(one, LettaRun) and one.status == "running"
        page = await client.runs.messages.list(running["id"])
        assert [m.message_type for m in page.items] == [m["message_type"] for m in raw_msgs]
        said = await client.agents.messages.cancel(AGENT, run_ids=[running["id"]])
        assert said == {running["id"]: "cancelled"} and running["status"] == "cancelled"


# -- paging, whatever the server's reading of its cursors (issue 13, items 1 and 2) ---------

PAGINGS = pytest.mark.parametrize("oss", [False, True], ids=["documented", "open-source"])


def server_of(oss: bool) -> LettaStandIn:
    """40 runs and 40 jobs, a few still active, on a server paging either way."""
    s = LettaStandIn(oss_paging=oss)
    for i in range(40):
        s.add_run("running" if i % 10 == 9 else "completed")
        s.add_job("running" if i % 10 == 9 else "completed")
    return s


@PAGINGS
async def test_first_sync_reads_every_record_at_a_small_page_size(oss: bool, tmp_path):
    standin = server_of(oss)
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs", "jobs"], page_size=7) as source:
            first = await polled(source, None)
    assert first.errors == []
    assert sorted(r.id for r in first.runs) == sorted(ids(standin.runs) + ids(standin.jobs))
    # Bounded: about one request per page, plus one to learn the cursor reading.
    assert len(standin.requests) <= 2 * (40 // 7 + 2)


@PAGINGS
async def test_first_sync_keeps_the_newest_max_runs(oss: bool, tmp_path):
    standin = server_of(oss)
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["jobs"], page_size=7, max_runs=10) as source:
            first = await polled(source, None)
    assert sorted(r.id for r in first.runs) == sorted(ids(standin.jobs)[-10:])


@PAGINGS
async def test_new_runs_appear_over_several_polls(oss: bool, tmp_path):
    standin = server_of(oss)
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs", "jobs"], page_size=7) as source:
            change = await polled(source, None)
            for burst in (1, 3, 12, 0, 2):  # 12: more than one probe and one page
                new = [standin.add_run("completed") for _ in range(burst)]
                new += [standin.add_job("running") for _ in range(burst)]
                change = await polled(source, change.cursor)
                assert change.errors == []
                assert sorted(r.id for r in change.runs) == sorted(ids(new)), burst
            # Nothing re-read: the last poll handed out no old record.
            assert change.runs != [] or burst == 0


@PAGINGS
async def test_a_quiet_poll_costs_a_few_requests_whatever_the_active_count(oss: bool, tmp_path):
    standin = LettaStandIn(oss_paging=oss)
    active = [standin.add_run("running", completed_at=None) for _ in range(33)]
    standin.add_run("created", completed_at=None)
    for _ in range(5):
        standin.add_run("completed")
        standin.add_job("completed")
    standin.add_job("running", job_type="batch")
    with serving(standin.app) as server:
        async with make(server, tmp_path, page_size=7) as source:
            first = await polled(source, None)
            standin.requests.clear()
            quiet = await polled(source, first.cursor)
            assert quiet.runs == [] and quiet.errors == []
            quiet_cost = len(standin.requests)
            # An active run finishes and a queued one starts: both are seen.
            active[5].update(status="failed", stop_reason="llm_api_error")
            queued = standin.runs[33]
            queued.update(status="running")
            standin.requests.clear()
            moved = await polled(source, quiet.cursor)
    assert quiet_cost <= 4  # runs: probe + active list; jobs: probe; batches: active list
    got = {r.id: r for r in moved.runs}
    assert set(got) == {active[5]["id"], queued["id"]}
    assert got[active[5]["id"]].status is Status.FAILED
    assert got[queued["id"]].status is Status.RUNNING
    assert len(standin.requests) <= quiet_cost + 1  # one GET: the run that left the list


# -- deletions (issue 13, item 11) ---------------------------------------------------------


@PAGINGS
async def test_a_deleted_finished_run_is_marked_deleted_once(oss: bool, tmp_path):
    standin = server_of(oss)
    old, recent = standin.runs[3], standin.runs[-2]  # recent: in the newest page
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs"], page_size=7) as source:
            first = await polled(source, None)
            standin.delete(recent["id"])
            standin.delete(old["id"])
            standin.requests.clear()
            marked = await polled(source, first.cursor)
            assert [(r.id, r.status, r.deleted) for r in marked.runs] == [
                (recent["id"], Status.SUCCEEDED, True)  # the outcome is kept
            ]
            assert standin.seen(f"/v1/runs/{recent['id']}")  # the 404 that decides
            standin.requests.clear()
            again = await polled(source, marked.cursor)
            assert again.runs == [] and not standin.seen(f"/v1/runs/{recent['id']}")
            # Out of the newest page, a deletion shows when the run is next read…
            shown = await source.get(old["id"])
            assert shown.deleted and shown.status is Status.SUCCEEDED
            assert [r.id for r in (await polled(source, again.cursor)).runs] == [old["id"]]
    row = RunRow.from_run(shown)
    assert row.deleted and row.problem == "deleted"
    assert status_word(shown).endswith("[deleted]")


# -- what people see: error text and personal data (issue 13, items 6 and 7) ----------------


async def test_an_error_object_shows_its_type_and_message(tmp_path):
    standin = LettaStandIn()
    error = {
        "type": "llm_error",
        "message": "Rate limited by the provider.\nRetry in 20 s.",
        "detail": {"status": 429, "body": "x" * 50},
    }
    run = standin.add_run(
        "failed", stop_reason="llm_api_error", metadata={"run_type": "r", "error": error}
    )
    job = standin.add_job(
        "failed",
        metadata={"error": "Incorrect API key provided: sk-abcd****************wxyz (a@b.io)"},
    )
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs", "jobs"]) as source:
            await polled(source, None)
            got = await source.get(run["id"])
            failed_job = await source.get(job["id"])
    assert got.error is not None
    assert got.error.message == "llm_error: Rate limited by the provider.\nRetry in 20 s."
    assert "\\n" not in got.error.message and "detail" not in got.error.message
    assert got.metadata is not None and got.metadata["error"]["detail"]["status"] == 429
    said = failed_job.error.message if failed_job.error else ""
    assert "Incorrect API key provided: ***" in said
    assert "abcd" not in said and "wxyz" not in said and "a@b.io" not in said
    assert "abcd" not in json.dumps(failed_job.model_dump(mode="json"))


def chatty(run_id: str) -> list[dict[str, Any]]:
    msgs = letta_messages(run_id, AGENT)
    msgs[0]["content"] = "Mail the report to jane.roe@example.org and cc ops@corp.example.com."
    return msgs


async def test_email_addresses_in_messages_are_masked_in_the_log(tmp_path):
    standin = LettaStandIn()
    run = standin.add_run("completed")
    standin.messages[run["id"]] = chatty(run["id"])
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs"]) as source:
            await polled(source, None)
            lines = await source.log_lines(run["id"])
    text = "\n".join(line.text for line in lines)
    assert "Mail the report to ***@example.org and cc ***@corp.example.com." in text
    assert "jane.roe" not in text and "ops@" not in text


def test_jobwatch_logs_and_show_mask_addresses_and_key_ends(tmp_path, monkeypatch):
    standin = LettaStandIn()
    run = standin.add_run("completed")
    standin.messages[run["id"]] = chatty(run["id"])
    said = "Incorrect API key provided: sk-abcd****************wxyz for ops@corp.example.com"
    job = standin.add_job("failed", metadata={"error": said})
    monkeypatch.setenv("LETTA_TEST_KEY", TOKEN)
    with serving(standin.app) as server:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[sources.letta]\nkind = "letta"\nurl = "{server.url}"\n'
            f'token_env = "LETTA_TEST_KEY"\nwatch = ["runs", "jobs"]\n'
            f'flags_store = "{tmp_path / "flags.db"}"\n'
        )
        result = run_cli(
            tmp_path / "store.db", "--config", str(config), "logs", run["id"], "--source", "letta"
        )
        shown = run_cli(
            tmp_path / "store.db", "--config", str(config), "show", job["id"], "--source", "letta"
        )
    assert result.returncode == 0, result.stderr
    assert "***@example.org" in result.stdout
    assert "jane.roe" not in result.stdout + result.stderr
    assert shown.returncode == 0, shown.stderr
    assert "Incorrect API key provided: *** for ***@corp.example.com" in shown.stdout
    assert "abcd" not in shown.stdout and "wxyz" not in shown.stdout
    assert "ops@" not in shown.stdout


@PAGINGS
async def test_a_periodic_sweep_finds_older_deleted_runs(oss: bool, tmp_path):
    standin = server_of(oss)
    old_run, old_job = standin.runs[3], standin.jobs[4]
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs", "jobs"], page_size=7) as source:
            first = await polled(source, None)
            standin.delete(old_run["id"])
            standin.delete(old_job["id"])
            quiet = await polled(source, first.cursor)  # not due yet: nothing seen
            assert quiet.runs == []
            source.sweep_every_s = 0.0  # due now (every 10 minutes by default)
            swept = await polled(source, quiet.cursor)
            source.sweep_every_s = 3600.0
            standin.requests.clear()
            after = await polled(source, swept.cursor)
    assert sorted((r.id, r.deleted) for r in swept.runs) == sorted(
        [(old_run["id"], True), (old_job["id"], True)]
    )
    assert after.runs == [] and len(standin.requests) <= 4


@PAGINGS
async def test_quiet_polls_keep_their_place(oss: bool, tmp_path):
    """However many polls find nothing, the next new records are still found (the
    walk's one record of overlap never moves its start back)."""
    standin = server_of(oss)
    with serving(standin.app) as server:
        async with make(server, tmp_path, watch=["runs", "jobs"], page_size=3) as source:
            change = await polled(source, None)
            for _ in range(8):
                change = await polled(source, change.cursor)
                assert change.runs == []
            new = [standin.add_job("completed") for _ in range(5)]
            new += [standin.add_run("completed") for _ in range(5)]
            change = await polled(source, change.cursor)
    assert sorted(r.id for r in change.runs) == sorted(ids(new))
