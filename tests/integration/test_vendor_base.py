"""The shared vendor machinery, against a toy system served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import polled
from jobwatch.core import Run, Status
from jobwatch.core.errors import TransitionRefused
from jobwatch.sources.http.transport import ApiClient
from jobwatch.sources.vendors.base import VendorSource
from standins.server import serving

STATUS = {"RUN": Status.RUNNING, "OK": Status.SUCCEEDED, "BAD": Status.FAILED}


def toy_app(records: list[dict[str, Any]], seen: list[str]) -> Starlette:
    async def runs(request: Request) -> JSONResponse:
        seen.append(request.headers.get("x-api-key", ""))
        return JSONResponse({"items": records})

    async def one(request: Request) -> JSONResponse:
        for rec in records:
            if rec.get("id") == request.path_params["id"]:
                return JSONResponse(rec)
        return JSONResponse({"message": "no such run"}, status_code=404)

    async def stop(request: Request) -> JSONResponse:
        for rec in records:
            if rec.get("id") == request.path_params["id"]:
                if rec["state"] != "RUN":
                    return JSONResponse({"message": "run is not running"}, status_code=409)
                rec["state"] = "BAD"
                return JSONResponse({"message": "stopping"})
        return JSONResponse({"message": "no such run"}, status_code=404)

    return Starlette(
        routes=[
            Route("/runs", runs),
            Route("/runs/{id}", one),
            Route("/runs/{id}/stop", stop, methods=["POST"]),
        ]
    )


class Toy(VendorSource):
    KIND = "toy"
    SYSTEM = "Toy"

    def parse(self, raw: Any) -> Run:
        return Run(
            id=raw["id"],
            source=self.name,
            status=STATUS.get(raw["state"], Status.UNKNOWN),
            status_raw=raw["state"],
        )

    async def poll(self, first: bool) -> list[Run | Any]:
        body = await self.api.json("GET", "/runs")
        return self.parse_all(body["items"], "run")

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        return self.parse(await self.api.json("GET", f"/runs/{run_id}"))

    async def remote_abort(self, run: Run, by: str) -> str:
        response = await self.api.request("POST", f"/runs/{run.id}/stop")
        if response.status_code == 409:
            raise TransitionRefused(f"Toy refused: {response.json()['message']}")
        return "Toy is stopping it"


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return [
        {"id": "r1", "state": "RUN"},
        {"id": "r2", "state": "OK"},
        {"oops": True},
        {"id": "r3", "state": "WEIRD"},
    ]


async def test_poll_cursor_errors_actions_flags(records: list[dict[str, Any]], tmp_path: Path):
    seen: list[str] = []
    flags = tmp_path / "flags.db"
    with serving(toy_app(records, seen)) as server:
        api = ApiClient(server.url, name="toy", headers=lambda: {"x-api-key": "k-1"})
        async with Toy("toy", api, flags_path=flags) as toy:
            first = await polled(toy, None)
            assert [r.id for r in first.runs] == ["r1", "r2", "r3"]
            assert first.runs[2].status is Status.UNKNOWN
            assert first.runs[2].status_raw == "WEIRD"
            assert len(first.errors) == 1 and "unreadable Toy run" in first.errors[0].message
            assert seen == ["k-1"]

            idle = await polled(toy, first.cursor)
            assert idle.runs == [] and idle.errors == []

            records[1]["state"] = "BAD"
            delta = await polled(toy, idle.cursor)
            assert [(r.id, r.status) for r in delta.runs] == [("r2", Status.FAILED)]

            with pytest.raises(TransitionRefused, match="still running"):
                await toy.archive("r1")
            result = await toy.archive("r2")
            assert result.run.archived and "locally" in result.message
            again = await polled(toy, delta.cursor)
            assert [(r.id, r.archived) for r in again.runs] == [("r2", True)]

            done = await toy.abort("r1", by="test")
            assert done.run.status is Status.FAILED and done.message == "Toy is stopping it"
            with pytest.raises(TransitionRefused):
                await toy.abort("r1", by="test")

            lines = await toy.log_tail("r2", 10)
            assert len(lines) == 1 and "no log" in lines[0].text

        # The flag outlives the process and can be undone.
        api = ApiClient(server.url, name="toy", headers=lambda: {"x-api-key": "k-1"})
        async with Toy("toy", api, flags_path=flags) as toy:
            runs = {r.id: r for r in (await polled(toy, None)).runs}
            assert runs["r2"].archived
            await toy.unarchive("r2")
            assert not (await toy.get("r2")).archived


async def test_read_only_refuses_before_any_call(records: list[dict[str, Any]], tmp_path: Path):
    seen: list[str] = []
    with serving(toy_app(records, seen)) as server:
        api = ApiClient(server.url, name="toy")
        async with Toy("toy", api, flags_path=tmp_path / "f.db", read_only=True) as toy:
            await polled(toy, None)
            with pytest.raises(TransitionRefused, match="read-only"):
                await toy.abort("r1", by="test")
            assert records[0]["state"] == "RUN"


async def test_paging_by_limit(tmp_path: Path):
    records = [{"id": f"r{i:03}", "state": "OK"} for i in range(25)]
    with serving(toy_app(records, [])) as server:
        async with Toy("toy", ApiClient(server.url, name="toy"), flags_path=None) as toy:
            got: list[str] = []
            cursor = None
            for _ in range(10):
                page = await polled(toy, cursor, limit=10)
                got += [r.id for r in page.runs]
                cursor = page.cursor
                if not page.more:
                    break
            assert got == [r["id"] for r in records]
