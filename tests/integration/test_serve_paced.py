"""``jobwatch serve`` over a vendor source: one poller paces the vendor's API,
however many clients ask (each caught-up client used to cost the vendor a poll)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from conftest import TEST_TOKEN, serve_cli, wait_for
from standins.modzy import API_KEY, ModzyStandIn
from standins.server import serving


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    q = json.dumps
    path.write_text(
        f'[sources.modzy]\nkind = "modzy"\nurl = {q(url)}\ntoken_env = "JW_MODZY_KEY"\n'
        f"refresh = 3600\nflags_store = {q(str(tmp_path / 'flags.db'))}\n"
    )
    os.chmod(path, 0o600)
    return path


def test_many_caught_up_clients_cost_the_vendor_nothing(tmp_path: Path) -> None:
    modzy = ModzyStandIn()
    for status in ("COMPLETED", "COMPLETED", "IN_PROGRESS"):
        modzy.add_job(status)
    with serving(modzy.app) as upstream:
        cfg = config(tmp_path, upstream.url)
        args = ("--config", str(cfg), "--source", "modzy")
        env = {"JW_MODZY_KEY": API_KEY}
        with serve_cli(tmp_path / "unused.db", *args, store=False, env=env) as served:
            headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
            with httpx.Client(base_url=served.url + "/api/v1", headers=headers) as client:
                first = wait_for(lambda: client.get("/runs").json())
                assert len(first["runs"]) == 3
                asked = len(modzy.requests)
                cursor = first["revision"]
                for _ in range(30):  # thirty caught-up polls from clients
                    page = client.get("/runs", params={"since": str(cursor)}).json()
                    assert page["runs"] == [] and not page["more"]
                # The vendor was polled by the server's poller only (once an hour here).
                assert len(modzy.requests) == asked, modzy.requests[asked:]
                health = client.get("/health").json()
                assert health["ok"] is True and health["source"] == "ok"
