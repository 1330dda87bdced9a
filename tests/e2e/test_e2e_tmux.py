"""End to end: the real ``jobwatch`` binary in tmux at 80x24, driven by keys and
read back with ``capture-pane``, as a person over SSH would use it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from tui_support import seed_store

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {args}: {result.stderr}")
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "jw")

    def wait_screen(self, *wanted: str, absent: tuple[str, ...] = ()) -> str:
        def ok() -> str | None:
            text = self.screen()
            good = all(w in text for w in wanted) and not any(a in text for a in absent)
            return text if good else None

        try:
            return wait_for(ok, timeout=30, every=0.1)
        except AssertionError:
            raise AssertionError(f"screen never showed {wanted}:\n{self.screen()}") from None

    def exit_status(self, status_file: Path) -> str | None:
        """The program's exit status once it has ended, as the pane's shell wrote it.

        Not tmux's ``pane_dead``: here the tmux server sometimes never reaps its
        exited child (seen: the monitor a zombie for 20 s, the pane still "alive"),
        while the shell that ran the command always waits for it."""
        try:
            text = status_file.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    yield session
    session("kill-server", check=False)


def test_monitor_in_tmux(tmux: Tmux, store_path: Path) -> None:
    asyncio.run(seed_store(store_path))
    status_file = store_path.parent / "exit-status"
    command = (
        f"{sys.executable} -m jobwatch --store {store_path} --theme jobwatch-mono; "
        f"echo $? > {status_file}"
    )
    tmux("new-session", "-d", "-s", "jw", "-x", "80", "-y", "24")
    tmux("set-option", "-t", "jw", "remain-on-exit", "on")
    tmux("respawn-pane", "-k", "-t", "jw", command)

    first = tmux.wait_screen("STATUS", "running", "exit-2", "Filter")
    assert "run-000000000006" not in first  # archived runs are hidden
    assert len(first.splitlines()) <= 24

    tmux("send-keys", "-t", "jw", "/")
    tmux.wait_screen("filter runs:")  # the box is open, as a person would see
    tmux("send-keys", "-t", "jw", "-l", "status:failed")
    tmux("send-keys", "-t", "jw", "Enter")
    filtered = tmux.wait_screen("filter: status:failed", "etl", absent=("backup", "report"))
    assert "exit-2" in filtered

    tmux("send-keys", "-t", "jw", "Escape")
    tmux.wait_screen("backup", "report")

    tmux("send-keys", "-t", "jw", "f")  # faults only
    tmux.wait_screen("faults only", "timed_out", absent=("backup",))

    tmux("send-keys", "-t", "jw", "q")
    try:
        status = wait_for(lambda: tmux.exit_status(status_file), timeout=20)
    except AssertionError:
        raise AssertionError(f"q did not quit:\n{tmux.screen()}") from None
    assert status == "0"
