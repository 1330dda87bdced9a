"""The one rules module: refusals in their order, and one question per action that
says what the action does in each source's system (from its declared capabilities)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jobwatch.core import RunRow, Status
from jobwatch.core.rules import Action, Capabilities, Target, plan, refusal
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.vendors.letta import LettaSource
from jobwatch.sources.vendors.matatika import MatatikaSource
from jobwatch.sources.vendors.salesforce import SalesforceSource


@dataclass
class Declared:
    """A source as the rules see it: its name, read-only flag and capabilities."""

    name: str
    capabilities: Capabilities
    read_only: bool = False


def row(run_id: str, status: Status, archived: bool = False) -> RunRow:
    r = RunRow.broken("s", run_id, "")
    r.status, r.archived, r.error = status, archived, None
    return r


LOCAL = Declared("local", SqliteStore.CAPABILITIES)
SERVED = Declared("build", HttpSource.CAPABILITIES)
SALESFORCE = Declared("sf", SalesforceSource.CAPABILITIES)
LETTA = Declared("letta", LettaSource.CAPABILITIES)
MATATIKA = Declared("mtk", MatatikaSource.CAPABILITIES)


@pytest.mark.parametrize(
    ("source", "says", "never"),
    [
        (LOCAL, "SIGTERM on its whole process group", "Salesforce"),
        (SERVED, "passes the abort to the run's owner", "Salesforce"),
        (SALESFORCE, "Status to Aborted", "SIGTERM"),
        (LETTA, "cancel", "SIGTERM"),
        (MATATIKA, "stopped", "SIGTERM"),
    ],
)
def test_the_abort_question_says_what_abort_does_in_that_system(
    source: Declared, says: str, never: str
) -> None:
    decided = plan(Action.ABORT, [Target(row("r1", Status.RUNNING), source, "nightly", "▶")])
    assert decided.allowed == (0,) and decided.confirmation is not None
    text = decided.confirmation.text()
    assert says in text and never not in text, text
    assert text.startswith("Abort 1 run?") and text.endswith("Default is No.")
    assert "This cannot be undone." in text


def test_runs_of_several_systems_each_name_their_own_effect() -> None:
    targets = [
        Target(row("r1", Status.RUNNING), LOCAL, "backup"),
        Target(row("r2", Status.RUNNING), SALESFORCE, "Case_Summary"),
        Target(row("r3", Status.SUCCEEDED), SALESFORCE, "Lead"),
    ]
    decided = plan(Action.ABORT, targets)
    assert decided.allowed == (0, 1)
    assert decided.refused == ("cannot abort r3: it has already succeeded",)
    question = decided.confirmation
    assert question is not None and question.title == "Abort 2 runs?"
    effects = "\n".join(question.effects)
    assert f"local: {LOCAL.capabilities.abort_effect}" in effects
    assert f"sf: {SALESFORCE.capabilities.abort_effect}" in effects
    assert question.skipped == decided.refused


def test_refusals_come_in_order_read_only_source_capability_state() -> None:
    finished = row("r1", Status.SUCCEEDED)
    read_only = Declared("ro", LOCAL.capabilities, read_only=True)
    assert "read-only mode" in (refusal(Action.ABORT, finished, LOCAL, read_only=True) or "")
    assert refusal(Action.ABORT, finished, read_only) == "cannot abort r1: source ro is read-only"
    archived = row("r2", Status.ABORTED, archived=True)
    assert refusal(Action.UNARCHIVE, archived, SALESFORCE) == (
        "cannot unarchive r2: source sf cannot unarchive runs"
    )
    assert refusal(Action.ABORT, finished, LOCAL) == "cannot abort r1: it has already succeeded"
    assert refusal(Action.ABORT, row("r3", Status.PAUSED), LOCAL) is None


def test_unarchive_asks_nothing_and_nothing_allowed_asks_nothing() -> None:
    archived = Target(row("r1", Status.FAILED, archived=True), LOCAL)
    assert plan(Action.UNARCHIVE, [archived]).confirmation is None
    running = Target(row("r2", Status.RUNNING), LOCAL)
    refused = plan(Action.ARCHIVE, [running])
    assert refused.allowed == () and refused.confirmation is None
    assert refused.refused == ("cannot archive r2: it is still running",)


def test_the_question_shows_an_id_from_outside_as_plain_text() -> None:
    """Run ids come from outside: the question printed to a terminal (CLI) or drawn
    in the dialog carries no control sequence, in the runs or the skipped lines."""
    hostile = "run-\x1b]0;pwned\x07x\x1b[2J"
    targets = [
        Target(row(hostile, Status.RUNNING), LOCAL, "job"),
        Target(row(hostile + "2", Status.FAILED), LOCAL, "job"),
    ]
    question = plan(Action.ABORT, targets).confirmation
    assert question is not None
    text = question.text()
    assert "\x1b" not in text and "\x07" not in text
    assert "run-x" in text and "cannot abort run-x2: it has already failed" in text


def test_runs_the_screen_hides_are_named_and_even_unarchive_asks() -> None:
    """Marks survive a filter change: a run acted on that the filter hides is named
    in its own section (once), and a hidden one makes even unarchive ask first."""
    shown = Target(row("run-a", Status.RUNNING), LOCAL, "a")
    hidden = Target(row("run-b", Status.RUNNING), LOCAL, "b", hidden=True)
    question = plan(Action.ABORT, [shown, hidden]).confirmation
    assert question is not None and question.title == "Abort 2 runs?"
    text = question.text()
    assert "Not on screen, hidden by the filter (1):\n  run-b  running  b" in text
    assert text.count("run-b") == 1 and "run-a  running  a" in text
    archived = Target(row("run-c", Status.FAILED, archived=True), LOCAL, "c")
    assert plan(Action.UNARCHIVE, [archived]).confirmation is None
    unseen = Target(row("run-c", Status.FAILED, archived=True), LOCAL, "c", hidden=True)
    asked = plan(Action.UNARCHIVE, [unseen]).confirmation
    assert asked is not None and "run-c" in asked.text()
