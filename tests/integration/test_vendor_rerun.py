"""Rerun through a vendor's API where it has one (Matatika, Intuned), refused with
the reason elsewhere: the adapters against their stand-ins on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobwatch.core import Action, Status
from jobwatch.core.errors import TransitionRefused
from jobwatch.core.rules import Target, plan
from jobwatch.sources.poller import Poller
from standins import intuned, letta, matatika, modzy, salesforce
from standins.contract import VendorUpstream


async def seeded(up: VendorUpstream) -> list[str]:
    """An active run, then a failed one: their ids."""
    return [(await up.seed(status)).id for status in (up.active, Status.FAILED)]


async def test_matatika_starts_the_pipeline_again(tmp_path: Path) -> None:
    async with matatika.Contract(tmp_path) as up:
        active, failed = await seeded(up)
        async with up.build() as source:
            await source.changes(None)
            # One job per pipeline at a time: Matatika's own refusal comes back.
            with pytest.raises(TransitionRefused, match="already running"):
                await source.rerun(failed, "tester")
            await up.change(up_seeded(active))
            async with Poller([source], keep=True, mode="runs") as poller:
                await poller.poll_once()
                result = await poller.act(Action.RERUN, failed, by="tester")
                assert poller.get_run(poller.key_for(result.run.id)) == result.run  # at once
        new = result.run
        assert new.id.startswith("mt-started-") and new.id in up.standin.jobs
        assert new.status is Status.QUEUED and new.status_raw == "QUEUED"
        assert new.metadata is not None and new.metadata["rerun_of"] == failed
        assert "started pipeline" in result.message
        posts = [r.path for r in up.standin.calls("POST")]
        assert posts == [f"/api/pipelines/{matatika.PIPELINE}/jobs"] * 2


def up_seeded(run_id: str) -> object:
    from standins.contract import Seeded

    return Seeded(run_id, Status.RUNNING, "RUNNING")


async def test_intuned_triggers_the_job(tmp_path: Path) -> None:
    async with intuned.Contract(tmp_path) as up:
        _, failed = await seeded(up)
        async with up.build() as source:
            await source.changes(None)
            result = await source.rerun(failed, "tester")
        new = result.run
        assert new.id == f"{intuned.CONTRACT_JOB}-triggered-3"
        assert new.status_raw == "PENDING" and new.job == intuned.CONTRACT_JOB  # read back at once
        assert new.metadata is not None and new.metadata["rerun_of"] == failed
        assert "Job triggered successfully." in result.message
        trigger = f"/projects/{intuned.PROJECT}/jobs/{intuned.CONTRACT_JOB}/trigger"
        assert [r.path for r in up.standin.calls("POST")] == [
            f"/api/v1/workspace/{intuned.WORKSPACE}{trigger}"
        ]


async def test_a_live_run_and_read_only_are_refused_before_any_call(tmp_path: Path) -> None:
    async with intuned.Contract(tmp_path) as up:
        active, failed = await seeded(up)
        async with up.build() as source:
            await source.changes(None)
            with pytest.raises(TransitionRefused, match="abort it first"):
                await source.rerun(active, "tester")
        async with up.build(read_only=True) as source:
            await source.changes(None)
            with pytest.raises(TransitionRefused, match="read-only"):
                await source.rerun(failed, "tester")
        assert up.standin.calls("POST") == []


@pytest.mark.parametrize(
    ("factory", "why"),
    [
        (salesforce.Contract, "an AiJobRun runs once"),
        (letta.Contract, "Letta has no call to start a run, job or batch again"),
        (modzy.Contract, "Modzy has no call to run a job again"),
    ],
)
async def test_systems_without_a_rerun_refuse_with_the_reason(
    tmp_path: Path, factory: type[VendorUpstream], why: str
) -> None:
    async with factory(tmp_path) as up:
        _, failed = await seeded(up)
        async with up.build() as source:
            first = await source.changes(None)
            run = next(r for r in first.runs if r.id == failed)
            decided = plan(Action.RERUN, [Target(run, source)])
            assert decided.allowed == () and decided.confirmation is None
            assert why in decided.refused[0] and f"source {source.name}" in decided.refused[0]
            with pytest.raises(TransitionRefused, match=why):
                await source.rerun(failed, "tester")
        assert up.standin.writes() == []  # refused before any call went out
