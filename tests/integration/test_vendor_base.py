"""The shared vendor machinery, against a toy system served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import polled
from jobwatch.core import RecordError, Run, RunRow, Status
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.sources.http.transport import ApiClient, RemoteUnavailable
from jobwatch.sources.vendors.base import VendorSource
from standins.server import serving

STATUS = {"RUN": Status.RUNNING, "OK": Status.SUCCEEDED, "BAD": Status.FAILED}


def toy_app(
    records: list[dict[str, Any]], seen: list[str], failing: dict[str, int] | None = None
) -> Starlette:
    """``failing``: run id → the status its detail answers instead of the run."""
    failing = {} if failing is None else failing

    async def runs(request: Request) -> JSONResponse:
        seen.append(request.headers.get("x-api-key", ""))
        return JSONResponse({"items": records})

    async def one(request: Request) -> JSONResponse:
        if (status := failing.get(request.path_params["id"])) is not None:
            headers = {"Retry-After": "3600"} if status == 503 else None
            return JSONResponse({"message": "detail is down"}, status, headers=headers)
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
        response = await self.api.request("GET", f"/runs/{run_id}")
        self.raise_for(response, doing=f"reading {run_id}", not_found=f"Toy has no run {run_id}")
        return self.parse(response.json())

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


class Rereading(Toy):
    """A toy system with no "changed since": after the first list, the runs it had
    as active are read again one by one, as Letta, Intuned and Matatika do."""

    async def poll(self, first: bool) -> list[Run | Any]:
        items = await super().poll(first) if first else []
        seen = {item.id for item in items if isinstance(item, Run)}
        stale = [run for run in self.active_runs() if run.id not in seen]
        return [*items, *await self.reread(stale, self._one)]

    async def _one(self, run: Run) -> Run | RecordError:
        response = await self.api.request("GET", f"/runs/{run.id}")
        self.raise_for(response, doing=f"reading {run.id}", not_found=f"Toy has no run {run.id}")
        return self.parse_safely(response.json(), "run")


async def test_reread_deleted_runs_and_failed_reads_are_visible(tmp_path: Path):
    records = [{"id": f"r{i}", "state": "RUN"} for i in range(1, 4)]
    failing: dict[str, int] = {}
    with serving(toy_app(records, [], failing)) as server:
        api = ApiClient(server.url, name="toy", retry_base=0.01, retry_cap=0.02)
        async with Rereading("toy", api, flags_path=None) as toy:
            first = await polled(toy, None)
            assert {r.id for r in first.runs} == {"r1", "r2", "r3"}

            records[0]["state"] = "OK"
            del records[1]  # Toy deleted r2
            failing["r3"] = 400  # and cannot read r3 just now
            await toy.refresh()
            delta = await toy.row_changes(first.cursor)
            rows = {row.id: row for row in delta.rows}
            assert rows["r1"].status is Status.SUCCEEDED
            assert rows["r2"].status is Status.UNKNOWN and rows["r2"].status_raw is None
            assert rows["r2"].deleted  # marked: a 404 on re-read means it is gone
            assert (await toy.get("r1")).status is Status.SUCCEEDED
            gone = toy.cached("r2")
            assert gone is not None and gone.reason is not None
            assert (gone.reason.type, gone.reason.message) == (
                "deleted",
                "Toy no longer has this run.",
            )
            assert rows["r3"] == RunRow.broken(
                "toy",
                "r3",
                "could not read Toy run r3 again: toy: Toy answered 400 while reading r3: "
                "detail is down",
            )

            # r3 reads again, unchanged: its row must come back, or the table would
            # show the error row until r3 changes.
            del failing["r3"]
            again = await polled(toy, delta.cursor)
            assert [(r.id, r.status) for r in again.runs] == [("r3", Status.RUNNING)]
            assert again.errors == []
            idle = await polled(toy, again.cursor)
            assert idle.runs == [] and idle.errors == []

            # Still failing after the client's retries: an error row again.
            failing["r3"] = 500
            failed = await polled(toy, idle.cursor)
            assert [(e.id, "answered 500: detail is down" in e.message) for e in failed.errors] == [
                ("r3", True)
            ]

            # A server that says "come back later" fails the poll (the poller waits
            # as asked) instead of turning every run into an error row.
            failing["r3"] = 503
            with pytest.raises(RemoteUnavailable):
                await toy.refresh()

            # A finished run read again after it was deleted: marked deleted, its
            # outcome kept, and no change on the polls after (marked once).
            del failing["r3"]
            seen = await polled(toy, failed.cursor)
            del records[0]
            gone = await toy.get("r1")
            assert (gone.status, gone.deleted) == (Status.SUCCEEDED, True)
            marked = await polled(toy, seen.cursor)
            assert [(r.id, r.deleted) for r in marked.runs] == [("r1", True)]
            assert (await polled(toy, marked.cursor)).runs == []


def answer(status: int, message: str = "nope") -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1:9/runs/r1/stop")
    return httpx.Response(status, json={"message": message}, request=request)


@pytest.mark.parametrize(
    ("status", "action", "error", "text"),
    [
        (404, False, RunNotFound, "toy: Toy has no run r1"),
        (
            401,
            False,
            SourceError,
            "toy: Toy refused the credentials (401) while stopping r1: "
            "nope; check token_env / token_file in [sources.toy]",
        ),
        (403, False, SourceError, "toy: Toy refused the credentials (403) while stopping r1"),
        (401, True, SourceError, "toy: Toy refused the credentials (401) while stopping r1"),
        (403, True, TransitionRefused, "Toy refused to stop r1: nope"),
        (409, True, TransitionRefused, "Toy refused to stop r1: nope"),
        (400, False, SourceError, "toy: Toy answered 400 while stopping r1: nope"),
        (429, True, SourceError, "toy: Toy answered 429 while stopping r1: nope"),
        (500, True, SourceError, "toy: Toy answered 500 while stopping r1: nope"),
        (302, True, SourceError, "toy: Toy answered 302 while stopping r1"),
    ],
)
def test_one_status_ladder_for_every_adapter(
    status: int, action: bool, error: type[Exception], text: str
) -> None:
    toy = Toy("toy", ApiClient("http://127.0.0.1:9", name="toy"))
    refusal = "Toy refused to stop r1" if action else None
    with pytest.raises(error) as raised:
        toy.raise_for(
            answer(status), doing="stopping r1", not_found="Toy has no run r1", refusal=refusal
        )
    assert str(raised.value).startswith(text)
    toy.raise_for(answer(204), doing="stopping r1", refusal=refusal)  # fine: nothing raised
    # The system's own way of saying why, and a 404 that is not a missing run.
    with pytest.raises(SourceError, match=r"answered 404 while stopping r1: NOPE$"):
        toy.raise_for(answer(404), doing="stopping r1", said=lambda r: r.json()["message"].upper())
