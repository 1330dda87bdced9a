"""Lost runs: a managed run whose owner died or went silent is marked ``unknown``.

Never on a guess that a live process is dead: an owner that is alive on this host
keeps its run however old its heartbeat (a store locked for a minute, a stopped
process), and a ``jobwatch run`` command that outlived its wrapper still runs,
so its run stays *running* (reason: its wrapper is gone) until the command ends.

A read-only connection reaches the same verdicts but writes none of them: it
shows them (:class:`~jobwatch.sources.lost.ShownLost`), so reading never changes
the store.
"""

from __future__ import annotations

import time
from typing import Any

from jobwatch import core as models
from jobwatch.core import ACTIVE, Status
from jobwatch.core.errors import StoreError
from jobwatch.sources.local import procs
from jobwatch.sources.local.db import _ACTIVE, _RUN_COLS, _RUNS, REAP_EVERY_S
from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.lost import is_lost, lost_verdict

ORPHANED = "orphaned"
"""Reason type of a run whose wrapper is gone while its command still runs."""
ORPHAN_MESSAGE = "wrapper gone, command still running"


class ReaperMixin(RunsMixin):
    async def _before_read(self) -> None:
        now = time.monotonic()
        if now - self._last_reap >= REAP_EVERY_S:
            self._last_reap = now
            await self.reap_lost()

    async def reap_lost(self) -> list[str]:
        """Mark managed runs whose owner died (or went silent) as ``unknown``/lost;
        returns the ids it marked. Runs whose command outlived its wrapper are
        marked orphaned instead (still running)."""
        marks = ", ".join("?" for _ in _ACTIVE)
        rows = await self._fetchall(
            f"SELECT id, heartbeat_at, host, pid, pid_start FROM runs "
            f"WHERE heartbeat_at IS NOT NULL AND status IN ({marks})",
            _ACTIVE,
        )
        now = time.time()
        changes: dict[str, tuple[float, models.Run]] = {}
        for run_id, beat, host, pid, pid_start in rows:
            if host == procs.HOST and pid:
                if procs.is_alive(pid, pid_start):
                    continue  # alive here: stalled perhaps, never lost
                why = f"its owner (pid {pid} on {host}) is gone"
            elif now - beat > self.lost_after:
                why = f"no heartbeat from its owner for {now - beat:.0f} s"
            else:
                continue
            run = await self._managed_run(run_id)
            if run is None:
                continue
            group = procs.command_group(run.metadata) if host == procs.HOST else None
            if group is not None and procs.group_alive(*group):
                if run.reason is None or run.reason.type != ORPHANED:
                    reason = models.Reason(type=ORPHANED, message=ORPHAN_MESSAGE)
                    changes[run_id] = (beat, run.evolve(reason=reason))
                continue
            if group is not None:
                why = f"its wrapper (pid {pid} on {host}) and its command are gone"
            else:
                why += "; the command may still run"
            changes[run_id] = (beat, lost_verdict(run, beat, why))
        if not self.writable:  # a read-only open: show the verdicts, write nothing
            return await self._show_lost(changes)
        if not changes:
            return []

        async def body() -> list[str]:
            done: list[str] = []
            for run_id, (beat, new) in changes.items():
                row = await self._fetchone(
                    f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ? AND heartbeat_at = ?",
                    (run_id, beat),
                )
                current = self._parse(row, show_abort=False) if row else None
                if not isinstance(current, models.Run) or current.status not in ACTIVE:
                    continue  # it moved on (a heartbeat, a final state) since the read
                extra: dict[str, Any] = {}
                if new.status is Status.UNKNOWN:
                    extra = {"heartbeat_at": None, "abort_requested_at": None}
                    done.append(run_id)
                await self._write_run(new, await self._bump(), **extra)
            return done

        try:
            return await self._transaction(body)
        except StoreError:
            return []  # e.g. a read-only file: showing runs matters more than reaping

    async def _show_lost(self, changes: dict[str, tuple[float, models.Run]]) -> list[str]:
        """What :meth:`reap_lost` would write, kept in memory for the reads to show
        (see :class:`~jobwatch.sources.lost.ShownLost`)."""
        shown: dict[str, tuple[int, models.Run]] = {}
        if changes:
            marks = ", ".join("?" for _ in changes)
            rows = await self._fetchall(
                f"SELECT id, revision FROM runs WHERE id IN ({marks})", tuple(changes)
            )
            for run_id, revision in rows:
                shown[run_id] = (int(revision), changes[run_id][1])
        self._show_lost_runs(shown)
        return [run_id for run_id, (_, run) in shown.items() if run.status is Status.UNKNOWN]

    async def _managed_run(self, run_id: str) -> models.Run | None:
        row = await self._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (run_id,))
        run = self._parse(row, show_abort=False) if row else None
        return run if isinstance(run, models.Run) and run.status in ACTIVE else None

    async def rearm(self, run_id: str, owner_pid: int) -> bool:
        """A live owner's heartbeat. If a reaper marked the run lost while the owner
        stalled (a long lock, a reaper on another host), take it back: running again,
        managed by ``owner_pid``. Returns False when the run is not the owner's to
        heartbeat any more (it ended, or someone else finished it)."""

        async def body() -> bool:
            cur = await self._conn.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND heartbeat_at IS NOT NULL",
                (time.time(), run_id),
            )
            if cur.rowcount:
                return True
            row = await self._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (run_id,))
            run = self._parse(row, show_abort=False) if row else None
            if not isinstance(run, models.Run) or not is_lost(run):
                return False
            back = run.evolve(
                status=Status.RUNNING, status_raw="running", ended_at=None, reason=None
            )
            await self._write_run(
                back,
                await self._bump(),
                heartbeat_at=time.time(),
                host=procs.HOST,
                pid=owner_pid,
                pid_start=procs.start_token(owner_pid),
            )
            return True

        return await self._transaction(body)
