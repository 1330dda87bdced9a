"""SVG snapshots of the main screens at 80x24 and 160x48.

They are compared as text. After an intended change to the look, regenerate with
``JOBWATCH_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_snapshots.py`` and
review the SVGs (any browser shows them) before committing.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import loaded, make_app, ready, seed_store, settle

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def check(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("JOBWATCH_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(svg)
        if not os.environ.get("JOBWATCH_UPDATE_SNAPSHOTS"):
            pytest.fail(f"new snapshot {path.name} written: review it and run again")
        return
    assert svg == path.read_text(), f"{name} differs from {path} (see module docstring)"


async def select(app: JobwatchApp, pilot: Any, key: tuple[str, str]) -> None:
    assert app.main.query_one(RunsTable).select_key(key)
    await loaded(app, pilot)


async def main_screen(app: JobwatchApp, pilot: Any) -> None:
    pass


async def detail(app: JobwatchApp, pilot: Any) -> None:
    await select(app, pilot, ("intuned-demo", "7c663870-b99a-4c1e-9d7e-000000000003"))
    await pilot.press("2")


async def log_tail(app: JobwatchApp, pilot: Any) -> None:
    await select(app, pilot, ("local", "run-000000000002"))
    await pilot.press("3")
    await settle(app, pilot, "log-window")


async def confirm(app: JobwatchApp, pilot: Any) -> None:
    await pilot.press("a")


SCENES: dict[str, Callable[[JobwatchApp, Any], Awaitable[None]]] = {
    "main": main_screen,
    "detail": detail,
    "log": log_tail,
    "confirm": confirm,
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("scene", list(SCENES))
async def test_snapshot(store: SqliteStore, scene: str, size: str) -> None:
    app = make_app(store)
    async with app.run_test(size=SIZES[size]) as pilot:
        await ready(app, pilot)
        await SCENES[scene](app, pilot)
        await pilot.pause()
        check(f"{scene}-{size}", app.export_screenshot())
