"""``jobwatch serve`` as a real child process on 127.0.0.1, read by the real client."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TEST_TOKEN, jobwatch_env, run_cli, serve_cli, spawn_cli, wait_for
from jobwatch.core import Action, Run, Status, refusal
from jobwatch.core.errors import RunNotFound, SourceError, TransitionRefused
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_runs(prefix: str, count: int, status: Status = Status.SUCCEEDED) -> list[Run]:
    return [
        Run(
            id=f"run-{prefix}{i:06d}",
            source="local",
            job=f"job-{i % 7}",
            status=status,
            created_at=T0 + timedelta(seconds=i),
            started_at=T0 + timedelta(seconds=i),
            config={"password": "hunter2", "n": i},
        )
        for i in range(count)
    ]


async def aseed(store_path: Path, runs: list[Run], batch: int = 500) -> None:
    """Several revisions, as many separate writers would make."""
    async with SqliteStore(store_path) as store:
        for start in range(0, len(runs), batch):
            await store.add_many(runs[start : start + batch])


def seed(store_path: Path, runs: list[Run], batch: int = 500) -> None:
    asyncio.run(aseed(store_path, runs, batch))


def client(url: str, **kw: Any) -> HttpSource:
    kw.setdefault("token", TEST_TOKEN)
    kw.setdefault("timeout", 10.0)
    return HttpSource(url, **kw)


async def test_first_sync_and_incremental_polls(store_path: Path) -> None:
    runs = make_runs("a", 3000)
    await aseed(store_path, runs)
    with serve_cli(store_path) as served:
        async with client(served.url, page=400) as remote:
            pages = 0
            cursor: int | str | None = None
            seen: dict[str, Run] = {}
            while True:  # the same call for the first sync and every later poll
                changes = await remote.changes(cursor)
                pages += 1
                seen.update((r.id, r) for r in changes.runs)
                cursor = changes.cursor
                if not changes.more:
                    break
                assert pages < 100
            assert pages > 1
            assert sorted(seen) == sorted(r.id for r in runs)
            assert seen["run-a000042"].config == {"password": "***", "n": 42}  # redacted

            idle = await remote.changes(cursor)
            assert idle.runs == [] and idle.cursor == cursor and not idle.more

            async with SqliteStore(store_path) as store:
                await store.add_many(make_runs("b", 5, Status.RUNNING))
                await store.archive("run-a000007")
            changed = await remote.changes(cursor)
            assert sorted(r.id for r in changed.runs) == [
                "run-a000007",
                *[f"run-b{i:06d}" for i in range(5)],
            ]
            assert next(r for r in changed.runs if r.id == "run-a000007").archived
            again = await remote.changes(changed.cursor)
            assert again.runs == []

            everything = await remote.sync(None, page=1000)
            assert len(everything.runs) == 3005 and not everything.more


async def test_logs_paging_and_search(store_path: Path) -> None:
    await aseed(store_path, make_runs("l", 1))
    async with SqliteStore(store_path) as store:
        lines = [
            (
                T0.timestamp() + i,
                "stderr" if i % 10 == 0 else "stdout",
                "error" if i == 1234 else "info",
                f"line {i} token=sk-{i:020d}",
            )
            for i in range(1, 2501)
        ]
        await store.append_logs("run-l000000", lines)
    with serve_cli(store_path) as served:
        async with client(served.url) as remote:
            bounds = await remote.log_bounds("run-l000000")
            assert (bounds.first, bounds.last, bounds.count) == (1, 2500, 2500)
            got: list[int] = []
            after = 0
            for _ in range(10):
                page = await remote.log_lines("run-l000000", after, 1000)
                if not page:
                    break
                got += [line.seq for line in page]
                after = page[-1].seq
            assert got == list(range(1, 2501))
            tail = await remote.log_tail("run-l000000", 3)
            assert [line.seq for line in tail] == [2498, 2499, 2500]
            assert "sk-" not in tail[0].text and tail[0].text.startswith("line 2498 token=")
            assert await remote.first_error("run-l000000") == 1234
            assert await remote.log_find("run-l000000", "LINE 20", start=0) == 20
            assert await remote.log_find("run-l000000", "line 20", start=20) == 200
            assert await remote.log_find("run-l000000", "line 1", start=5, backwards=True) == 1
            assert await remote.log_find("run-l000000", "nowhere", start=0) is None
            with pytest.raises(RunNotFound):
                await remote.log_lines("run-nope", 0, 10)
            with pytest.raises(RunNotFound):
                await remote.get("run-nope")
            assert (await remote.get("l0000")).id == "run-l000000"  # unique prefix


def running_run(store_path: Path) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        if not store_path.exists():
            return None
        result = run_cli(store_path, "list", "--json", "--store", str(store_path))
        if result.returncode != 0 or not result.stdout.strip():
            return None
        found = json.loads(result.stdout)
        if found and found[0]["status"] == "running" and (found[0]["metadata"] or {}).get("pid"):
            return found[0]
        return None

    return wait_for(ready)


async def test_abort_of_a_running_command_through_the_api(store_path: Path) -> None:
    wrapper = spawn_cli(store_path, "run", "--grace", "3", "--", "sleep", "60")
    try:
        run = running_run(store_path)
        with serve_cli(store_path) as served:
            async with client(served.url) as remote:
                result = await remote.abort(run["id"], by="alice")
                assert "requested" in result.message
                assert wrapper.wait(timeout=20) == 128 + signal.SIGTERM

                async def final() -> Run | None:
                    got = await remote.get(run["id"])
                    return got if got.status is Status.ABORTED else None

                done = await _poll(final)
                assert done.reason is not None and "alice via jobwatch serve" in (
                    done.reason.message or ""
                )
                with pytest.raises(TransitionRefused) as refused:
                    await remote.abort(run["id"], by="alice")
                assert str(refused.value) == refusal(Action.ABORT, done)
    finally:
        wrapper.kill()
        wrapper.wait()


async def _poll(predicate: Any, timeout: float = 20) -> Any:
    from conftest import wait_for_async

    return await wait_for_async(predicate, timeout=timeout)


def test_auth_errors_are_json_without_tracebacks(store_path: Path) -> None:
    seed(store_path, make_runs("x", 2, Status.RUNNING))
    with serve_cli(store_path) as served:
        with httpx.Client(base_url=served.url + "/api/v1", trust_env=False, timeout=10) as http:
            assert http.get("/health").json()["ok"] is True  # no token needed
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                answer = http.get("/runs", headers=headers)
                assert answer.status_code == 401
                assert answer.json()["error"] == "unauthorized"
                assert answer.headers["www-authenticate"] == "Bearer"
            auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
            assert http.get("/runs", headers=auth).status_code == 200
            assert http.post("/runs/x000000/abort").status_code == 401
            refused = http.post("/runs/run-x000000/archive", headers=auth)
            assert refused.status_code == 409
            assert refused.json() == {
                "error": "refused",
                "message": "cannot archive run-x000000: it is still running",
            }
            for path, status in (
                ("/nothing", 404),
                ("/runs?limit=0", 400),
                ("/runs/run-x000000/logs?after=-1", 400),
            ):
                bad = http.get(path, headers=auth)
                assert bad.status_code == status
                assert set(bad.json()) == {"error", "message"}
                assert "Traceback" not in bad.text
            assert http.delete("/runs/run-x000000", headers=auth).status_code == 405
            garbage = http.post("/runs/run-x000000/abort", headers=auth, content=b"{not json")
            assert garbage.status_code == 400
            doc = http.get("/openapi.json", headers=auth).json()
            assert "/api/v1/runs/{run_id}/abort" in doc["paths"]
            assert http.get("/openapi.json").status_code == 401
        assert "Traceback" not in served.output()


async def test_client_refusals_and_missing_token(store_path: Path) -> None:
    await aseed(store_path, make_runs("r", 1, Status.RUNNING))
    with serve_cli(store_path) as served:
        async with client(served.url, token=None) as anonymous:
            with pytest.raises(SourceError, match="refused the token"):
                await anonymous.changes(None)
        async with client(served.url) as remote:
            with pytest.raises(TransitionRefused, match="it is still running"):
                await remote.archive("run-r000000")
            result = await remote.abort("run-r000000", by="bob")  # no owner: aborted now
            assert result.run.status is Status.ABORTED
            assert (await remote.archive("run-r000000")).run.archived
            assert not (await remote.unarchive("run-r000000")).run.archived


async def test_read_only_server_refuses_every_write(store_path: Path) -> None:
    await aseed(store_path, make_runs("o", 1, Status.RUNNING) + make_runs("p", 1))
    with serve_cli(store_path, "--read-only") as served:
        async with client(served.url) as remote:
            assert len((await remote.changes(None)).runs) == 2
            for call in (
                remote.abort("run-o000000", by="eve"),
                remote.archive("run-p000000"),
                remote.unarchive("run-p000000"),
            ):
                with pytest.raises(TransitionRefused, match="read-only"):
                    await call
        with httpx.Client(trust_env=False, timeout=10) as http:
            answer = http.post(
                served.url + "/api/v1/runs/run-o000000/abort",
                headers={"Authorization": f"Bearer {TEST_TOKEN}"},
            )
            assert answer.status_code == 403 and answer.json()["error"] == "read_only"
    assert run_cli(store_path, "show", "run-o000000", "--json").stdout.count('"running"') == 1


def test_refuses_a_public_address_without_a_token(store_path: Path) -> None:
    result = run_cli(
        store_path, "serve", "--store", str(store_path), "--host", "0.0.0.0", "--port", "0"
    )
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_file_and_cli_verbs_through_a_url(store_path: Path, tmp_path: Path) -> None:
    seed(store_path, make_runs("c", 3, Status.RUNNING))
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-0123456789\n")
    token_file.chmod(0o600)
    with serve_cli(store_path, "--token-file", str(token_file), token=None) as served:
        env_store = tmp_path / "elsewhere.db"  # the CLI's own default store is not used

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            env = jobwatch_env(env_store)
            env["JOBWATCH_TOKEN"] = "from-a-file-0123456789"
            return subprocess.run(
                [sys.executable, "-m", "jobwatch", *args, "--source", served.url],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                stdin=subprocess.DEVNULL,
            )

        listed = cli("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == [
            "run-c000002",
            "run-c000001",
            "run-c000000",
        ]
        shown = cli("show", "c000001")
        assert shown.returncode == 0 and "run-c000001" in shown.stdout
        aborted = cli("abort", "run-c000001", "--yes")
        assert aborted.returncode == 0, aborted.stderr
        assert aborted.stdout.strip() == "aborted run-c000001"
        again = cli("abort", "run-c000001", "--yes")
        assert again.returncode == 1
        assert (
            again.stderr.strip()
            == "jobwatch: cannot abort run-c000001: it has already been aborted"
        )
        missing = cli("show", "nope")
        assert missing.returncode == 1 and "no run 'nope'" in missing.stderr
        assert not env_store.exists()
    final = json.loads(run_cli(store_path, "show", "run-c000001", "--json").stdout)
    assert "via jobwatch serve" in final["reason"]["message"]
    assert "jobwatch cli" in final["reason"]["message"]


def test_url_with_credentials_is_refused(store_path: Path) -> None:
    result = run_cli(store_path, "list", "--source", "http://user:secretpw@127.0.0.1:9/")
    assert result.returncode == 1
    assert "must not carry credentials" in result.stderr and "secretpw" not in result.stderr


def test_serve_without_the_extra_says_what_to_install(store_path: Path) -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('fastapi', 'uvicorn', 'starlette'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from jobwatch.cli import main\n"
        "sys.exit(main(['serve', '--store', sys.argv[1], '--port', '0']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker, str(store_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=jobwatch_env(store_path),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "jobwatch: jobwatch serve needs the server extra: pip install 'jobwatch[server]'"
    )
    # ...and the rest of jobwatch works without it.
    blocked_list = blocker.replace(
        "'serve', '--store', sys.argv[1], '--port', '0'", "'list', '--store', sys.argv[1]"
    )
    seed(store_path, make_runs("z", 1))
    listed = subprocess.run(
        [sys.executable, "-c", blocked_list, str(store_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=jobwatch_env(store_path),
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0 and "run-z000000" in listed.stdout


def test_sigterm_stops_the_server_cleanly(store_path: Path) -> None:
    with serve_cli(store_path) as served:
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=20) == 0
