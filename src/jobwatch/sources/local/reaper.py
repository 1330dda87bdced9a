"""Lost runs: a managed run whose owner died or went silent is marked ``unknown``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jobwatch import core as models
from jobwatch.core import ACTIVE, Status
from jobwatch.core.errors import (
    StoreError,
)
from jobwatch.sources.local import procs

if TYPE_CHECKING:
    pass

from jobwatch.sources.local.db import _ACTIVE, _RUN_COLS, _RUNS, REAP_EVERY_S, _from_epoch
from jobwatch.sources.local.runs import RunsMixin


class ReaperMixin(RunsMixin):
    async def _before_read(self) -> None:
        now = time.monotonic()
        if now - self._last_reap >= REAP_EVERY_S:
            self._last_reap = now
            await self.reap_lost()

    async def reap_lost(self) -> list[str]:
        """Mark managed runs whose owner died (or went silent) as ``unknown``/lost."""
        marks = ", ".join("?" for _ in _ACTIVE)
        rows = await self._fetchall(
            f"SELECT id, heartbeat_at, host, pid, pid_start FROM runs "
            f"WHERE heartbeat_at IS NOT NULL AND status IN ({marks})",
            _ACTIVE,
        )
        now = time.time()
        lost: dict[str, tuple[float, str]] = {}
        for run_id, beat, host, pid, pid_start in rows:
            if now - beat > self.lost_after:
                lost[run_id] = (beat, f"no heartbeat from its owner for {now - beat:.0f} s")
            elif host == procs.HOST and pid and not procs.is_alive(pid, pid_start):
                lost[run_id] = (beat, f"its owner (pid {pid} on {host}) is gone")
        if not self.writable:  # a read-only open: show them lost, write nothing
            return await self._show_lost(lost)
        if not lost:
            return []

        async def body() -> list[str]:
            done: list[str] = []
            for run_id, (beat, why) in lost.items():
                row = await self._fetchone(
                    f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ? AND heartbeat_at = ?",
                    (run_id, beat),
                )
                run = self._parse(row, show_abort=False) if row else None
                if not isinstance(run, models.Run) or run.status not in ACTIVE:
                    continue
                gone = lost_version(run, beat, why)
                await self._write_run(
                    gone, await self._bump(), heartbeat_at=None, abort_requested_at=None
                )
                done.append(run_id)
            return done

        try:
            return await self._transaction(body)
        except StoreError:
            return []  # e.g. a read-only file: showing runs matters more than reaping

    # -- a read-only open: the same verdict, shown rather than written ------------

    async def _show_lost(self, lost: dict[str, tuple[float, str]]) -> list[str]:
        """What :meth:`reap_lost` would write, kept in memory for the reads to show
        (see :meth:`~jobwatch.sources.local.runs.RunsMixin._as_shown`)."""
        shown: dict[str, tuple[int, models.Run]] = {}
        if lost:
            marks = ", ".join("?" for _ in lost)
            rows = await self._fetchall(
                f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id IN ({marks})", tuple(lost)
            )
            for row in rows:
                run = self._parse(row, show_abort=False)
                if isinstance(run, models.Run) and run.status in ACTIVE:
                    beat, why = lost[run.id]
                    shown[run.id] = (row[1], lost_version(run, beat, why))
        self._show_lost_runs(shown)
        return list(shown)


def lost_version(run: models.Run, beat: float, why: str) -> models.Run:
    """``run`` as lost: ended at its last heartbeat, with the reason why."""
    reason = models.Reason(type="lost", message=f"lost: {why}; the command may still run")
    return run.evolve(status=Status.UNKNOWN, ended_at=_from_epoch(beat), reason=reason)
