"""Rerun in the one rules module: who may, the question (default No), the refusals."""

from __future__ import annotations

import pytest
from test_rules import Declared, row

from jobwatch.core import RunRow, Status
from jobwatch.core.rules import BASIC_ACTIONS, Action, Capabilities, Target, plan, refusal
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.postgres.store import PostgresStore
from jobwatch.sources.vendors.intuned import IntunedSource
from jobwatch.sources.vendors.matatika import MatatikaSource


def test_rerun_is_opt_in() -> None:
    assert Action.RERUN not in Capabilities().actions and Capabilities().actions == BASIC_ACTIONS
    for source in (SqliteStore, MatatikaSource, IntunedSource):
        assert source.CAPABILITIES.supports(Action.RERUN), source
    for source in (HttpSource, PostgresStore):
        assert not source.CAPABILITIES.supports(Action.RERUN), source


def test_the_rerun_question_says_what_it_does_there_and_defaults_to_no() -> None:
    local = Declared("local", SqliteStore.CAPABILITIES)
    decided = plan(Action.RERUN, [Target(row("r1", Status.FAILED), local, "nightly", "✗")])
    assert decided.allowed == (0,) and decided.confirmation is not None
    text = decided.confirmation.text()
    assert text.startswith("Rerun 1 run?") and text.endswith("Default is No.")
    assert "same working directory" in text and "rerun_of" in text
    assert decided.confirmation.yes_label == "Rerun 1"


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.SUCCEEDED, True),
        (Status.FAILED, True),
        (Status.ABORTED, True),
        (Status.UNKNOWN, True),
        (Status.RUNNING, False),
        (Status.QUEUED, False),
    ],
)
def test_only_a_run_that_is_over_may_be_rerun(status: Status, allowed: bool) -> None:
    local = Declared("local", SqliteStore.CAPABILITIES)
    why = refusal(Action.RERUN, row("r1", status), local)
    assert (why is None) is allowed
    if not allowed:
        assert why is not None and "abort it first" in why


def test_read_only_and_sources_without_rerun_say_why() -> None:
    local = Declared("local", SqliteStore.CAPABILITIES)
    run: RunRow = row("r1", Status.FAILED)
    assert "read-only mode" in (refusal(Action.RERUN, run, local, read_only=True) or "")
    shared = refusal(Action.RERUN, run, Declared("pg", PostgresStore.CAPABILITIES))
    assert shared is not None and "keeps no command lines" in shared
    served = refusal(Action.RERUN, run, Declared("remote", HttpSource.CAPABILITIES))
    assert served is not None and "jobwatch serve never sends a command line" in served
