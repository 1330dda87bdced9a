"""Bad input to a real ``jobwatch serve``: one clear 400 or 404, never a 500, never
a server path, and the keep-alive connection still serves the next request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TEST_TOKEN, LoopbackServer, Served, serve_cli
from jobwatch.core import Run, Status
from jobwatch.sources.local import SqliteStore

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
RUN = "run-k000001"
BIG = str(1 << 64)


def seed(store_path: Path) -> None:
    async def fill() -> None:
        async with SqliteStore(store_path) as store:
            await store.add_many(
                [
                    Run(
                        id=RUN,
                        source="local",
                        job="j",
                        status=Status.FAILED,
                        created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                ]
            )
            await store.append_logs(
                RUN, [(1.0, "stdout", "info", "hello"), (2.0, "x", "error", "bad")]
            )

    asyncio.run(fill())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    store_path = tmp_path_factory.mktemp("serve-input") / "runs.db"
    seed(store_path)
    with serve_cli(store_path) as server:
        yield server, store_path


@pytest.fixture
def http(served: tuple[Served, Path]) -> Iterator[httpx.Client]:
    """One keep-alive connection (a pool of one) to the server."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(
        base_url=served[0].url + "/api/v1", headers=AUTH, limits=limits, trust_env=False, timeout=10
    ) as client:
        yield client


def connection(response: httpx.Response) -> Any:
    """The client side of the TCP connection that carried ``response``; ``None``
    once it is closed (the server said "Connection: close" or hung up)."""
    try:
        return response.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:
        return None


def assert_clear_error(response: httpx.Response, status: int, store_path: Path) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"} and body["message"]
    assert "\n" not in body["message"] and "Traceback" not in response.text
    for secret_place in (str(store_path), str(store_path.parent), str(Path.home())):
        assert secret_place not in response.text
    return str(body["message"])


BAD_REQUESTS = [
    f"/runs?since={BIG}",
    "/runs?since=99999999999999999999999999",
    f"/runs?since=1:{BIG}",
    f"/runs?since={'9' * 5000}",
    "/runs?since=%C2%B2",  # a digit, to str.isdigit
    "/runs?since=no-such-cursor",
    "/runs?limit=0",
    f"/runs?limit={BIG}",
    f"/runs/{RUN}/logs?after={BIG}",
    f"/runs/{RUN}/logs?after={1 << 63}",
    f"/runs/{RUN}/logs?after=-1",
    f"/runs/{RUN}/logs?after=1.5",
    f"/runs/{RUN}/logs?limit={BIG}",
    f"/runs/{RUN}/logs?tail={BIG}",
    f"/runs/{RUN}/logs?tail=0",
    f"/runs/{RUN}/logs/find?q=x&start={BIG}",
    f"/runs/{RUN}/logs/find?q=x&start=-{BIG}",
    f"/runs/{RUN}/logs/find?q=x&start=abc",
    f"/runs/{RUN}/logs/find?q=x&backwards=sideways",
    f"/runs/{RUN}/logs/find?q=",
    f"/runs/{RUN}/logs/find?q={'x' * 1001}",
    "/runs/" + "r" * 257,
    "/runs/" + "r" * 257 + "/logs",
    "/runs/" + "r" * 60_000,  # past SQLite's LIKE limit (50,000); httpx allows 65,536
]


@pytest.mark.parametrize("path", BAD_REQUESTS)
def test_a_bad_parameter_is_a_400_and_the_connection_lives_on(
    served: tuple[Served, Path], http: httpx.Client, path: str
) -> None:
    bad = http.get(path)
    carried_by = connection(bad)
    assert_clear_error(bad, 400, served[1])
    good = http.get(f"/runs/{RUN}")
    assert good.status_code == 200 and good.json()["id"] == RUN
    assert carried_by is not None and connection(good) == carried_by, "the connection was closed"


@pytest.mark.parametrize(
    "path",
    [
        "/runs/run-nope",
        "/runs/run-nope/logs",
        "/runs/run-nope/logs?tail=5",
        "/runs/run-nope/logs/bounds",
        "/runs/run-nope/logs/find?q=hello",
        "/runs/run-nope/logs/first-error",
        "/runs/" + "n" * 256,
    ],
)
def test_an_unknown_run_is_a_404_on_every_route(
    served: tuple[Served, Path], http: httpx.Client, path: str
) -> None:
    message = assert_clear_error(http.get(path), 404, served[1])
    assert message.startswith("no run ")


def test_writes_to_an_unknown_or_overlong_run(
    served: tuple[Served, Path], http: httpx.Client
) -> None:
    for verb in ("abort", "archive", "unarchive"):
        assert_clear_error(http.post(f"/runs/run-nope/{verb}"), 404, served[1])
        assert_clear_error(http.post("/runs/" + "r" * 300 + f"/{verb}"), 400, served[1])


def test_log_routes_answer_for_a_known_run_and_its_prefix(http: httpx.Client) -> None:
    for ref in (RUN, "k000001"):
        assert http.get(f"/runs/{ref}/logs/find", params={"q": "hello"}).json() == {"seq": 1}
        assert http.get(f"/runs/{ref}/logs/first-error").json() == {"seq": 2}
        assert http.get(f"/runs/{ref}/logs/bounds").json() == {"first": 1, "last": 2}
        assert [ln["text"] for ln in http.get(f"/runs/{ref}/logs").json()["lines"]] == [
            "hello",
            "bad",
        ]
    nothing = http.get(f"/runs/{RUN}/logs/find", params={"q": "absent"})
    assert nothing.status_code == 200 and nothing.json() == {"seq": None}
    assert http.get(f"/runs/{RUN}/logs/find", params={"q": "hello", "start": -1}).json() == {
        "seq": 1
    }


def test_the_401_says_what_to_send(served: tuple[Served, Path]) -> None:
    with httpx.Client(base_url=served[0].url + "/api/v1", trust_env=False, timeout=10) as anon:
        answer = anon.get("/runs")
    assert answer.status_code == 401
    assert answer.json()["message"] == (
        "missing or wrong token: send the Authorization header, scheme 'Bearer'"
    )


def test_the_server_log_holds_no_traceback(served: tuple[Served, Path], http: httpx.Client) -> None:
    for path in BAD_REQUESTS[:6]:
        http.get(path)
    assert "Traceback" not in served[0].output()


def test_the_path_hider_removes_the_store_path(tmp_path: Path) -> None:
    from jobwatch.server.app import _path_hider

    store = SqliteStore(tmp_path / "deep" / "runs.db")
    hide = _path_hider(store)
    said = f"store {tmp_path / 'deep' / 'runs.db'}: disk I/O error; see {tmp_path / 'deep'}"
    assert hide(said) == "store <server path>: disk I/O error; see <server path>"
    assert hide("no run 'x' on this server") == "no run 'x' on this server"


class CrashingServer(LoopbackServer):
    """The real app over a real store, plus one route with a bug in it."""

    @contextlib.asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        from jobwatch.server.app import create_app

        async with SqliteStore(self.store_path) as store:
            app = create_app(store, token=None)
            where = self.store_path

            @app.get("/api/v1/boom")
            async def boom() -> None:
                raise RuntimeError(f"a bug near {where}")

            yield app


def test_a_bug_is_a_500_and_the_connection_lives_on(tmp_path: Path) -> None:
    store_path = tmp_path / "runs.db"
    seed(store_path)
    server = CrashingServer(store_path, token=None).start()
    try:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=server.url, limits=limits, trust_env=False, timeout=10) as http:
            bad = http.get("/api/v1/boom")
            carried_by = connection(bad)
            assert assert_clear_error(bad, 500, store_path).startswith("internal server error")
            good = http.get(f"/api/v1/runs/{RUN}")
            assert good.status_code == 200
            assert carried_by is not None and connection(good) == carried_by, "connection closed"
    finally:
        server.stop()
