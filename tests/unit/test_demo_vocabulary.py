"""The demo speaks each seed system's words the way its adapter reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobwatch.apps.demo import FLAVOURS, Demo, Flavour
from jobwatch.core import Run, Status
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors import VENDORS, adapter, source_class

RECORDS: dict[str, tuple[dict[str, Any], str]] = {
    "salesforce": ({"Id": "0XJ5g0000000001AAA"}, "Status"),
    "letta": ({"id": "run-00000001", "agent_id": "agent-1"}, "status"),
    "intuned": ({"id": "r-1", "job_id": "job-1"}, "status"),
    "modzy": ({"jobIdentifier": "j-1"}, "status"),
    "matatika": ({"id": "j-1"}, "status"),
}
"""The least record each adapter reads, and where its raw status goes."""

BY_KEY = {flavour.key: flavour for flavour in FLAVOURS}


def read_back(kind: str, raw_status: str) -> Run:
    """``raw_status`` through the adapter's own mapper, as a poll would read it."""
    cls = source_class(kind)
    extra = {"jobs": ["job-1"]} if kind == "intuned" else {}
    extra |= {"workspace_id": "w"} if kind == "matatika" else {}
    source = cls(kind, ApiClient("http://127.0.0.1:9", name=kind), **extra)
    record, key = RECORDS[kind]
    return source.parse({**record, key: raw_status})


def test_the_demo_has_a_flavour_for_every_registered_vendor() -> None:
    assert sorted(BY_KEY) == sorted(VENDORS)


@pytest.mark.parametrize("kind", VENDORS)
def test_every_status_the_adapter_reads_has_a_demo_word_that_reads_back(kind: str) -> None:
    flavour = BY_KEY[kind]
    statuses = {s for s in adapter(kind).STATUS_MAP.values() if s is not None}
    assert set(flavour.raw) == statuses  # nothing missing, nothing invented
    for status, raw in flavour.raw.items():
        assert read_back(kind, raw).status is status, f"{kind}: {raw} is not {status}"
    assert read_back(kind, flavour.abort_raw).status is Status.ABORTED
    if flavour.archived_raw is not None:
        assert read_back(kind, flavour.archived_raw).archived


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.key)
def test_every_run_the_demo_makes_reads_back_as_its_status(flavour: Flavour) -> None:
    """The fallbacks too: a status a system has no word for becomes one it has."""
    demo = Demo(store=None, seed=7)  # type: ignore[arg-type]  # make_run never writes
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for status in Status:
        run = demo.make_run(flavour, status, created)
        assert run.status_raw is not None
        assert read_back(flavour.key, run.status_raw).status is run.status, (status, run)
