"""The normalized model and the one transition table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobwatch.core import Action, Progress, Run, Status, allowed, check, refusal
from jobwatch.core.errors import TransitionRefused

EXPECTED_FIELDS = [
    "id",
    "source",
    "job",
    "label",
    "type",
    "status",
    "status_raw",
    "created_at",
    "queued_at",
    "started_at",
    "ended_at",
    "updated_at",
    "progress",
    "error",
    "reason",
    "exit_code",
    "owner",
    "config",
    "metadata",
    "callback",
    "ttft_ms",
    "duration_ms",
    "archived",
    "partial",
    "deleted",
]


def run(status: Status, **kw: object) -> Run:
    return Run(id="run-0123456789ab", source="local", status=status, **kw)


def test_json_field_names_are_exactly_the_normalized_model() -> None:
    data = run(Status.RUNNING).model_dump(mode="json")
    assert list(data) == EXPECTED_FIELDS
    full = Run.model_validate(
        {"id": "x", "source": "s", "progress": {}, "error": {}, "reason": {}, "callback": {}}
    ).model_dump(mode="json")
    assert list(full["progress"]) == ["total", "succeeded", "failed", "pending"]
    assert list(full["error"]) == [
        "code",
        "message",
        "category",
        "correlation_id",
        "doc_url",
        "retriable",
    ]
    assert list(full["reason"]) == ["type", "message", "doc_url"]
    assert list(full["callback"]) == ["url", "sent_at", "status_code", "error"]


def test_status_values() -> None:
    assert [s.value for s in Status] == [
        "new",
        "queued",
        "running",
        "paused",
        "succeeded",
        "failed",
        "aborted",
        "timed_out",
        "unknown",
    ]


@pytest.mark.parametrize("status", list(Status))
def test_abort_allowed_only_before_the_end(status: Status) -> None:
    expected = status in {Status.NEW, Status.QUEUED, Status.RUNNING, Status.PAUSED}
    assert allowed(Action.ABORT, run(status)) is expected


@pytest.mark.parametrize("status", list(Status))
def test_archive_allowed_only_once_settled(status: Status) -> None:
    expected = status not in {Status.NEW, Status.QUEUED, Status.RUNNING, Status.PAUSED}
    assert allowed(Action.ARCHIVE, run(status)) is expected


def test_refusals_say_why() -> None:
    assert refusal(Action.ARCHIVE, run(Status.RUNNING)) == (
        "cannot archive run-0123456789ab: it is still running"
    )
    assert refusal(Action.ABORT, run(Status.SUCCEEDED)) == (
        "cannot abort run-0123456789ab: it has already succeeded"
    )
    assert refusal(Action.ARCHIVE, run(Status.FAILED, archived=True)) == (
        "cannot archive run-0123456789ab: it is already archived"
    )
    assert refusal(Action.UNARCHIVE, run(Status.FAILED)) == (
        "cannot unarchive run-0123456789ab: it is not archived"
    )
    with pytest.raises(TransitionRefused, match="still queued"):
        check(Action.ARCHIVE, run(Status.QUEUED))


def test_archiving_keeps_the_outcome() -> None:
    archived = run(Status.FAILED).evolve(archived=True)
    assert archived.status is Status.FAILED and archived.archived
    assert allowed(Action.UNARCHIVE, archived)
    assert archived.evolve(archived=False).status is Status.FAILED


def test_partial_and_duration_are_derived() -> None:
    r = run(
        Status.SUCCEEDED,
        progress=Progress(total=10, succeeded=8, failed=2),
        started_at=datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        ended_at=datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC),
    )
    assert r.partial is True
    assert r.duration_ms == 90_000
    assert run(Status.FAILED, progress=Progress(total=1, failed=1)).partial is False
    moved = r.evolve(ended_at=datetime(2024, 1, 1, 0, 2, tzinfo=UTC))
    assert moved.duration_ms == 120_000


def test_times_without_zone_are_utc() -> None:
    r = Run.model_validate({"id": "x", "source": "s", "started_at": "2024-04-10T14:16:37.404"})
    assert r.started_at == datetime(2024, 4, 10, 14, 16, 37, 404000, tzinfo=UTC)


def test_short_id() -> None:
    assert run(Status.NEW).short_id == "run-01234567"
    assert Run(id="0XjAbCdEfGhIjKlMnO", source="s").short_id == "0XjAbCdEfGhI"
