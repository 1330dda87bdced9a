"""``jobwatch run`` snapshots, ``jobwatch diff`` and ``jobwatch rerun``, with real
wrapped commands on a real store."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import jobwatch_env, run_cli, runs_json, wait_for
from jobwatch.core import Run, Status
from jobwatch.sources.local import SqliteStore

SECRET_A = "hunter2-first-secret"
SECRET_B = "hunter3-other-secret"


def jw(
    store_path: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = jobwatch_env(store_path)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jobwatch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def stored_text(store_path: Path) -> str:
    """Everything the run documents and the runs table hold."""
    with sqlite3.connect(store_path) as db:
        docs = [r[0] for r in db.execute("SELECT data FROM run_docs")]
        rows = [repr(r) for r in db.execute("SELECT * FROM runs")]
    return "\n".join(docs + rows)


def files_digest(store_path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store_path.parent.glob(store_path.name + "*"))
    }


def write_files(where: Path, secret: str, host: str = "db1") -> None:
    (where / "app.json").write_text(json.dumps({"db": {"host": host, "password": secret}}))
    (where / "app.toml").write_text(f'retries = 3\n[auth]\ntoken = "{secret}"\n')
    (where / "app.yaml").write_text(f"queue:\n  name: q1\n  api_key: {secret}\nlist: [1, 2]\n")


SNAP = ("--snapshot", "app.json", "--snapshot", "app.toml", "--snapshot", "app.yaml")


def wrapped(
    store_path: Path, cwd: Path, secret: str, code: int = 0
) -> subprocess.CompletedProcess[str]:
    return jw(
        store_path,
        "run",
        "--job",
        "deploy",
        "--snapshot-env",
        "DEPLOY_TOKEN",
        "--snapshot-env",
        "REGION",
        *SNAP,
        "--",
        "sh",
        "-c",
        f"exit {code}",
        "--password",
        secret,
        cwd=cwd,
        env={"DEPLOY_TOKEN": secret, "REGION": "eu-1"},
    )


def test_snapshot_has_argv_cwd_command_env_and_every_file_format_redacted(
    store_path: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_files(work, SECRET_A)
    result = wrapped(store_path, work, SECRET_A, code=4)
    assert result.returncode == 4, result.stderr
    assert result.stderr == ""
    config = runs_json(store_path)[0]["config"]
    assert config["argv"] == ["sh", "-c", "exit 4", "--password", "***"]
    assert config["cwd"] == str(work)
    assert config["command"] == shutil.which("sh")
    assert config["env"] == {"DEPLOY_TOKEN": "***", "REGION": "eu-1"}
    assert config["files"] == {
        "app.json": {"db": {"host": "db1", "password": "***"}},
        "app.toml": {"retries": 3, "auth": {"token": "***"}},
        "app.yaml": {"queue": {"name": "q1", "api_key": "***"}, "list": [1, 2]},
    }
    # Redacted before it was stored: the secret is nowhere in the shared document
    # (the label too was the command line in clear before).
    assert SECRET_A not in stored_text(store_path)


def test_a_broken_or_missing_snapshot_file_is_a_warning_and_a_note(
    store_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.json").write_text('{"a": ')
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    result = jw(
        store_path,
        "run",
        "--snapshot",
        "bad.json",
        "--snapshot",
        "bad.yaml",
        "--snapshot",
        "gone.toml",
        "--",
        "sh",
        "-c",
        "echo ran; exit 6",
        cwd=tmp_path,
    )
    assert result.returncode == 6 and result.stdout == "ran\n"
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3, warnings
    assert all(w.startswith("jobwatch: warning: snapshot file ") for w in warnings)
    config = runs_json(store_path)[0]["config"]
    assert config["files"] == {}
    assert set(config["notes"]) == {"bad.json", "bad.yaml", "gone.toml"}
    assert "not valid json" in config["notes"]["bad.json"]
    assert "not valid yaml" in config["notes"]["bad.yaml"]
    assert "cannot read it" in config["notes"]["gone.toml"]


def test_diff_tells_a_changed_secret_from_an_unchanged_one_and_never_shows_it(
    store_path: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_files(work, SECRET_A)
    assert wrapped(store_path, work, SECRET_A).returncode == 0  # the baseline: succeeded
    assert wrapped(store_path, work, SECRET_A, code=1).returncode == 1  # same secret
    write_files(work, SECRET_B, host="db2")
    assert wrapped(store_path, work, SECRET_B, code=2).returncode == 2  # secret changed
    newest, same, first = (r["id"] for r in runs_json(store_path))
    before = files_digest(store_path)

    unchanged = run_cli(store_path, "diff", same)
    assert unchanged.returncode == 0, unchanged.stderr
    assert f"against {first} (succeeded, the last succeeded run" in unchanged.stdout
    assert '[2]: changed: "exit 0" → "exit 1"' in unchanged.stdout
    assert "(secret)" not in unchanged.stdout and "not comparable" not in unchanged.stdout

    changed = run_cli(store_path, "diff", newest)  # against the same baseline
    assert changed.returncode == 0, changed.stderr
    text = changed.stdout
    for key in ("DEPLOY_TOKEN", "password", "token", "api_key"):
        assert f"~ {key}: changed (secret)" in text, text
    assert "~ [4]: changed (secret)" in text  # the argv after --password
    assert '~ host: changed: "db1" → "db2"' in text
    as_json = run_cli(store_path, "diff", newest, same, "--json")
    data = json.loads(as_json.stdout)
    assert data["other"] == same and data["other_chosen"] is True
    secrets = {c["pointer"] for c in data["changes"] if c["secret"]}
    assert "/env/DEPLOY_TOKEN" in secrets and "/files/app.json/db/password" in secrets
    assert all("old" not in c and "new" not in c for c in data["changes"] if c["secret"])
    for output in (text, as_json.stdout, unchanged.stdout):
        assert SECRET_A not in output and SECRET_B not in output
        assert "hunter" not in output and "***" not in output
    assert files_digest(store_path) == before  # a read verb: no file changed


def test_diff_of_runs_without_fingerprints_says_not_comparable(store_path: Path) -> None:
    """A vendor's snapshot arrives redacted: two ``***`` are not said to be equal."""

    async def seed() -> None:
        async with SqliteStore(store_path) as store:
            for i, status in enumerate((Status.SUCCEEDED, Status.FAILED)):
                await store.add(
                    Run(
                        id=f"run-vend0000000{i}",
                        source="intuned",
                        job="scrape",
                        status=status,
                        started_at=f"2026-01-0{i + 1}T00:00:00Z",  # type: ignore[arg-type]
                        config={"api_key": "***", "limit": 10 + i},
                    )
                )

    import asyncio

    asyncio.run(seed())
    result = run_cli(store_path, "diff", "run-vend00000001")
    assert result.returncode == 0, result.stderr
    assert "? api_key: secret, not comparable" in result.stdout
    assert "~ limit: changed: 10 → 11" in result.stdout
    assert "cannot be compared" in result.stdout


def test_diff_without_an_earlier_success_says_so(store_path: Path, tmp_path: Path) -> None:
    assert jw(store_path, "run", "--job", "one", "--", "sh", "-c", "exit 1").returncode == 1
    result = run_cli(store_path, "diff", runs_json(store_path)[0]["id"])
    assert result.returncode == 0
    assert "no earlier succeeded run of the same job" in result.stdout


# -- rerun -------------------------------------------------------------------------


def finished(store_path: Path, count: int) -> list[dict[str, Any]] | None:
    runs = runs_json(store_path)
    done = [r for r in runs if r["status"] not in ("queued", "running", "new")]
    return runs if len(runs) == count and len(done) == count else None


def test_rerun_repeats_the_argv_in_the_same_cwd_as_a_linked_run(
    store_path: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = 'pwd; echo "arg=$1"; exit 5'
    first = jw(
        store_path,
        "run",
        "--job",
        "again",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        "--password",
        cwd=work,
    )
    assert first.returncode == 5
    original = runs_json(store_path)[0]["id"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    asked = jw(store_path, "rerun", original, "--yes", cwd=elsewhere)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith(f"rerun of {original} started as run-")
    runs = wait_for(lambda: finished(store_path, 2))
    new = runs[0]
    assert new["id"] != original and new["metadata"]["rerun_of"] == original
    assert new["exit_code"] == 5 and new["status"] == "failed" and new["job"] == "again"
    assert new["config"]["cwd"] == str(work)
    logs = run_cli(store_path, "logs", new["id"])
    assert logs.stdout.splitlines() == [str(work), "arg=--password"]
    shown = run_cli(store_path, "show", new["id"])
    assert f"rerun of: {original}" in shown.stdout


def test_rerun_keeps_the_argv_out_of_every_document(store_path: Path, tmp_path: Path) -> None:
    assert (
        jw(store_path, "run", "--", "sh", "-c", "exit 0", "x", "--token", SECRET_A).returncode == 0
    )
    run_id = runs_json(store_path)[0]["id"]
    assert jw(store_path, "rerun", run_id, "--yes").returncode == 0
    wait_for(lambda: finished(store_path, 2))
    assert SECRET_A not in stored_text(store_path)
    for verb in (("list", "--json"), ("show", run_id), ("show", run_id, "--json")):
        assert SECRET_A not in run_cli(store_path, *verb).stdout


def test_rerun_is_refused_in_read_only_mode_and_asks_first(store_path: Path) -> None:
    assert jw(store_path, "run", "--", "sh", "-c", "exit 0").returncode == 0
    run_id = runs_json(store_path)[0]["id"]
    before = files_digest(store_path)
    refused = run_cli(store_path, "--read-only", "rerun", run_id, "--yes")
    assert refused.returncode == 1
    assert "cannot rerun" in refused.stderr and "read-only mode" in refused.stderr
    unasked = run_cli(store_path, "rerun", run_id)  # no terminal to answer on, no --yes
    assert unasked.returncode == 1 and "pass --yes" in unasked.stderr
    assert files_digest(store_path) == before
    assert len(runs_json(store_path)) == 1


def test_rerun_of_a_run_without_a_kept_command_says_why(store_path: Path) -> None:
    async def seed() -> None:
        async with SqliteStore(store_path) as store:
            await store.add(Run(id="run-seeded000001", source="local", status=Status.FAILED))
            await store.add(Run(id="run-seeded000002", source="local", status=Status.RUNNING))

    import asyncio

    asyncio.run(seed())
    result = run_cli(store_path, "rerun", "run-seeded000001", "--yes")
    assert result.returncode == 1
    assert "no command line kept for it" in result.stderr
    running = run_cli(store_path, "rerun", "run-seeded000002", "--yes")
    assert running.returncode == 1 and "it is still running" in running.stderr


@pytest.mark.parametrize("verb", ["diff", "rerun"])
def test_help_names_the_verbs(store_path: Path, verb: str) -> None:
    result = run_cli(store_path, verb, "--help")
    assert result.returncode == 0 and "RUN" in result.stdout


def test_a_rerun_is_detached_and_outlives_the_caller(store_path: Path, tmp_path: Path) -> None:
    slow = "sleep 3; exit 3"
    assert jw(store_path, "run", "--", "sh", "-c", slow, cwd=tmp_path).returncode == 3
    original = runs_json(store_path)[0]["id"]
    asked = jw(store_path, "rerun", original, "--yes")  # returns while the rerun runs
    assert asked.returncode == 0, asked.stderr
    new = runs_json(store_path)[0]
    assert new["id"] != original and new["status"] in ("queued", "running")
    wrapper = wait_for(lambda: runs_json(store_path)[0]["metadata"].get("wrapper_pid"))
    # A session of its own: the caller's terminal, its hang-up and its exit never reach it.
    fields = Path(f"/proc/{wrapper}/stat").read_text().rsplit(")", 1)[-1].split()
    assert fields[0] != "Z" and int(fields[3]) == wrapper  # state, ppid, pgrp, session
    done = wait_for(lambda: finished(store_path, 2))
    assert done[0]["exit_code"] == 3 and done[0]["metadata"]["rerun_of"] == original


async def test_diff_over_jobwatch_serve_keeps_the_fingerprints_and_refuses_rerun(
    store_path: Path, tmp_path: Path
) -> None:
    """The fingerprints travel with the (redacted) run, so a remote monitor tells a
    changed secret from an unchanged one too; the command line never travels."""
    from conftest import TEST_TOKEN, LoopbackServer
    from jobwatch.core.errors import TransitionRefused
    from jobwatch.sources.http.client import HttpSource
    from jobwatch.sources.snapshot_pair import compare

    work = tmp_path / "work"
    work.mkdir()
    write_files(work, SECRET_A)
    assert wrapped(store_path, work, SECRET_A).returncode == 0
    assert wrapped(store_path, work, SECRET_A, code=1).returncode == 1
    same = runs_json(store_path)[0]["id"]
    write_files(work, SECRET_B)
    assert wrapped(store_path, work, SECRET_B, code=2).returncode == 2
    newest = runs_json(store_path)[0]["id"]
    server = LoopbackServer(store_path).start()
    try:
        async with HttpSource(server.url, token=TEST_TOKEN) as remote:
            unchanged = await compare(remote, await remote.get(same))
            changed = await compare(remote, await remote.get(newest))
            with pytest.raises(TransitionRefused, match="never sends a command line"):
                await remote.rerun(newest, "tester")
    finally:
        server.stop()
    assert not any(c.secret for c in unchanged.diff.changes)
    kinds = {c.path: c.kind for c in changed.diff.changes if c.secret}
    assert kinds[("env", "DEPLOY_TOKEN")] == "changed" and changed.diff.not_comparable == 0
    assert SECRET_A not in str(changed.as_json()) and SECRET_B not in str(changed.text_lines())


def test_prune_takes_the_kept_command_line_with_the_run(store_path: Path) -> None:
    assert (
        jw(store_path, "run", "--", "sh", "-c", "exit 0", "x", "--token", SECRET_A).returncode == 0
    )
    with sqlite3.connect(store_path) as db:
        assert db.execute("SELECT COUNT(*) FROM run_commands").fetchone()[0] == 1
    pruned = run_cli(store_path, "prune", "--older-than", "0s")
    assert pruned.returncode == 0, pruned.stderr
    with sqlite3.connect(store_path) as db:
        assert db.execute("SELECT COUNT(*) FROM run_commands").fetchone()[0] == 0


def test_snapshot_files_lose_pem_blocks_token_shapes_and_url_credentials(
    store_path: Path, tmp_path: Path
) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    content = {
        "tls": pem,
        "endpoint": "https://deploy:pw-in-url@db.example.com/x?sig=query-secret",
        "comment": f"uses {token} for pushes",
    }
    (tmp_path / "c.json").write_text(json.dumps(content))
    argv = ("sh", "-c", "exit 0", "x", f"--api-key={token}")
    result = jw(store_path, "run", "--snapshot", "c.json", "--", *argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stored = stored_text(store_path)
    for secret in ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "pw-in-url", "query-secret", token):
        assert secret not in stored
    assert "db.example.com" in stored  # what is not secret stays readable
