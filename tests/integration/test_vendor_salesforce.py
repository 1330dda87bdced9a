"""The Salesforce ``AiJobRun`` adapter against a stand-in REST API on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from conftest import polled
from jobwatch.config import parse_config
from jobwatch.core import Progress, RecordError, Run, Status
from jobwatch.core.errors import AmbiguousRunId, RunNotFound, SourceError, TransitionRefused
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors import base
from jobwatch.sources.vendors.salesforce import (
    RUN_FIELDS,
    STATUS_MAP,
    SalesforceConfig,
    SalesforceSource,
    map_run,
    normalize_api_version,
    progress_from_counts,
    soql_quote,
)
from standins.salesforce import BASE_TIME, RUN_STATUSES, TOKEN, SalesforceStandIn
from standins.server import serving

TOKEN_ENV = "JOBWATCH_TEST_SF_TOKEN"
PII = ("078-05-1120", "jane.doe", "Dear Jane", "abcdef123456", "s3cr3t-value")
"""Strings from item inputs/responses and error messages that must never show."""

# Section 7.2 of vendor-apis.md, written out again so the table is checked, not copied.
EXPECTED = {
    "New": Status.NEW,
    "ReadyToStart": Status.QUEUED,
    "Queued": Status.QUEUED,
    "InProgress": Status.RUNNING,
    "Completed": Status.SUCCEEDED,
    "Failed": Status.FAILED,
    "Aborted": Status.ABORTED,
}


def at(seconds: int) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class Org:
    """The stand-in's state plus the ids of the seeded runs."""

    def __init__(self) -> None:
        self.state = state = SalesforceStandIn()
        self.new = state.add_run("New")["Id"]
        self.queued = state.add_run("Queued")["Id"]
        self.running = state.add_run("InProgress", StartTime=at(1))["Id"]
        self.done = state.add_run("Completed", Label="Summaries", StartTime=at(2), EndTime=at(62))[
            "Id"
        ]
        self.failed = state.add_run(
            "Failed",
            StartTime=at(3),
            EndTime=at(4),
            ErrorCode="LLM_TIMEOUT",
            ErrorMessage="Model call timed out for jane.doe@example.com; "
            "Authorization: Bearer abcdef123456",
        )["Id"]
        self.aborted = state.add_run("Aborted", EndTime=at(5))["Id"]
        for status in ("Completed", "Ready", "Completed"):
            state.add_item(self.running, status)
        for n, status in enumerate(("Completed", "Completed", "Failed", "Completed")):
            state.add_item(
                self.done,
                status,
                Input=json.dumps({"ssn": "078-05-1120", "email": "jane.doe@example.com"}),
                PreprocessedInput="Write to Jane Doe, SSN 078-05-1120",
                Response="Dear Jane, ...",
                ErrorCode="PROMPT_ERROR" if status == "Failed" else None,
                ErrorMessage=(
                    f"merge field failed for jane.doe@example.com (item {n}) api_key=s3cr3t-value"
                    if status == "Failed"
                    else None
                ),
            )
        state.requests.clear()

    @property
    def patches(self) -> list[Any]:
        return [seen for seen in self.state.requests if seen.method == "PATCH"]


@pytest.fixture
def org() -> Org:
    return Org()


@pytest.fixture
def server(org: Org) -> Iterator[Any]:
    with serving(org.state.app) as running:
        yield running


@pytest.fixture
def build(server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sources built the way the config file builds them (token from the env)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def make(**settings: Any) -> SalesforceSource:
        read_only = settings.pop("read_only", False)
        config = SalesforceConfig(
            kind="salesforce",
            url=server.url,
            token_env=TOKEN_ENV,
            flags_store=tmp_path / "flags.db",
            **settings,
        )
        return config.build("sf", read_only=read_only)

    return make


# -- polling ------------------------------------------------------------------------------


async def test_first_sync_maps_every_run_with_one_query_and_one_count(org: Org, build: Any) -> None:
    org.state.add_run("Paused")  # not a documented value
    async with build() as sf:
        first = await polled(sf, None)

    by_id = {run.id: run for run in first.runs}
    assert first.errors == []
    assert {run_id: run.status for run_id, run in by_id.items()} == {
        org.new: Status.NEW,
        org.queued: Status.QUEUED,
        org.running: Status.RUNNING,
        org.done: Status.SUCCEEDED,
        org.failed: Status.FAILED,
        org.aborted: Status.ABORTED,
        "0XJ5g0000000007AAA": Status.UNKNOWN,
    }
    assert by_id["0XJ5g0000000007AAA"].status_raw == "Paused"
    done = by_id[org.done]
    assert done.label == "Summaries" and by_id[org.new].label == "Batch 1"
    assert done.type == "PromptTemplate" and done.job == "0hf5g000000Summ01"
    assert done.duration_ms == 60_000.0 and done.owner == "0055g00000Ab1cdAAB"
    assert done.metadata is not None and done.metadata["name"] == "AJR-000004"
    assert done.updated_at is not None and done.created_at is not None
    # Items are counted in the same poll: the list shows progress and partial runs.
    assert done.progress == Progress(total=4, succeeded=3, failed=1, pending=0)
    assert done.partial and done.status is Status.SUCCEEDED
    assert by_id[org.running].progress == Progress(total=3, succeeded=2, failed=0, pending=1)
    assert by_id[org.new].progress is None  # no items

    seen, counted = org.state.requests
    assert counted.query["q"].startswith(
        "SELECT AiJobRunId, Status, COUNT(Id) FROM AiJobRunItem WHERE AiJobRunId IN ("
    )
    assert counted.query["q"].endswith(") GROUP BY AiJobRunId, Status")
    assert all(f"'{run_id}'" in counted.query["q"] for run_id in by_id)
    assert seen.method == "GET" and seen.path == "/services/data/v63.0/query"
    soql = seen.query["q"]
    assert soql.startswith("SELECT Id, Name, Label, Status, JobType, Target, StartTime")
    assert " FROM AiJobRun ORDER BY SystemModstamp DESC LIMIT 1000" in soql
    assert "SystemModstamp >" not in soql
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["sforce-query-options"] == "batchSize=200"


async def test_first_sync_is_bounded_by_max_runs_and_follows_next_records_url(
    org: Org, build: Any
) -> None:
    newest = [org.state.add_run("Completed", EndTime=at(9))["Id"] for _ in range(5)]
    org.state.batch_limit = 2  # the server may answer with smaller batches
    async with build(max_runs=5) as sf:
        first = await polled(sf, None)

    assert sorted(run.id for run in first.runs) == sorted(newest)
    listing = [s for s in org.state.requests if "AiJobRunItem" not in s.query.get("q", "")]
    paths = [seen.path for seen in listing[:3]]
    assert paths[0] == "/services/data/v63.0/query"
    assert [p.rsplit("-", 1)[1] for p in paths[1:]] == ["2", "4"]
    assert all(p.startswith("/services/data/v63.0/query/01g") for p in paths[1:])
    assert "LIMIT 5" in org.state.requests[0].query["q"]


async def test_a_next_page_on_another_host_is_not_followed(org: Org, build: Any) -> None:
    org.state.batch_limit = 4
    org.state.next_url_prefix = "https://elsewhere.example"
    async with build() as sf:
        first = await polled(sf, None)
    assert len(first.runs) == 4  # the first page still arrives
    (error,) = first.errors
    assert "not a path on this instance" in error.message
    listing = [s for s in org.state.requests if "FROM AiJobRun " in s.query.get("q", "")]
    assert len(listing) == 1  # the token went nowhere else
    assert all(s.path == "/services/data/v63.0/query" for s in org.state.requests)


async def test_incremental_poll_asks_only_for_newer_system_modstamps(org: Org, build: Any) -> None:
    async with build() as sf:
        first = await polled(sf, None)
        newest = max(run.updated_at for run in first.runs if run.updated_at)
        before = len(org.state.requests)
        idle = await polled(sf, first.cursor)
        # The overlap reads the last five minutes again; unchanged, they are no change.
        assert idle.runs == [] and idle.errors == []
        soql = org.state.requests[before].query["q"]
        stamp = (newest - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f" WHERE SystemModstamp > {stamp} ORDER BY SystemModstamp ASC" in soql
        assert "LIMIT" not in soql

        org.state.update(org.running, Status="Completed", EndTime=at(120))
        added = org.state.add_run("ReadyToStart")["Id"]
        delta = await polled(sf, idle.cursor)
        assert [(run.id, run.status) for run in delta.runs] == [
            (org.running, Status.SUCCEEDED),
            (added, Status.QUEUED),
        ]
        later = await polled(sf, delta.cursor)
        assert later.runs == []
    lists = [s.query["q"] for s in org.state.requests if "FROM AiJobRun " in s.query["q"]]
    assert len(lists) == 4  # one list query per poll
    newest_now = BASE_TIME + timedelta(seconds=org.state.ticks - 300)
    assert newest_now.strftime("%Y-%m-%dT%H:%M:%SZ") in lists[-1]
    # Item counts: one aggregate for the runs still active or changed, none for the rest.
    counts = [s.query["q"] for s in org.state.requests if "FROM AiJobRunItem" in s.query["q"]]
    assert len(counts) == 4
    assert f"'{org.done}'" not in counts[1]  # unchanged and finished: not counted again


# -- detail, progress and logs ------------------------------------------------------------


async def test_detail_maps_error_reason_and_item_progress(org: Org, build: Any) -> None:
    async with build() as sf:
        await polled(sf, None)
        done = await sf.get(org.done)
        assert done.progress == Progress(total=4, succeeded=3, failed=1, pending=0)
        assert done.partial and done.status is Status.SUCCEEDED
        soql = org.state.requests[-1].query["q"]
        assert soql == (
            f"SELECT Status, COUNT(Id) FROM AiJobRunItem WHERE AiJobRunId = '{org.done}' "
            "GROUP BY Status"
        )
        assert org.state.requests[-2].path == f"/services/data/v63.0/sobjects/AiJobRun/{org.done}"

        failed = await sf.get(org.failed)
        assert failed.error is not None and failed.error.code == "LLM_TIMEOUT"
        assert failed.error.message is not None
        assert failed.error.message.startswith("Model call timed out for ***@example.com")
        assert failed.progress is None  # no items at all

        aborted = await sf.get(org.aborted)
        assert aborted.reason is not None and aborted.reason.type == "user_abort"
        running = await sf.get(org.running[:15])  # a unique prefix is enough
        assert running.progress == Progress(total=3, succeeded=2, failed=0, pending=1)

        # The poll does not re-count items, and does not forget the counts either.
        org.state.update(org.done, Label="Renamed")
        delta = await polled(sf, (await sf.changes(None)).cursor)
        (renamed,) = delta.runs
        assert renamed.label == "Renamed" and renamed.progress == done.progress


async def test_unknown_or_malformed_ids_are_not_found(org: Org, build: Any) -> None:
    async with build() as sf:
        with pytest.raises(RunNotFound, match="no AiJobRun"):
            await sf.get("0XJ5g9999999999AAA")
        calls = len(org.state.requests)
        with pytest.raises(RunNotFound, match="not a Salesforce record id"):
            await sf.get("x' OR Id != '")
        assert len(org.state.requests) == calls  # never reached a URL or SOQL


async def test_log_lists_items_without_their_inputs(
    org: Org, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "LOG_REFRESH_S", 0.0)
    async with build() as sf:
        await polled(sf, None)
        lines = await sf.log_lines(org.done)
        assert [line.seq for line in lines] == [1, 2, 3, 4]
        assert [line.level for line in lines] == ["info", "info", "error", "info"]
        assert lines[0].text == "AJRI-000004: Completed"
        assert lines[2].text.startswith("AJRI-000006: Failed — PROMPT_ERROR: merge field failed")
        assert await sf.first_error(org.done) == 3
        assert all(line.stream == "item" for line in lines)
        soql = org.state.requests[-1].query["q"]
        assert "FROM AiJobRunItem WHERE AiJobRunId = " in soql
        assert not {"Input", "PreprocessedInput", "Response"} & set(soql.replace(",", " ").split())
        text = " ".join(line.text for line in lines)
        assert not [s for s in PII if s in text]

        # An active run's log holds only finished items, so it can only grow.
        first = await sf.log_lines(org.running)
        assert [line.text for line in first] == ["AJRI-000001: Completed"]
        org.state.items[1]["Status"] = "Completed"
        grown = await sf.log_lines(org.running)
        assert [line.seq for line in grown] == [1, 2, 3]

        (note,) = await sf.log_lines(org.aborted)
        assert note.text == "This run has no AiJobRunItem records."


# -- actions ------------------------------------------------------------------------------


async def test_abort_patches_status_aborted(org: Org, build: Any) -> None:
    async with build() as sf:
        await polled(sf, None)
        result = await sf.abort(org.queued, by="test")

    assert org.state.runs[org.queued]["Status"] == "Aborted"
    (patch,) = org.patches
    assert patch.path == f"/services/data/v63.0/sobjects/AiJobRun/{org.queued}"
    assert patch.body == {"Status": "Aborted"}
    assert result.run.status is Status.ABORTED and result.run.ended_at is not None
    assert "Aborted" in result.message


async def test_salesforce_refusal_is_transition_refused_with_its_message(
    org: Org, build: Any
) -> None:
    async with build() as sf:
        await polled(sf, None)
        with pytest.raises(TransitionRefused) as refused:
            await sf.abort(org.running, by="test")
        assert "You can't abort a job run that's in progress." in str(refused.value)
        assert "FIELD_INTEGRITY_EXCEPTION" in str(refused.value)
        assert org.state.runs[org.running]["Status"] == "InProgress"
        assert len(org.patches) == 1

        # Finished runs are refused by the shared rules before any request.
        with pytest.raises(TransitionRefused, match="already succeeded"):
            await sf.abort(org.done, by="test")
        assert len(org.patches) == 1

        org.state.refuse_abort_in_progress = False
        result = await sf.abort(org.running, by="test")
        assert result.run.status is Status.ABORTED


async def test_archive_is_a_remote_patch_that_keeps_the_outcome(
    org: Org, build: Any, tmp_path: Path
) -> None:
    async with build() as sf:
        first = await polled(sf, None)
        result = await sf.archive(org.done)
        assert org.state.runs[org.done]["Status"] == "Archived"
        assert org.patches[-1].body == {"Status": "Archived"}
        run = result.run
        assert run.archived and run.status is Status.SUCCEEDED and run.status_raw == "Archived"
        assert "Archived" in result.message

        await sf.archive(org.aborted)
        assert (await sf.get(org.aborted)).status is Status.ABORTED  # known before archiving

        # Salesforce has no way back from Archived: the source declares no unarchive.
        with pytest.raises(TransitionRefused, match="source sf cannot unarchive runs"):
            await sf.unarchive(org.done)
        with pytest.raises(TransitionRefused, match="already archived"):
            await sf.archive(org.done)
        with pytest.raises(TransitionRefused, match="still queued"):
            await sf.archive(org.queued)
        assert len(org.patches) == 2

        delta = await polled(sf, first.cursor)
        assert {(r.id, r.archived, r.status) for r in delta.runs} >= {
            (org.done, True, Status.SUCCEEDED),
            (org.aborted, True, Status.ABORTED),
        }
    assert not (tmp_path / "flags.db").exists()  # Salesforce keeps the flag, not us

    # Without a cache the outcome is derived from what the record still shows.
    org.state.update(org.failed, Status="Archived")
    org.state.update(org.new, Status="Archived")
    async with build() as fresh:
        runs = {run.id: run for run in (await polled(fresh, None)).runs}
    assert (runs[org.done].status, runs[org.done].archived) == (Status.SUCCEEDED, True)
    assert (runs[org.failed].status, runs[org.failed].archived) == (Status.FAILED, True)
    assert (runs[org.new].status, runs[org.new].archived) == (Status.UNKNOWN, True)
    # jobwatch archived it: the outcome it saw before is remembered for every process.
    assert runs[org.aborted].status is Status.ABORTED
    assert runs[org.aborted].archived


# -- safety -------------------------------------------------------------------------------


async def test_token_is_sent_but_never_shown(
    org: Org, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with build() as sf:
        await polled(sf, None)
        assert {seen.headers["authorization"] for seen in org.state.requests} == {f"Bearer {TOKEN}"}
        assert TOKEN not in repr(sf) and TOKEN not in repr(sf.api)

    monkeypatch.setenv(TOKEN_ENV, "00Dexpired!wrong-token")
    async with build() as sf:
        with pytest.raises(SourceError) as failed:
            await polled(sf, None)
    assert "Session expired or invalid" in str(failed.value)
    assert "wrong-token" not in str(failed.value) and TOKEN not in str(failed.value)

    inline = SalesforceConfig(kind="salesforce", url="https://x.my.salesforce.com", token=TOKEN)
    assert TOKEN not in repr(inline) and TOKEN not in str(inline)


async def test_item_data_and_secrets_never_reach_a_run(org: Org, build: Any) -> None:
    async with build() as sf:
        runs = (await polled(sf, None)).runs
        runs += [await sf.get(run.id) for run in runs]
        lines = [line for run in runs for line in await sf.log_lines(run.id)]
    dumped = " ".join(run.model_dump_json() for run in runs) + " ".join(
        line.model_dump_json() for line in lines
    )
    assert not [s for s in (*PII, TOKEN) if s in dumped]
    assert "***@example.com" in dumped  # masked, still telling


async def test_a_malformed_record_is_an_error_row_and_the_rest_still_arrive(
    org: Org, build: Any
) -> None:
    org.state.extra_records = [
        {"Id": "0XJ5gBROKEN0000AAA", "Status": "Completed", "StartTime": "yesterday-ish"},
        "not a record",
        {"Status": "New", "Label": "no id"},
    ]
    async with build() as sf:
        first = await polled(sf, None)
    assert len(first.runs) == 6
    assert len(first.errors) == 3
    broken = next(err for err in first.errors if err.id == "0XJ5gBROKEN0000AAA")
    assert "StartTime is not a date-time" in broken.message
    assert all("unreadable Salesforce run" in err.message for err in first.errors)


async def test_built_from_a_config_file(
    org: Org, server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = org.state.add_run("Completed", Target="Bob's template", EndTime=at(30))["Id"]
    org.state.add_run("Completed", Target="Bob's template", JobType="Other")
    monkeypatch.setenv("MY_SF_TOKEN", TOKEN)
    config = parse_config(
        f"""
        [sources.my-salesforce]
        kind = "salesforce"
        url = "{server.url}"
        api_version = "64"
        job_type = "PromptTemplate"
        target = "Bob's template"
        token_env = "MY_SF_TOKEN"
        max_runs = 50
        page_size = 500
        flags_store = "{tmp_path / "flags.db"}"
        """
    )
    assert config.warnings == []
    source = config.sources["my-salesforce"].build("my-salesforce")
    assert isinstance(source, SalesforceSource) and source.name == "my-salesforce"
    async with source:
        runs = (await polled(source, None)).runs
    assert [run.id for run in runs] == [wanted]
    seen = org.state.requests[0]
    assert seen.path == "/services/data/v64.0/query"
    assert "WHERE JobType = 'PromptTemplate' AND Target = 'Bob\\'s template' " in seen.query["q"]
    assert "LIMIT 50" in seen.query["q"] and seen.headers["sforce-query-options"] == "batchSize=500"


def test_settings_helpers() -> None:
    assert [normalize_api_version(v) for v in ("63", "63.0", "v64.0", "V65")] == [
        "v63.0",
        "v63.0",
        "v64.0",
        "v65.0",
    ]
    with pytest.raises(ValueError, match="not a Salesforce API version"):
        normalize_api_version("latest")
    assert soql_quote("a'b\\c\nd") == "'a\\'b\\\\c\\nd'"
    assert progress_from_counts([{"Status": "Ready", "expr0": 2}, {"Status": "Error", "n": 1}]) == (
        Progress(total=3, succeeded=0, failed=1, pending=2)
    )
    assert progress_from_counts([]) is None


# -- the mapper under hypothesis ----------------------------------------------------------

MAPPER = SalesforceSource("sf", ApiClient("http://127.0.0.1:9", name="sf"))

VALID = {
    "attributes": {"type": "AiJobRun", "url": "/services/data/v63.0/sobjects/AiJobRun/x"},
    "Id": "0XJ5g0000000001AAA",
    "Name": "AJR-000001",
    "Label": "Nightly summaries",
    "Status": "Completed",
    "JobType": "PromptTemplate",
    "Target": "0hf5g000000Summ01",
    "StartTime": "2025-03-01T09:00:01.000+0000",
    "EndTime": "2025-03-01T09:05:00.000+0000",
    "ErrorCode": "LLM_TIMEOUT",
    "ErrorMessage": "timed out",
    "OwnerId": "0055g00000Ab1cdAAB",
    "CreatedDate": "2025-03-01T09:00:00.000+0000",
    "CreatedById": "0055g00000Ab1cdAAB",
    "LastModifiedDate": "2025-03-01T09:05:00.000+0000",
    "LastModifiedById": "0055g00000Ab1cdAAB",
    "SystemModstamp": "2025-03-01T09:05:00.000+0000",
}

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
record_like = st.fixed_dictionaries(
    {}, optional={key: json_like | st.text(max_size=40) for key in (*RUN_FIELDS, "attributes")}
)


@st.composite
def truncated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with keys dropped and values cut short."""
    keys = draw(st.lists(st.sampled_from(sorted(VALID)), unique=True))
    out: dict[str, Any] = {}
    for key in keys:
        value = VALID[key]
        if isinstance(value, str):
            value = value[: draw(st.integers(0, len(value)))]
        out[key] = value
    return out


@settings(max_examples=200, deadline=None)
@given(json_like | record_like)
def test_any_payload_becomes_a_run_or_an_error_row(raw: Any) -> None:
    assert isinstance(MAPPER.parse_safely(raw, "run"), Run | RecordError)
    assert isinstance(MAPPER.parse_all(raw, "run"), list)


@settings(max_examples=200, deadline=None)
@given(truncated())
def test_truncated_records_never_raise(raw: dict[str, Any]) -> None:
    item = MAPPER.parse_safely(raw, "run")
    if isinstance(item, Run):
        assert item.id == raw["Id"] and VALID["Id"].startswith(item.id)  # 15 or 18 chars
    elif raw.get("Id") == VALID["Id"]:
        assert item.id == VALID["Id"]  # the error row still says which run


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(RUN_STATUSES),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, *Status]),
)
def test_documented_statuses_map_to_the_table(
    raw_status: str, has_error: bool, has_end: bool, known: Status | None
) -> None:
    raw = {**VALID, "Status": raw_status}
    if not has_error:
        raw["ErrorCode"] = None
    if not has_end:
        raw["EndTime"] = None
    run = map_run(raw, "sf", known=known)
    assert run.status_raw == raw_status
    if raw_status != "Archived":
        assert (run.status, run.archived) == (EXPECTED[raw_status], False)
        return
    assert run.archived
    if known is not None and known.is_terminal:
        assert run.status is known
    elif has_error:
        assert run.status is Status.FAILED
    else:  # no items to tell by, and EndTime alone says nothing (aborted runs have one)
        assert run.status is Status.UNKNOWN


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_", min_size=1))
def test_unknown_statuses_are_unknown_and_kept(raw_status: str) -> None:
    run = map_run({**VALID, "Status": raw_status}, "sf")
    if raw_status.casefold() in {s.casefold() for s in STATUS_MAP}:
        return
    assert (run.status, run.status_raw, run.archived) == (Status.UNKNOWN, raw_status, False)


def test_the_map_covers_every_documented_status() -> None:
    assert set(STATUS_MAP) == set(RUN_STATUSES)
    assert {raw: STATUS_MAP[raw] for raw in EXPECTED} == EXPECTED


# -- the official client ------------------------------------------------------------------

INSTANCE = "https://standin.my.salesforce.com"


class ToLoopback(HTTPAdapter):
    """simple-salesforce builds https URLs on the instance host; this sends them to
    the stand-in on 127.0.0.1 instead, so no request leaves the machine."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert request.url is not None and request.url.startswith(INSTANCE)
        request.url = self.target + request.url[len(INSTANCE) :]
        return super().send(request, **kwargs)


def test_simple_salesforce_accepts_the_stand_in(org: Org, server: Any) -> None:
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import (
        SalesforceExpiredSession,
        SalesforceMalformedRequest,
        SalesforceResourceNotFound,
    )

    def client(token: str) -> Salesforce:
        session = requests.Session()
        session.trust_env = False
        session.mount(INSTANCE, ToLoopback(server.url))
        return Salesforce(session_id=token, instance_url=INSTANCE, version="63.0", session=session)

    sf = client(TOKEN)
    org.state.batch_limit = 4
    result = sf.query_all(
        "SELECT Id, Status, ErrorCode, EndTime, SystemModstamp FROM AiJobRun "
        "ORDER BY SystemModstamp ASC"
    )
    assert result["done"] and result["totalSize"] == 6 and len(result["records"]) == 6
    assert [r["Id"] for r in result["records"]][:2] == [org.new, org.queued]
    assert any("/query/01g" in seen.path for seen in org.state.requests)  # it paged
    assert [MAPPER.parse(r).status for r in result["records"]][3:5] == [
        Status.SUCCEEDED,
        Status.FAILED,
    ]

    record = sf.AiJobRun.get(org.failed)
    assert record["attributes"]["type"] == "AiJobRun" and record["ErrorCode"] == "LLM_TIMEOUT"
    assert map_run(record, "sf").status is Status.FAILED

    counts = sf.query(
        f"SELECT Status, COUNT(Id) FROM AiJobRunItem WHERE AiJobRunId = '{org.done}' "
        "GROUP BY Status"
    )
    assert progress_from_counts(counts["records"]) == Progress(
        total=4, succeeded=3, failed=1, pending=0
    )

    assert sf.AiJobRun.update(org.queued, {"Status": "Aborted"}) == 204
    assert org.state.runs[org.queued]["Status"] == "Aborted"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.AiJobRun.update(org.running, {"Status": "Aborted"})
    assert refused.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceResourceNotFound):
        sf.AiJobRun.get("0XJ5g9999999999AAA")
    with pytest.raises(SalesforceExpiredSession):
        client("wrong").query("SELECT Id FROM AiJobRun")


# -- issue 13: what Salesforce users would catch -------------------------------------------


def archived_abort(org: Org) -> str:
    """An Aborted run with 1 of 4 items done, as a run archived by someone else."""
    run_id = org.state.add_run("Aborted", StartTime=at(10), EndTime=at(20))["Id"]
    for status in ("Completed", "Ready", "Ready", "Ready"):
        org.state.add_item(run_id, status)
    return run_id


async def test_archiving_an_aborted_run_keeps_aborted_in_every_later_process(
    org: Org, build: Any, tmp_path: Path
) -> None:
    stopped = archived_abort(org)
    # Aborted before any item was made: neither the record nor its items tell.
    bare = org.state.add_run("Aborted", StartTime=at(40), EndTime=at(41))["Id"]
    async with build() as sf:
        await polled(sf, None)
        for run_id in (stopped, bare):
            result = await sf.archive(run_id)
            assert (result.run.status, result.run.archived) == (Status.ABORTED, True)
    state = tmp_path / "jobwatch-state" / "sf.json"
    assert state.stat().st_mode & 0o777 == 0o600
    assert (state.parent.stat().st_mode & 0o777) == 0o700
    async with build() as later:  # a new process: nothing cached
        runs = {r.id: r for r in (await polled(later, None)).runs}
        for run_id in (stopped, bare):
            run = runs[run_id]
            assert (run.status, run.status_raw, run.archived) == (Status.ABORTED, "Archived", True)
            assert (await later.get(run_id)).status is Status.ABORTED
    state.unlink()  # without what jobwatch remembered, only the items can tell
    async with build() as forgetful:
        runs = {r.id: r for r in (await polled(forgetful, None)).runs}
    assert runs[stopped].status is Status.ABORTED and runs[bare].status is Status.UNKNOWN


async def test_a_run_first_seen_archived_takes_its_outcome_from_its_items(
    org: Org, build: Any
) -> None:
    stopped = archived_abort(org)
    org.state.update(stopped, Status="Archived")  # archived in Salesforce, not by jobwatch
    org.state.update(org.done, Status="Archived")  # 3 of 4 items done, 1 failed
    all_failed = org.state.add_run("Archived", EndTime=at(30))["Id"]
    org.state.add_item(all_failed, "Failed")
    async with build() as sf:
        runs = {run.id: run for run in (await polled(sf, None)).runs}
    assert runs[stopped].status is Status.ABORTED  # items left unprocessed, EndTime or not
    assert runs[stopped].progress == Progress(total=4, succeeded=1, failed=0, pending=3)
    assert (runs[org.done].status, runs[org.done].partial) == (Status.SUCCEEDED, True)
    assert runs[all_failed].status is Status.FAILED
    assert all(runs[i].archived for i in (stopped, org.done, all_failed))


async def test_lists_show_progress_of_active_runs_with_one_count_per_poll(
    org: Org, build: Any
) -> None:
    async with build() as sf:
        first = await polled(sf, None)
        running = next(r for r in first.runs if r.id == org.running)
        assert running.progress == Progress(total=3, succeeded=2, failed=0, pending=1)
        # An item finishes; the run record itself does not change.
        ready = next(i for i in org.state.items if i["AiJobRunId"] == org.running)
        ready["Status"] = "Failed"
        before = len(org.state.requests)
        delta = await polled(sf, first.cursor)
        (changed,) = delta.runs
        assert changed.id == org.running and changed.progress is not None
        assert changed.progress.failed == 1
    asked = [s.query["q"] for s in org.state.requests[before:]]
    assert len(asked) == 2 and "GROUP BY AiJobRunId, Status" in asked[1]


async def test_a_run_committed_late_with_an_earlier_stamp_is_not_missed(
    org: Org, build: Any
) -> None:
    async with build() as sf:
        first = await polled(sf, None)
        late = org.state.commit_late("Completed", back=90, EndTime=at(3))
        delta = await polled(sf, first.cursor)
        assert [run.id for run in delta.runs] == [late]
        again = await polled(sf, delta.cursor)
        assert again.runs == []  # read again by the overlap, unchanged: no change


async def test_deleted_runs_are_marked_deleted_once(org: Org, build: Any) -> None:
    async with build() as sf:
        sf.deleted_every = 0  # ask getDeleted on every poll
        first = await polled(sf, None)
        org.state.delete(org.done)
        delta = await polled(sf, first.cursor)
        (gone,) = delta.runs
        assert gone.id == org.done and gone.deleted
        assert gone.status is Status.SUCCEEDED  # the outcome it had is kept
        assert (await polled(sf, delta.cursor)).runs == []  # marked once
        asked = org.state.seen("/services/data/v63.0/sobjects/AiJobRun/deleted/")
        assert len(asked) == 2
        assert asked[0].param("start") is not None and asked[0].param("end") is not None
        # Re-reading a deleted run: the cached one, marked, not an error.
        assert (await sf.get(org.done)).deleted


async def test_a_huge_error_message_is_cut_with_a_visible_count(org: Org, build: Any) -> None:
    huge = "x" * 204_835
    org.state.update(org.failed, ErrorMessage=huge)
    async with build() as sf:
        run = next(r for r in (await polled(sf, None)).runs if r.id == org.failed)
    assert run.error is not None and run.error.message is not None
    assert run.error.message.endswith("… (194,835 more characters)")
    assert len(run.error.message) < 10_100


async def test_a_prefix_resolves_among_the_runs_seen_in_a_fresh_process(
    org: Org, build: Any
) -> None:
    async with build() as sf:
        run = await sf.get(org.done[:16])  # not an id; no poll before: the sync finds it
        assert run.id == org.done
        with pytest.raises(AmbiguousRunId, match="matches 6 runs in sf: 0XJ5g0000000001AAA") as e:
            await sf.get("0XJ5g")
        assert e.value.exit_code == 2


async def test_an_org_that_refuses_item_counts_still_lists_its_runs(org: Org, build: Any) -> None:
    org.state.fault(403, "insufficient access", times=None, query="AiJobRunItem")
    async with build() as sf:
        first = await polled(sf, None)
        assert len(first.runs) == 6 and all(run.progress is None for run in first.runs)
        await polled(sf, first.cursor)
    counts = [s for s in org.state.requests if "AiJobRunItem" in s.query.get("q", "")]
    assert len(counts) == 1  # refused once: not asked again on every poll
