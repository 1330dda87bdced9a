"""What only the local store keeps: the command lines of ``jobwatch run`` (for a
rerun) and the random key of the snapshot fingerprints.

The argv may hold secrets (``--password X``), so it is kept here, in the 0600
store's own table, and nowhere else: the run document holds the redacted argv,
``jobwatch serve`` never reads this table, and nothing here is ever shown.

A rerun starts a detached ``jobwatch run`` (:mod:`.relaunch`) with the same argv
in the same working directory, linked to the original by ``rerun_of``. It is
possible only from a store on the host that ran the command; a run in the shared
PostgreSQL store has no command line kept (its store declares no rerun).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from typing import Any

from jobwatch import core as models
from jobwatch.core import Action, Status, utcnow
from jobwatch.core.errors import TransitionRefused
from jobwatch.core.redact import clean
from jobwatch.core.rules import no_command_kept
from jobwatch.sources.local import procs
from jobwatch.sources.local.db import _RUN_COLS, _RUNS
from jobwatch.sources.local.relaunch import RelaunchError, relaunch
from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.protocol import ActionResult

FINGERPRINT_KEY = "snapshot_fingerprints"


class CommandsMixin(RunsMixin):
    async def keep_command(self, run_id: str, spec: dict[str, Any]) -> None:
        """Keep what a rerun of ``run_id`` needs (argv, cwd, the wrapper's options)."""

        async def body() -> None:
            await self._conn.execute(
                "INSERT OR REPLACE INTO run_commands (run_id, spec) VALUES (?, ?)",
                (run_id, json.dumps(spec)),
            )

        await self._transaction(body)

    async def kept_command(self, run_id: str) -> dict[str, Any] | None:
        if self.schema_version < 4:  # an older store read as it is
            return None
        row = await self._fetchone("SELECT spec FROM run_commands WHERE run_id = ?", (run_id,))
        if row is None:
            return None
        try:
            spec = json.loads(row[0])
        except ValueError:
            return None
        return spec if isinstance(spec, dict) else None

    async def fingerprint_key(self) -> bytes:
        """The store's key for snapshot fingerprints, made on first use."""
        row = await self._fetchone(
            "SELECT value FROM store_keys WHERE name = ?", (FINGERPRINT_KEY,)
        )
        if row is not None:
            return bytes(row[0])

        async def body() -> bytes:
            await self._conn.execute(
                "INSERT OR IGNORE INTO store_keys (name, value) VALUES (?, ?)",
                (FINGERPRINT_KEY, secrets.token_bytes(32)),
            )
            rows = await self._conn.execute_fetchall(
                "SELECT value FROM store_keys WHERE name = ?", (FINGERPRINT_KEY,)
            )
            return bytes(next(iter(rows))[0])

        return await self._transaction(body)

    async def rerun(self, run_id: str, by: str) -> ActionResult:
        """Start the run's command again, detached, as a new run linked to it."""
        self.refuse_early(Action.RERUN, run_id)
        run = await self.get(run_id)
        self.check(Action.RERUN, run)
        spec = await self.kept_command(run.id)
        if spec is None or not isinstance(spec.get("argv"), list) or not spec["argv"]:
            raise TransitionRefused(no_command_kept(run.id))
        host = spec.get("host")
        if host and host != procs.HOST:
            raise TransitionRefused(
                f"cannot rerun {run.id}: it ran on {clean(host)}, and a rerun starts "
                f"its command on the host that ran it (this is {clean(procs.HOST)})"
            )
        cwd = str(spec.get("cwd") or "")
        if not os.path.isdir(cwd):
            raise TransitionRefused(
                f"cannot rerun {run.id}: its working directory {clean(cwd)!r} is gone"
            )
        new_id = f"run-{uuid.uuid4().hex[:12]}"
        try:
            pid = await asyncio.to_thread(
                relaunch, spec, store=self.path, run_id=new_id, rerun_of=run.id
            )
        except RelaunchError as exc:
            raise TransitionRefused(f"cannot rerun {run.id}: {exc}") from None
        now = utcnow()
        queued = models.Run(
            id=new_id,
            source="local",
            job=run.job,
            label=run.label,
            type=run.type,
            status=Status.QUEUED,
            status_raw="starting",
            created_at=now,
            updated_at=now,
            owner=run.owner,
            metadata={"rerun_of": run.id, "rerun_by": by, "host": procs.HOST},
        )

        async def body() -> models.Run:
            # The new wrapper may have recorded its run already: never step back.
            rows = await self._conn.execute_fetchall(
                f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?",
                (new_id,),
            )
            found = next(iter(rows), None)
            if found is not None:
                parsed = self._parse(found)
                if isinstance(parsed, models.Run):
                    return parsed
            extra = {
                "heartbeat_at": time.time(),  # the new wrapper's: lost if it dies first
                "host": procs.HOST,
                "pid": pid,
                "pid_start": procs.start_token(pid),
            }
            await self._write_run(queued, await self._bump(), **extra)
            return queued

        shown = await self._transaction(body)
        return ActionResult(shown, f"rerun of {run.id} started as {new_id}")
