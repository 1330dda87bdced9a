"""The Modzy adapter against a stand-in of its API, served on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import polled
from jobwatch.config import parse_config
from jobwatch.core import RecordError, Run, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.core.redact import clean
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors.modzy import (
    STATUS_MAP,
    ModzyConfig,
    ModzySource,
    modzy_auth,
    modzy_time,
    parse_job,
)
from standins.modzy import API_KEY, ModzyStandIn, input_failure, input_result, read_time
from standins.server import AsgiServer, serving

SECRETS = ("jU7q896uSReJcXXDOS6P", "sarah.connor@example.com", "Sarah", "Connor")

TABLE_72 = {
    "OPEN": Status.NEW,
    "SUBMITTED": Status.QUEUED,
    "PENDING": Status.QUEUED,
    "IN_PROGRESS": Status.RUNNING,
    "COMPLETED": Status.SUCCEEDED,
    "CANCELED": Status.ABORTED,
    "TIMEDOUT": Status.TIMED_OUT,
    "ERROR": Status.FAILED,
}
"""vendor-apis.md §7.2, Modzy row, written out independently of the adapter."""


@contextmanager
def standin(**options: Any) -> Iterator[tuple[ModzyStandIn, AsgiServer]]:
    modzy = ModzyStandIn(**options)
    with serving(modzy.app) as server:
        yield modzy, server


@asynccontextmanager
async def source(
    server: AsgiServer,
    tmp_path: Path | None = None,
    *,
    key: str = API_KEY,
    **options: Any,
) -> AsyncIterator[ModzySource]:
    api = ApiClient(server.url + "/api", name="mdz", headers=lambda: modzy_auth("mdz", None)(key))
    flags = tmp_path / "flags.db" if tmp_path is not None else None
    async with ModzySource("mdz", api, flags_path=flags, **options) as opened:
        yield opened


# -- polling ------------------------------------------------------------------------


async def test_first_sync_maps_jobs_and_asks_history_as_documented(tmp_path: Path) -> None:
    with standin() as (modzy, server):
        jobs = [modzy.add_job("COMPLETED") for _ in range(4)] + [modzy.add_job("IN_PROGRESS")]
        async with source(server, tmp_path, page_size=2) as mdz:
            first = await polled(mdz, None)
        assert sorted(r.id for r in first.runs) == sorted(j["jobIdentifier"] for j in jobs)
        assert first.errors == []

        calls = modzy.history_calls()
        assert len(calls) == 3  # 2 + 2 + 1, following Link rel="next"
        q = calls[0].query
        assert (q["sort-by"], q["direction"], q["per-page"]) == ("updatedAt", "DESC", "2")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", q["startDate"])
        window = datetime.now(UTC) - read_time(q["startDate"])
        assert timedelta(days=29, hours=23) < window < timedelta(days=30, hours=1)
        assert "page" not in q  # the server's own first page, whatever its base
        assert [c.query.get("page") for c in calls[1:]] == ["2", "3"]
        assert {c.headers["authorization"] for c in modzy.requests} == {f"ApiKey {API_KEY}"}

        run = next(r for r in first.runs if r.id == jobs[0]["jobIdentifier"])
        submitted = read_time(jobs[0]["submittedAt"])
        assert run.status is Status.SUCCEEDED and run.status_raw == "COMPLETED"
        assert (run.job, run.label, run.owner) == ("ed542963de@1.0.1", "Sentiment", "usr-55aa")
        assert run.created_at == read_time(jobs[0]["createdAt"])
        assert run.queued_at == submitted
        assert run.started_at == submitted + timedelta(milliseconds=800)
        assert run.ended_at == submitted + timedelta(milliseconds=800 + 4200)
        assert run.duration_ms == 4200
        assert run.progress is not None and run.progress.total == 3
        assert (run.progress.succeeded, run.progress.failed, run.progress.pending) == (3, 0, 0)
        assert not run.partial and run.error is None
        assert run.config == {
            "explain": False,
            "timeout": 600000,
            "imageClassificationModel": False,
            "inputByteAmount": 12345,
            "hoursDeleteInput": 24,
        }
        assert run.metadata is not None and run.metadata["inputs"] == 3

        running = next(r for r in first.runs if r.id == jobs[4]["jobIdentifier"])
        assert running.status is Status.RUNNING
        assert running.started_at is not None and running.ended_at is None
        assert running.duration_ms is None  # ticks from started_at, not a stale number


@pytest.mark.parametrize("page_base", [0, 1])
@pytest.mark.parametrize("link_header", [True, False])
async def test_either_page_base_with_or_without_link(page_base: int, link_header: bool) -> None:
    with standin(page_base=page_base, link_header=link_header) as (modzy, server):
        jobs = [modzy.add_job("COMPLETED") for _ in range(5)]
        async with source(server, page_size=2) as mdz:
            first = await polled(mdz, None)
        ids = [r.id for r in first.runs]
        assert sorted(ids) == sorted(j["jobIdentifier"] for j in jobs)
        assert len(ids) == len(set(ids))
        # Without links a 1-based server costs one extra call (page 1 repeats page one).
        assert len(modzy.history_calls()) <= 3 + (not link_header and page_base == 1)


async def test_first_sync_is_bounded_by_max_runs() -> None:
    with standin() as (modzy, server):
        jobs = [modzy.add_job("COMPLETED") for _ in range(7)]
        async with source(server, page_size=2, max_runs=3) as mdz:
            first = await polled(mdz, None)
        newest = {j["jobIdentifier"] for j in jobs[-3:]}
        assert {r.id for r in first.runs} == newest
        assert len(modzy.history_calls()) == 2
        assert all(int(c.query["per-page"]) <= 2 for c in modzy.history_calls())


async def test_incremental_poll_reads_one_page_from_the_cursor() -> None:
    with standin() as (modzy, server):
        old = [modzy.add_job("COMPLETED") for _ in range(4)]
        active = modzy.add_job("IN_PROGRESS")
        later = [modzy.add_job("COMPLETED") for _ in range(5)]
        async with source(server, page_size=4) as mdz:
            first = await polled(mdz, None)
            assert len(first.runs) == 10
            first_calls = len(modzy.history_calls())
            assert first_calls == 3

            idle = await polled(mdz, first.cursor)
            assert idle.runs == [] and idle.errors == []

            modzy.update(active["jobIdentifier"], status="COMPLETED", completed=2, failed=1)
            fresh = modzy.add_job("SUBMITTED")
            delta = await polled(mdz, idle.cursor)

        got = {r.id: r for r in delta.runs}
        assert set(got) == {active["jobIdentifier"], fresh["jobIdentifier"]}
        done = got[active["jobIdentifier"]]
        assert done.status is Status.SUCCEEDED and done.partial
        assert got[fresh["jobIdentifier"]].status is Status.QUEUED

        incremental = modzy.history_calls()[first_calls + 1 :]
        # Two pages of four (the stand-in's jobs are two minutes apart): then jobs
        # older than the cursor less its five-minute overlap, so paging stops.
        assert len(incremental) == 2
        q = incremental[0].query
        assert q["sort-by"] == "updatedAt" and q["direction"] == "DESC"
        since = read_time(q["startDate"])
        # Narrowed from the 30-day window to the oldest job that could still change.
        assert since == read_time(active["createdAt"])
        assert since > read_time(old[-1]["createdAt"])
        # Seven jobs match that date; the second page of four ends below the overlap.
        assert sum(read_time(j["createdAt"]) >= since for j in modzy.jobs.values()) == 7
        assert len(later) == 5


async def test_malformed_records_become_error_rows_and_the_rest_arrive() -> None:
    with standin() as (modzy, server):
        good = modzy.add_job("COMPLETED")
        bad = {**good, "jobIdentifier": "bad-time", "createdAt": "yesterday-ish"}
        modzy.raw_history += [bad, "not a job", {"jobIdentifier": 42, "status": "COMPLETED"}]
        async with source(server, page_size=50) as mdz:
            first = await polled(mdz, None)
        assert [r.id for r in first.runs] == [good["jobIdentifier"]]
        by_id = {e.id: e for e in first.errors}
        assert len(first.errors) == 3
        assert "createdAt is not a date-time" in by_id["bad-time"].message
        assert "no jobIdentifier" in by_id["42"].message
        assert all("unreadable Modzy job" in e.message for e in first.errors)
        for err in first.errors:  # the error row shows neither the key nor the person
            assert not any(s in err.model_dump_json() for s in SECRETS)


async def test_next_page_link_to_another_host_is_not_followed() -> None:
    with standin(link_base="evil.example:80") as (modzy, server):
        for _ in range(3):
            modzy.add_job("COMPLETED")
        async with source(server, page_size=2) as mdz:
            first = await polled(mdz, None)
        assert len(first.runs) == 2
        assert any("another host" in e.message for e in first.errors)
        assert len(modzy.history_calls()) == 1


# -- mapping of finished runs --------------------------------------------------------


async def test_finished_runs_map_error_reason_and_progress() -> None:
    with standin() as (modzy, server):
        partial = modzy.add_job("COMPLETED", total=5, completed=3, failed=2, pending=0)
        error = modzy.add_job("ERROR", total=2, completed=0, failed=2, pending=0)
        timed = modzy.add_job("TIMEDOUT", timeout=30000)
        canceled = modzy.add_job("CANCELED")
        opened = modzy.add_job("OPEN")
        async with source(server) as mdz:
            runs = {r.id: r for r in (await polled(mdz, None)).runs}

    run = runs[partial["jobIdentifier"]]
    assert run.status is Status.SUCCEEDED and run.partial
    assert run.progress is not None
    assert (run.progress.total, run.progress.succeeded, run.progress.failed) == (5, 3, 2)
    assert run.error is not None and run.error.message is not None
    assert "2 of 5 inputs failed" in run.error.message and run.error.category == "inputs"

    run = runs[error["jobIdentifier"]]
    assert run.status is Status.FAILED and not run.partial
    assert run.error is not None and run.error.code == "ERROR"
    assert "2 of 2 inputs failed" in (run.error.message or "")

    run = runs[timed["jobIdentifier"]]
    assert run.status is Status.TIMED_OUT
    assert run.reason is not None and run.reason.type == "timeout"
    assert "30000 ms" in (run.reason.message or "")

    run = runs[canceled["jobIdentifier"]]
    assert run.status is Status.ABORTED and run.reason is not None
    assert run.reason.type == "canceled"

    run = runs[opened["jobIdentifier"]]
    assert run.status is Status.NEW and run.started_at is None
    assert run.reason is not None and "closed" in (run.reason.message or "")


# -- detail, logs, actions -----------------------------------------------------------


async def test_get_reads_the_job_details() -> None:
    with standin() as (modzy, server):
        job = modzy.add_job("IN_PROGRESS")
        async with source(server) as mdz:
            await polled(mdz, None)
            modzy.update(job["jobIdentifier"], status="COMPLETED", completed=3, pending=0)
            run = await mdz.get(job["jobIdentifier"][:8])  # a prefix resolves
            assert run.status is Status.SUCCEEDED
            assert modzy.requests[-1].path == f"/api/jobs/{job['jobIdentifier']}"
            with pytest.raises(RunNotFound):
                await mdz.get("00000000-no-such-job")


async def test_logs_are_the_per_input_results() -> None:
    with standin() as (modzy, server):
        job = modzy.add_job("COMPLETED", total=3, completed=2, failed=1, pending=0)
        empty = modzy.add_job("COMPLETED")
        at = read_time(job["submittedAt"])
        modzy.set_results(
            job["jobIdentifier"],
            {
                "input-0": input_result(at + timedelta(seconds=1)),
                "input-1": input_result(at + timedelta(seconds=2)),
            },
            {"input-2": input_failure(at + timedelta(seconds=3), "Input text is empty")},
            finished=True,
        )
        async with source(server) as mdz:
            await polled(mdz, None)
            lines = await mdz.log_lines(job["jobIdentifier"])
            assert [ln.seq for ln in lines] == [1, 2, 3, 4]
            assert lines[0].text.startswith("input input-0: SUCCESSFUL in 120 ms")
            assert "outputs: results.json" in lines[0].text
            assert lines[2].level == "error"
            assert lines[2].text == "input input-2 failed: Input text is empty"
            assert lines[3].text == "job finished: 3 total, 2 completed, 1 failed"
            assert await mdz.first_error(job["jobIdentifier"]) == 3
            assert modzy.requests[-1].path == f"/api/results/{job['jobIdentifier']}"

            # No results (Modzy answers 204): one plain line says so.
            plain = await mdz.log_tail(empty["jobIdentifier"], 10)
            assert [ln.text for ln in plain] == ["Modzy has no per-input results for this job"]


async def test_log_lines_keep_their_numbers_as_results_arrive() -> None:
    with standin() as (modzy, server):
        job = modzy.add_job("IN_PROGRESS", total=2)
        at = read_time(job["submittedAt"])
        async with source(server) as mdz:
            run = (await polled(mdz, None)).runs[0]
            lines = await mdz.fetch_logs(run, 0)
            assert [ln.text for ln in lines] == [
                "no input has finished yet; each input's result appears here as it finishes"
            ]
            modzy.set_results(job["jobIdentifier"], {"b": input_result(at)})
            lines = await mdz.fetch_logs(run, 1)
            assert [(ln.seq, ln.text[:9]) for ln in lines] == [(2, "input b: ")]
            # "a" finished earlier than "b" but arrives later: it still goes last.
            modzy.set_results(
                job["jobIdentifier"],
                {"a": input_result(at - timedelta(seconds=9)), "b": input_result(at)},
            )
            lines = await mdz.fetch_logs(run, 2)
            assert [(ln.seq, ln.text[:9]) for ln in lines] == [(3, "input a: ")]
            # Read again from the start, the inputs keep their numbers.
            assert [ln.seq for ln in await mdz.fetch_logs(run, 0)] == [2, 3]


async def test_abort_cancels_through_delete_and_surfaces_refusals() -> None:
    with standin() as (modzy, server):
        running = modzy.add_job("IN_PROGRESS")
        guarded = modzy.add_job("SUBMITTED")
        done = modzy.add_job("COMPLETED")
        async with source(server) as mdz:
            await polled(mdz, None)

            result = await mdz.abort(running["jobIdentifier"], by="test")
            assert modzy.jobs[running["jobIdentifier"]]["status"] == "CANCELED"
            assert result.run.status is Status.ABORTED
            assert "Modzy is canceling" in result.message
            deletes = [s for s in modzy.requests if s.method == "DELETE"]
            assert [s.path for s in deletes] == [f"/api/jobs/{running['jobIdentifier']}"]

            modzy.fault(403, "Auditors can not cancel jobs", method="DELETE")
            with pytest.raises(TransitionRefused, match="Auditors can not cancel jobs"):
                await mdz.abort(guarded["jobIdentifier"], by="test")
            assert modzy.jobs[guarded["jobIdentifier"]]["status"] == "SUBMITTED"

            before = len(modzy.requests)
            with pytest.raises(TransitionRefused, match="already succeeded"):
                await mdz.abort(done["jobIdentifier"], by="test")
            assert all(s.method != "DELETE" for s in modzy.requests[before:])


async def test_abort_of_a_job_that_finished_meanwhile_shows_modzys_answer() -> None:
    with standin() as (modzy, server):
        job = modzy.add_job("IN_PROGRESS")
        async with source(server) as mdz:
            run = (await polled(mdz, None)).runs[0]
            modzy.update(job["jobIdentifier"], status="COMPLETED")
            with pytest.raises(TransitionRefused, match="can't be canceled: it is COMPLETED"):
                await mdz.remote_abort(run, by="test")


# -- auth, secrets, throttling, config -----------------------------------------------


async def test_wrong_key_fails_the_source_without_showing_the_key() -> None:
    wrong = "mdz-wrong.ZYXWVUTSRQ9876543210"
    with standin() as (modzy, server):
        modzy.add_job()
        async with source(server, key=wrong) as mdz:
            with pytest.raises(SourceError) as caught:
                await polled(mdz, None)
            assert wrong not in repr(mdz) and wrong not in repr(mdz.api)
        assert "The API key is missing or misspelled" in str(caught.value)
        assert wrong not in str(caught.value)
        assert modzy.requests[0].headers["authorization"] == f"ApiKey {wrong}"


async def test_sensitive_fields_never_reach_a_run() -> None:
    with standin() as (modzy, server):
        modzy.add_job("COMPLETED", input={"type": "aws-s3", "secretAccessKey": "s3cr3t-V4lue"})
        nouser = modzy.add_job("COMPLETED", user={"email": "jane.doe@example.com"}, team=None)
        keyonly = modzy.add_job("COMPLETED", user=None)
        async with source(server) as mdz:
            runs = {r.id: r for r in (await polled(mdz, None)).runs}
    for run in runs.values():
        dumped = run.model_dump_json()
        for secret in (*SECRETS, "s3cr3t-V4lue", "jane.doe@example.com"):
            assert secret not in dumped
    assert runs[nouser["jobIdentifier"]].owner == "***@example.com"  # the one e-mail format
    assert runs[keyonly["jobIdentifier"]].owner == "API key ***"
    assert runs[keyonly["jobIdentifier"]].metadata["submittedBy"] == "***"  # type: ignore[index]


CONFIG = """
[sources.my-modzy]
kind = "modzy"
url = "{url}"
token_env = "MODZY_TEST_API_KEY"
page_size = 2
max_runs = 50
lookback_days = 7
flags_store = "{flags}"
"""


@pytest.mark.parametrize("suffix", ["", "/api", "/api/"])
async def test_build_from_a_config_file(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with standin() as (modzy, server):
        job = modzy.add_job("COMPLETED")
        text = CONFIG.format(url=server.url + suffix, flags=tmp_path / "flags.db")
        config = parse_config(text)
        assert config.warnings == []
        conf = config.sources["my-modzy"]
        assert isinstance(conf, ModzyConfig)
        monkeypatch.setenv("MODZY_TEST_API_KEY", API_KEY)
        mdz = conf.build("my-modzy", read_only=True)
        assert isinstance(mdz, ModzySource) and mdz.read_only
        assert (mdz.page_size, mdz.max_runs, mdz.lookback_days) == (2, 50, 7)
        assert API_KEY not in repr(conf) and API_KEY not in repr(mdz)
        async with mdz:
            runs = (await polled(mdz, None)).runs
        assert [r.id for r in runs] == [job["jobIdentifier"]]
        assert modzy.history_calls()[0].headers["authorization"] == f"ApiKey {API_KEY}"
        since = read_time(modzy.history_calls()[0].query["startDate"])
        assert timedelta(days=6) < datetime.now(UTC) - since < timedelta(days=8)


async def test_team_token_is_sent_as_bearer_with_the_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with standin(team_id="team-9") as (modzy, server):
        modzy.add_job("COMPLETED")
        config = parse_config(
            CONFIG.format(url=server.url, flags=tmp_path / "f.db") + 'team_id = "team-9"\n'
        )
        monkeypatch.setenv("MODZY_TEST_API_KEY", API_KEY)
        async with config.sources["my-modzy"].build("my-modzy") as mdz:
            assert len((await polled(mdz, None)).runs) == 1
        headers = modzy.requests[0].headers
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert headers["modzy-team-id"] == "team-9"


async def test_missing_token_env_fails_this_source_only(tmp_path: Path) -> None:
    text = CONFIG.format(url="http://127.0.0.1:9", flags=tmp_path / "f.db")
    text = text.replace("MODZY_TEST_API_KEY", "MODZY_TEST_UNSET_VARIABLE")
    mdz = parse_config(text).sources["my-modzy"].build("my-modzy")
    with pytest.raises(SourceError, match="MODZY_TEST_UNSET_VARIABLE is not set"):
        await mdz.open()
    await mdz.close()


# -- properties of the mapper --------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
FIELDS = (
    "jobIdentifier",
    "submittedBy",
    "accountIdentifier",
    "model",
    "status",
    "createdAt",
    "updatedAt",
    "submittedAt",
    "total",
    "pending",
    "completed",
    "failed",
    "elapsedTime",
    "queueTime",
    "timeout",
    "user",
    "team",
    "jobInputs",
    "explain",
    "inputByteAmount",
    "imageClassificationModel",
    "hoursDeleteInput",
    "jobType",
)
MAPPER = ModzySource("mdz", ApiClient("http://127.0.0.1:9", name="mdz"))


def valid_job(status: str = "COMPLETED") -> dict[str, Any]:
    return ModzyStandIn().add_job(status, failed=1, completed=2)


def _never_raises(raw: Any, *, secrets: tuple[str, ...] = ()) -> Run | RecordError:
    item = MAPPER.parse_safely(raw, "job")
    assert isinstance(item, Run | RecordError)
    dumped = item.model_dump_json()  # serializable, whatever came in
    assert not any(s in dumped for s in secrets)
    return item


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_never_raises(raw: Any) -> None:
    _never_raises(raw)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, json_values)))
def test_any_values_under_the_documented_keys_never_raise(raw: dict[str, Any]) -> None:
    _never_raises(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(TABLE_72)),
    st.sets(st.sampled_from(FIELDS)),
    st.integers(min_value=0, max_value=4000),
)
def test_truncated_valid_payloads_never_raise(status: str, drop: set[str], cut: int) -> None:
    job = valid_job(status)
    for key in drop:
        job.pop(key, None)
    _never_raises(job, secrets=SECRETS)
    text = json.dumps(job)[:cut]
    _never_raises(text)  # a body cut off in transit is a string, not a job
    with suppress(ValueError):
        _never_raises(json.loads(text))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(TABLE_72)),
    st.sampled_from([str.upper, str.lower, str.title]),
)
def test_every_documented_status_maps_as_in_the_table(raw: str, case: Any) -> None:
    job = valid_job(raw)
    job["status"] = case(raw)
    run = parse_job(job, "mdz")
    assert run.status is TABLE_72[raw]
    assert run.status_raw == case(raw)
    assert run.partial == (TABLE_72[raw] is Status.SUCCEEDED)  # failed=1 in valid_job
    assert run.ended_at is not None or not run.status.is_terminal


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20).filter(lambda s: _norm(s) not in STATUS_MAP))
def test_unknown_statuses_stay_unknown_with_their_raw_value(raw: str) -> None:
    job = valid_job()
    job["status"] = raw
    run = parse_job(job, "mdz")
    assert run.status is Status.UNKNOWN
    assert run.status_raw == clean(raw)


def _norm(raw: str) -> str:
    return raw.strip().upper().replace("-", "_").replace(" ", "_")


def test_the_status_map_covers_the_table() -> None:
    assert {k: STATUS_MAP[k] for k in TABLE_72} == TABLE_72
    assert modzy_time(datetime(2021, 8, 13, 7, 28, 3, 831999, UTC)) == "2021-08-13T07:28:03.831Z"


async def test_a_job_committed_late_with_an_earlier_stamp_is_not_missed() -> None:
    with standin() as (modzy, server):
        for _ in range(3):
            modzy.add_job("COMPLETED")
        async with source(server, page_size=10) as mdz:
            first = await polled(mdz, None)
            late = modzy.commit_late("COMPLETED", back=150)  # older than the newest seen
            delta = await polled(mdz, first.cursor)
            assert [run.id for run in delta.runs] == [late["jobIdentifier"]]
            again = await polled(mdz, delta.cursor)
            assert again.runs == []  # read again by the overlap, unchanged: no change
