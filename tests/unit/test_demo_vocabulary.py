"""The demo speaks each seed system's words the way its adapter reads them."""

from __future__ import annotations

import importlib

import pytest

from jobwatch.apps.demo import FLAVOURS, Flavour
from jobwatch.core import Status


def adapter_map(key: str) -> dict[str, Status | None]:
    module = importlib.import_module(f"jobwatch.sources.vendors.{key}")
    mapping: dict[str, Status | None] = module.STATUS_MAP
    return {raw.casefold(): status for raw, status in mapping.items()}


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.key)
def test_demo_raw_statuses_map_like_the_adapter(flavour: Flavour) -> None:
    mapping = adapter_map(flavour.key)
    for status, raw in flavour.raw.items():
        assert mapping.get(raw.casefold()) is status, f"{flavour.key}: {raw} is not {status}"
    assert mapping.get(flavour.abort_raw.casefold()) is Status.ABORTED
