"""Hooks: a command per event (``on_failure``, ``on_late``, ``on_stuck``), given the
run or the late job as redacted JSON on stdin.

Never in the way: each hook runs as a background subprocess (its own process group,
stdout discarded, so it cannot draw over the monitor), killed with its group after
the configured timeout. A hook that cannot start, fails or hangs is one warning
(``on_warning``: the monitor's status line, ``watch``'s stderr), never an error of
the caller. Each event is handed here once by :mod:`jobwatch.triage.live`.

What reaches the hook went through :func:`jobwatch.core.redact.redact` (secret keys
masked, secret shapes in every string masked, control characters stripped); the
environment says which event it is (``JOBWATCH_EVENT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from jobwatch.config.live import Hooks
from jobwatch.core.redact import clean, redact

STDERR_KEPT = 400
"""Bytes of a failing hook's stderr kept for its warning."""


def payload_bytes(event: str, body: Mapping[str, Any]) -> bytes:
    """The JSON a hook reads: ``{"event": …, …}``, redacted."""
    data = redact({"event": event, **body})
    return (json.dumps(data, ensure_ascii=False, default=str) + "\n").encode()


class HookRunner:
    def __init__(self, hooks: Hooks, *, on_warning: Callable[[str], None] | None = None) -> None:
        self.hooks = hooks
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self.started = 0
        self.finished = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, event: str) -> bool:
        return self.hooks.argv(event) is not None

    def fire(self, event: str, body: Mapping[str, Any]) -> asyncio.Task[None] | None:
        """Start the hook for ``event`` in the background (None if there is none)."""
        argv = self.hooks.argv(event)
        if argv is None:
            return None
        data = payload_bytes(event, body)
        task = asyncio.get_running_loop().create_task(self._run(event, argv, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.started += 1
        return task

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the hooks started so far (each is bounded by its timeout)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _warn(self, text: str) -> None:
        text = clean(text)
        self.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    async def _run(self, event: str, argv: tuple[str, ...], data: bytes) -> None:
        name = f"hook on_{event}"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its children are killed with it
                env={**os.environ, "JOBWATCH_EVENT": event},
            )
        except OSError as exc:
            self._warn(f"{name}: cannot start {argv[0]}: {exc.strerror or exc}")
            self.finished += 1
            return
        try:
            _out, err = await asyncio.wait_for(proc.communicate(data), self.hooks.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5.0)
            self._warn(f"{name} timed out after {self.hooks.timeout:g}s (killed)")
        else:
            if proc.returncode:
                said = err[:STDERR_KEPT].decode(errors="replace").strip().splitlines()
                tail = f": {said[0]}" if said else ""
                self._warn(f"{name} exited {proc.returncode}{tail}")
        finally:
            self.finished += 1
