"""Runs in the store: reading (deltas, rows, lists), writing, and actions."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobwatch import core as models
from jobwatch.core import ACTIVE, Action, RunRow, Status
from jobwatch.core.errors import (
    RunNotFound,
    StoreError,
)
from jobwatch.core.gcpause import gc_paused
from jobwatch.sources.archiving import StoreArchiving
from jobwatch.sources.local import procs
from jobwatch.sources.protocol import ActionResult, ChangeSet, ListQuery, RowDelta, RowRecords
from jobwatch.sources.run_ids import CANDIDATES, pick, prefix_patterns, typed
from jobwatch.sources.table_rows import REVISION_AT, ROW_COLUMNS, ROW_FIELDS, table_rows
from jobwatch.sources.window_sql import list_where

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run

from jobwatch.sources.local.db import (
    _ACTIVE,
    _RUN_COLS,
    _RUNS,
    _SINCE,
    Database,
    _epoch,
    _from_epoch,
    parse_cursor,
)

_ORPHAN_GRACE_MAX_S = 60.0
"""An abort of an orphaned command waits at most this long before SIGKILL."""


@dataclass(frozen=True)
class _Orphan:
    """A run whose command outlived its wrapper, and how to stop that command."""

    run: Run
    pgid: int
    token: str | None
    grace_s: float


def _sort_into(parsed: Run | RecordError, runs: list[Run], errors: list[RecordError]) -> None:
    if isinstance(parsed, models.Run):
        runs.append(parsed)
    else:
        errors.append(parsed)


class RunsMixin(Database, StoreArchiving):
    @staticmethod
    def _columns(run: Run, revision: int, extra: dict[str, Any]) -> dict[str, Any]:
        row = RunRow.from_run(run)
        return {
            "id": run.id,
            "revision": revision,
            "source": run.source,
            "job": run.job,
            "status": run.status.value,
            "archived": int(run.archived),
            "created_at": _epoch(run.created_at or run.started_at),
            "label": row.label,
            "status_raw": row.status_raw,
            "started_at": row.started_at,
            "ended_at": row.ended_at,
            "duration_ms": row.duration_ms,
            "p_total": row.total,
            "p_succeeded": row.succeeded,
            "p_failed": row.failed,
            "partial": int(row.partial),
            "problem": row.problem,
            "message": row.message,
            **extra,
        }

    async def _write_runs(self, runs: Sequence[Run], revision: int, **extra: Any) -> None:
        """Upsert runs (table columns and documents) in the caller's transaction."""
        if not runs:
            return
        rows = [self._columns(run, revision, extra) for run in runs]
        names = ", ".join(rows[0])
        marks = ", ".join("?" for _ in rows[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in rows[0] if c != "id")
        await self._conn.executemany(
            f"INSERT INTO runs ({names}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}",
            [tuple(r.values()) for r in rows],
        )
        await self._conn.executemany(
            "INSERT INTO run_docs (id, data) VALUES (?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            [(run.id, run.model_dump_json()) for run in runs],
        )

    async def _write_run(self, run: Run, revision: int, **extra: Any) -> None:
        await self._write_runs([run], revision, **extra)

    def _parse(self, row: Sequence[Any], *, show_abort: bool = True) -> Run | RecordError:
        """Validate a stored record. ``show_abort`` adds a pending abort request to the
        metadata for display; writers read without it so it is never stored."""
        run_id, _revision, data, abort_at, abort_by = row[:5]
        try:
            # ``models.Run``: the pydantic models load on first use, not on import.
            run = models.Run.model_validate_json(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return self._unreadable(run_id, data, exc)
        if show_abort and abort_at is not None and run.status in ACTIVE:
            meta = dict(run.metadata or {})
            meta["abort_requested_at"] = _from_epoch(abort_at).isoformat()
            meta["abort_requested_by"] = abort_by
            run = run.model_copy(update={"metadata": meta})
        return run

    def _unreadable(self, run_id: str, data: Any, exc: ValueError) -> RecordError:
        """The visible error row for a stored record that does not validate."""
        from pydantic import ValidationError  # loaded already: the model raised it

        where, detail, more = "record", str(exc), ""
        if isinstance(exc, ValidationError) and (problems := exc.errors()):
            first = problems[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "record"
            detail = str(first.get("msg"))
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return models.RecordError(
            source=self.name,
            id=run_id,
            message=f"unreadable record {run_id}: {where}: {detail}{more}",
            raw=str(data)[:500],
        )

    # -- runs shown lost by a read-only open -----------------------------------

    def _show_lost_runs(self, shown: dict[str, tuple[int, Run]]) -> None:
        """Replace what a read-only open shows as lost (see the reaper)."""
        self._shown.replace(shown)

    # -- reading runs ------------------------------------------------------------

    async def revision(self) -> int:
        row = await self._fetchone("SELECT value FROM meta WHERE key = 'revision'")
        return int(row[0])

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """Runs whose revision is above ``cursor``, oldest change first.

        ``limit`` is honoured even inside one revision (a bulk load of 100k runs
        shares one): a page that ends mid-revision returns the cursor
        ``"<revision>:<rowid>"``, and the next page resumes right after that row.
        A revision is written in one transaction, so nothing can slip in between.
        """
        await self._follow_file(poll=True)
        await self._before_read()
        since, after_row = parse_cursor(cursor)
        sql = (
            f"SELECT {_RUN_COLS}, runs.rowid FROM {_RUNS} "
            f"WHERE revision >= {_SINCE} AND NOT (revision = {_SINCE} AND runs.rowid <= ?) "
            "ORDER BY revision, runs.rowid"
        )
        after = after_row if after_row is not None else 1 << 62
        params: tuple[int, ...] = (since, since, since, since, after)
        if limit is None:
            rows = await self._fetchall(sql, params)
        else:
            rows = await self._fetchall(sql + " LIMIT ?", (*params, limit + 1))
        more = limit is not None and len(rows) > limit
        if more:
            following, rows = rows[-1], rows[:-1]
        runs: list[Run] = []
        errors: list[RecordError] = []
        with gc_paused():
            for row in rows:
                parsed = self._shown.run(self._parse(row), row[1])
                _sort_into(parsed, runs, errors)
        if not more and self._shown.unsent:
            extra = self._shown.take_unsent({r.id for r in runs})
            if extra:
                marks = ", ".join("?" for _ in extra)
                for row in await self._fetchall(
                    f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id IN ({marks})", extra
                ):
                    parsed = self._shown.run(self._parse(row), row[1])
                    _sort_into(parsed, runs, errors)
        new_cursor: int | str = since if after_row is None else f"{since}:{after_row}"
        if rows:
            last_rev, last_rowid = rows[-1][1], rows[-1][5]
            mid_revision = more and following[1] == last_rev
            new_cursor = f"{last_rev}:{last_rowid}" if mid_revision else last_rev
        return ChangeSet(runs=runs, cursor=new_cursor, errors=errors, more=more)

    async def row_changes(self, cursor: int | str | None, limit: int | None = None) -> RowDelta:
        """Table rows changed after ``cursor``, read from columns (no JSON parsing):
        the monitor's fast path at 100k runs. Without ``limit`` the whole delta
        comes in one read (a row costs a few hundred bytes); with it, pages as
        :meth:`changes` gives them (``jobwatch serve`` sends a first sync so)."""
        await self._follow_file(poll=True)
        await self._before_read()
        if limit is not None:
            return await self._row_page(cursor, limit)
        since, _ = parse_cursor(cursor)
        # The first sync scans the table in storage order, which beats the index.
        if since == 0:
            rows, revision = await self._rows_where("")
        else:
            rows, revision = await self._rows_where(f"WHERE revision > {_SINCE}", (since, since))
        if self._shown.unsent:
            extra = self._shown.take_unsent({r.id for r in rows})
            if extra:
                marks = ", ".join("?" for _ in extra)
                more_rows, _ = await self._rows_where(f"WHERE id IN ({marks})", extra)
                rows += more_rows
        return RowDelta(rows, revision if revision else since)

    async def _row_page(self, cursor: int | str | None, limit: int) -> RowDelta:
        """One page of rows changed after ``cursor``, with :meth:`changes`' cursors."""
        records, new_cursor, more = await self._record_page(cursor, limit)
        return RowDelta(table_rows(records), new_cursor, more)

    async def row_records(self, cursor: int | str | None, limit: int) -> RowRecords:
        """:meth:`row_changes` with a ``limit`` as the records read (``jobwatch
        serve`` encodes them as they are: a RunRow per record cost it a fifth of a
        50k-row page, measured)."""
        await self._follow_file(poll=True)
        await self._before_read()
        records, new_cursor, more = await self._record_page(cursor, limit)
        return RowRecords(ROW_FIELDS, records, new_cursor, more)

    async def _record_page(
        self, cursor: int | str | None, limit: int
    ) -> tuple[list[Sequence[Any]], int | str, bool]:
        since, after_row = parse_cursor(cursor)
        after = after_row if after_row is not None else 1 << 62
        rows, _ = await self._records_where(
            f"WHERE revision >= {_SINCE} AND NOT (revision = {_SINCE} AND rowid <= ?) "
            "ORDER BY revision, rowid LIMIT ?",
            (since, since, since, since, after, max(1, limit) + 1),
        )
        more = len(rows) > limit
        tail = rows[-2:] if more else rows[-1:]
        rows = rows[:limit]
        new_cursor: int | str = since if after_row is None else f"{since}:{after_row}"
        if tail:
            marks = ", ".join("?" for _ in tail)
            found = await self._fetchall(
                f"SELECT id, revision, rowid FROM runs WHERE id IN ({marks})", [r[1] for r in tail]
            )
            at = {r[0]: (int(r[1]), int(r[2])) for r in found}
            last = at.get(tail[0][1] if more else tail[-1][1])
            following = at.get(tail[-1][1]) if more else None
            if last is not None:
                mid_revision = following is not None and following[0] == last[0]
                new_cursor = f"{last[0]}:{last[1]}" if mid_revision else last[0]
        if not more and self._shown.unsent:
            extra = self._shown.take_unsent({r[1] for r in rows})
            if extra:
                marks = ", ".join("?" for _ in extra)
                more_rows, _ = await self._records_where(f"WHERE id IN ({marks})", extra)
                rows += more_rows
        return rows, new_cursor, more

    async def _rows_where(
        self, clause: str, params: Sequence[Any] = (), *, aside: bool = False
    ) -> tuple[list[RunRow], int]:
        records, revision = await self._records_where(clause, params, aside=aside)
        return table_rows(records), revision

    async def _records_where(
        self, clause: str, params: Sequence[Any] = (), *, aside: bool = False
    ) -> tuple[list[Sequence[Any]], int]:
        """Records of ``ROW_FIELDS`` and the revision; a run shown as lost (not yet
        written so) is its shown row. ``aside``: a long read, on the second
        connection (:meth:`Database._fetchall_aside`)."""
        active = ", ".join(f"'{s}'" for s in _ACTIVE)
        fetch = self._fetchall_aside if aside else self._fetchall
        rows: list[Sequence[Any]] = await fetch(
            f"SELECT {ROW_COLUMNS}, abort_requested_at IS NOT NULL AND status IN ({active}), "
            f"revision FROM runs {clause}",
            params,
        )  # type: ignore[assignment]  # sqlite3 gives plain tuples here
        self._shown.records(rows)
        return rows, max((r[REVISION_AT] for r in rows), default=0)

    async def run_count(self) -> int:
        row = await self._fetchone("SELECT COUNT(*) FROM runs")
        return int(row[0])

    async def first_rows(self, limit: int) -> list[RunRow]:
        """The newest ``limit`` rows: enough to paint the first screen at once while
        the full table loads behind it."""
        await self._follow_file()
        await self._before_read()
        rows, _ = await self._rows_where("ORDER BY created_at DESC LIMIT ?", (limit,))
        return rows

    async def resolve(self, ref: str) -> str:
        """Turn a full id or a unique prefix (with or without ``run-``) into an id."""
        ref = typed(ref)
        if await self._fetchone("SELECT 1 FROM runs WHERE id = ?", (ref,)):
            return ref
        rows = await self._fetchall(
            "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\'"
            f" LIMIT {CANDIDATES}",
            prefix_patterns(ref),
        )
        return pick(ref, [str(r[0]) for r in rows], str(self.path))

    async def get(self, run_id: str) -> Run:
        await self._follow_file()
        await self._before_read()
        run_id = await self.resolve(run_id)
        row = await self._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (run_id,))
        parsed = self._shown.run(self._parse(row), row[1])
        if isinstance(parsed, models.RecordError):
            raise StoreError(parsed.message)
        return parsed

    async def list_runs(self, query: ListQuery) -> tuple[list[Run], list[RecordError]]:
        """Newest first, filtered in SQL so ``--limit 20`` reads 20 rows. A run shown
        lost keeps its place but not a status filter it no longer matches."""
        await self._follow_file()
        await self._before_read()
        statuses = list(query.statuses)
        where, params = list_where(query, shown_ids=self._shown.ids)
        sql = f"SELECT {_RUN_COLS} FROM {_RUNS}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, runs.rowid DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        runs: list[Run] = []
        errors: list[RecordError] = []
        wanted = set(statuses)
        for row in await self._fetchall(sql, params):
            parsed = self._shown.run(self._parse(row), row[1])
            if wanted and isinstance(parsed, models.Run) and parsed.status.value not in wanted:
                continue
            _sort_into(parsed, runs, errors)
        return runs, errors

    # -- writing runs ------------------------------------------------------------

    async def add(self, run: Run, *, managed_by: int | None = None) -> Run:
        """Insert or replace ``run``. ``managed_by`` is the pid that will heartbeat it
        and honour abort requests (a ``jobwatch run`` wrapper, the demo)."""
        await self.add_many([run], managed_by=managed_by)
        return run

    async def add_many(self, runs: Sequence[Run], *, managed_by: int | None = None) -> None:
        """Insert or replace runs in one transaction (one revision)."""
        extra: dict[str, Any] = {}
        if managed_by is not None:
            extra = {
                "heartbeat_at": time.time(),
                "host": procs.HOST,
                "pid": managed_by,
                "pid_start": procs.start_token(managed_by),
            }

        async def body() -> None:
            await self._write_runs(runs, await self._bump(), **extra)

        await self._transaction(body)

    async def update(
        self,
        run_id: str,
        change: Callable[[Run], Run],
        *,
        release: bool = False,
        see_abort: bool = False,
    ) -> Run:
        """Read-modify-write one run atomically. ``release`` ends its management
        (the owner has recorded the final state), so it is never reaped as lost.
        ``see_abort`` shows ``change`` a pending abort request in the metadata (as
        ``abort_requested_at``/``_by``), so an owner recording its final state learns,
        in the same transaction, of a request it has not acted on."""

        async def body() -> Run:
            row = await self._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (run_id,))
            if row is None:
                raise RunNotFound(f"no run {run_id!r} in {self.path}")
            current = self._parse(row, show_abort=see_abort)
            if isinstance(current, models.RecordError):
                raise StoreError(current.message)
            new = change(current)
            extra: dict[str, Any] = {}
            if release:
                extra = {"heartbeat_at": None, "abort_requested_at": None}
            await self._write_run(new, await self._bump(), **extra)
            return new

        return await self._transaction(body)

    async def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Say the owner is alive. Not a change of the run, so no revision bump."""
        if not run_ids:
            return
        marks = ", ".join("?" for _ in run_ids)

        async def body() -> None:
            await self._conn.execute(
                f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({marks}) "
                "AND heartbeat_at IS NOT NULL",
                (time.time(), *run_ids),
            )

        await self._transaction(body)

    async def abort_requested(self, run_id: str) -> str | None:
        """Who asked to abort ``run_id`` (``None`` if nobody): the owner's poll."""
        row = await self._fetchone(
            "SELECT abort_requested_at, abort_requested_by FROM runs WHERE id = ?", (run_id,)
        )
        if row is None or row[0] is None:
            return None
        return str(row[1] or "someone")

    async def aborts_requested(self, run_ids: Sequence[str]) -> dict[str, str]:
        """:meth:`abort_requested` for many runs in one query (the demo's loop)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" for _ in run_ids)
        rows = await self._fetchall(
            f"SELECT id, abort_requested_by FROM runs WHERE id IN ({marks}) "
            "AND abort_requested_at IS NOT NULL",
            tuple(run_ids),
        )
        return {r[0]: str(r[1] or "someone") for r in rows}

    # -- actions -----------------------------------------------------------------

    async def abort(self, run_id: str, by: str) -> ActionResult:
        """Abort now if nothing owns the run; otherwise ask its owner to stop it."""
        self.refuse_early(Action.ABORT, run_id)
        run_id = await self.resolve(run_id)
        orphan = await self._orphan(run_id)
        if orphan is not None:
            return await self._abort_orphan(orphan, by)

        async def body() -> ActionResult:
            row = await self._fetchone(
                f"SELECT {_RUN_COLS}, heartbeat_at FROM {_RUNS} WHERE id = ?", (run_id,)
            )
            run = self._parse(row, show_abort=False)
            if isinstance(run, models.RecordError):
                raise StoreError(run.message)
            self.check(Action.ABORT, run)
            revision = await self._bump()
            if row[5] is not None:  # a live owner (wrapper, demo) stops it for real
                await self._conn.execute(
                    "UPDATE runs SET abort_requested_at = ?, abort_requested_by = ?, "
                    "revision = ? WHERE id = ?",
                    (time.time(), by, revision, run_id),
                )
                asked = self._parse((*row[:3], time.time(), by))  # shows "aborting" now
                return ActionResult(
                    asked if isinstance(asked, models.Run) else run,
                    f"abort of {run_id} requested; its owner stops it",
                )
            now = datetime.now(UTC)
            done = run.evolve(
                status=Status.ABORTED,
                ended_at=now,
                reason=models.Reason(type="aborted", message=f"aborted by {by}"),
            )
            await self._write_run(done, revision)
            return ActionResult(done, f"aborted {run_id}")

        return await self._transaction(body)

    async def _orphan(self, run_id: str) -> _Orphan | None:
        """The run, if its wrapper is gone from this host while its command's
        process group (the very one it started) still runs here."""
        row = await self._fetchone(
            f"SELECT {_RUN_COLS}, heartbeat_at, host, pid, pid_start FROM {_RUNS} WHERE id = ?",
            (run_id,),
        )
        if row is None or row[5] is None or row[6] != procs.HOST or not row[7]:
            return None
        if procs.is_alive(row[7], row[8]):
            return None  # the wrapper lives: it stops its command itself
        run = self._parse(row, show_abort=False)
        if isinstance(run, models.RecordError) or run.status not in ACTIVE:
            return None
        group = procs.command_group(run.metadata)
        if group is None or not procs.group_alive(*group):
            return None
        grace = (run.config or {}).get("grace_s")
        grace_s = float(grace) if isinstance(grace, int | float) and grace >= 0 else 10.0
        return _Orphan(run, group[0], group[1], min(grace_s, _ORPHAN_GRACE_MAX_S))

    async def _abort_orphan(self, orphan: _Orphan, by: str) -> ActionResult:
        """Stop a command whose wrapper is gone: SIGTERM its group, SIGKILL what is
        left after its grace, then record the run aborted."""
        run = orphan.run
        self.check(Action.ABORT, run)
        procs.signal_group(orphan.pgid, signal.SIGTERM)
        deadline = time.monotonic() + orphan.grace_s
        while time.monotonic() < deadline and procs.group_alive(orphan.pgid, orphan.token):
            await asyncio.sleep(0.05)
        if procs.group_alive(orphan.pgid, orphan.token):
            procs.signal_group(orphan.pgid, signal.SIGKILL)

        async def body() -> ActionResult:
            row = await self._fetchone(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE id = ?", (run.id,))
            current = self._parse(row, show_abort=False) if row else None
            if not isinstance(current, models.Run):
                raise RunNotFound(f"no run {run.id!r} in {self.path}")
            self.check(Action.ABORT, current)
            now = datetime.now(UTC)
            message = f"aborted by {by} (its wrapper was gone; stopped its command)"
            done = current.evolve(
                status=Status.ABORTED,
                status_raw="aborted",
                ended_at=now,
                updated_at=now,
                reason=models.Reason(type="aborted", message=message),
            )
            await self._write_run(
                done, await self._bump(), heartbeat_at=None, abort_requested_at=None
            )
            return ActionResult(
                done, f"aborted {run.id}: stopped its command (group {orphan.pgid})"
            )

        return await self._transaction(body)
