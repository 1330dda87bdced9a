"""The shared store: every host's runs in one PostgreSQL database.

The same reads and writes as the SQLite store (:mod:`jobwatch.sources.local`),
so every verb, the monitor, ``serve`` and the ``jobwatch run`` wrapper work on
it unchanged; what differs is what many machines need:

* **Push.** A statement trigger on ``runs`` notifies on every state change; the
  source LISTENs on a connection of its own (:mod:`.listen`) and the poller
  races :meth:`PostgresStore.wait_change` against its (slow) timer.
* **Aborts across hosts.** An abort of a run a wrapper owns is a row in
  ``commands``; the wrapper's own host claims it (``FOR UPDATE SKIP LOCKED``) on
  its next poll and stops the command; the outcome is written like any other
  state change, and every monitor sees it.
* **Lost hosts.** Wrappers heartbeat their host's row on the server's clock. A
  host silent for ``lost_after`` has its running runs marked lost by whichever
  process notices first, by one conditional UPDATE per run (on the revision it
  read), so two noticing at once make one transition.

* **Lost, shown.** A store that writes nothing (``"read"``, or a role whose lost
  write is refused) reaches the same verdicts and *shows* them
  (:class:`~jobwatch.sources.lost.ShownLost`): each poll re-reads the active runs
  of silent hosts, a run shows lost while its host stays silent and its revision
  does not move, and running again once the host heartbeats.

Modes as for SQLite: ``"read"`` writes nothing (no migration, no lost marks);
``"write"`` (every verb, the monitor) and ``"create"`` (``jobwatch run``, a
writable ``serve``) migrate an older schema when they open it, and ``"create"``
sets up a blank database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jobwatch import core as models
from jobwatch.core import ACTIVE, Action, RunRow, Status
from jobwatch.core.errors import (
    NewerStoreError,
    RunNotFound,
    StoreError,
    TransitionRefused,
)
from jobwatch.core.gcpause import gc_paused
from jobwatch.core.rules import Capabilities
from jobwatch.sources.archiving import StoreArchiving
from jobwatch.sources.local import procs
from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.lost import ShownLost, is_lost, lost_verdict
from jobwatch.sources.postgres import schema
from jobwatch.sources.postgres.connect import full_dsn, probe, reason, source_error
from jobwatch.sources.postgres.dsn import describe
from jobwatch.sources.postgres.listen import Listener
from jobwatch.sources.postgres.live import PgLiveMixin
from jobwatch.sources.postgres.window import PgWindow
from jobwatch.sources.postgres.window import dialect as pg_dialect
from jobwatch.sources.protocol import (
    ActionResult,
    ChangeSet,
    ListQuery,
    LogBounds,
    RowDelta,
    RowRecords,
    StatusCounts,
    TriageFill,
    WindowView,
)
from jobwatch.sources.run_ids import CANDIDATES, pick, prefix_patterns, typed
from jobwatch.sources.table_rows import REVISION_AT, ROW_COLUMNS, ROW_FIELDS, table_rows
from jobwatch.sources.triage_sql import before_query, rows_clause
from jobwatch.sources.window_sql import list_where, named

if TYPE_CHECKING:
    from jobwatch.core import LogLine, RecordError, Run

log = logging.getLogger(__name__)

T = TypeVar("T")
Mode = Literal["read", "write", "create"]
Conn = psycopg.AsyncConnection[Any]

HOST_ENV = "JOBWATCH_HOST_ID"
LOST_AFTER_S = 30.0
"""A host whose wrappers have not heartbeaten for this long has lost its runs."""
REAP_EVERY_S = 2.0
FALLBACK_PACE_S = 5.0
"""Seconds between polls without a notification: the slow poll behind LISTEN."""
POOL_WAIT_S = 5.0
_ACTIVE = [s.value for s in ACTIVE]
_RUN_COLS = "id, revision, data, abort_requested_at, abort_requested_by"
_ROW_COLS = f"{ROW_COLUMNS}, abort_requested_at IS NOT NULL AND status = ANY(%(active)s), revision"
PG_DIALECT = pg_dialect(False)
"""For ``jobwatch list``'s filter (the shared builder in ``window_sql``)."""
_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_SINCE = (
    "(CASE WHEN (SELECT last_value FROM jobwatch_revision) < %(since)s THEN 0 ELSE %(since)s END)"
)
"""The revision a read starts after: the cursor's, or 0 when the cursor is above
this database's revisions (another database behind the same DSN)."""


class WriteRefused(StoreError):
    """The server refused a write: a role without the privilege, a read-only
    transaction (a hot standby)."""


def host_id() -> str:
    """This machine's id in the shared store: ``$JOBWATCH_HOST_ID``, else its name."""
    return os.environ.get(HOST_ENV, "").strip() or procs.HOST


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _cursor(cursor: int | str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if isinstance(cursor, int):
        return cursor
    if not cursor.isdigit():
        raise ValueError(f"not a store cursor: {cursor!r}")
    return int(cursor)


class PostgresStore(StoreArchiving, PgLiveMixin):
    """A :class:`~jobwatch.sources.protocol.Source` over a PostgreSQL database."""

    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "A run started by `jobwatch run` is stopped by its own host (SIGTERM on its "
            "process group, then SIGKILL after its grace period); a run nobody owns "
            "any more is marked aborted."
        ),
        rows=True,
        first_rows=True,
        query=True,
        pace=FALLBACK_PACE_S,
        push=True,
        window=True,
        # Decided: a command line never leaves the host that ran it, and the shared
        # store is not on that host, so nothing here keeps one: no rerun from it.
        rerun_refusal=(
            "the shared store keeps no command lines (one never leaves the host that "
            "ran it), so its runs cannot be rerun; run the command again on that host"
        ),
    )

    def __init__(
        self,
        dsn: str,
        *,
        name: str = "postgres",
        mode: Mode = "create",
        lost_after: float = LOST_AFTER_S,
    ) -> None:
        if mode not in ("read", "write", "create"):
            raise ValueError(f"store mode must be read, write or create, not {mode!r}")
        self.dsn = dsn
        self.name = name
        self.mode: Mode = mode
        self.read_only = mode == "read"
        self.lost_after = lost_after
        self.host = host_id()
        self.schema_version = 0
        self.where = describe(dsn)
        self._pool: AsyncConnectionPool[Any] | None = None
        self._listener = Listener(dsn)
        self._commands: Listener | None = None
        """Made by the first :meth:`wait_command` (only a wrapper waits for commands)."""
        self._last_reap = 0.0
        self._window = PgWindow(self)
        self._shown = ShownLost()
        """Lost verdicts shown, not written (see :meth:`reap_lost`)."""
        self._show_only = self.read_only
        """Whether the lost verdicts are shown instead of written: read mode, or a
        writable store whose first lost write the server refused."""

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            conn = await psycopg.AsyncConnection.connect(full_dsn(self.dsn), autocommit=True)
        except psycopg.Error as exc:
            raise source_error(self.dsn, exc) from None
        try:
            await self._check_schema(conn)
        except psycopg.Error as exc:
            raise source_error(self.dsn, exc, "cannot read") from None
        finally:
            await conn.close()
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            full_dsn(self.dsn),
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            timeout=POOL_WAIT_S,
            name=f"jobwatch-{self.name}",
        )
        try:
            await pool.open(wait=True, timeout=POOL_WAIT_S + 1)
        except PoolTimeout:
            await pool.close()
            raise StoreError(f"cannot reach {self.where}: {await probe(self.dsn)}") from None
        self._pool = pool

    async def _check_schema(self, conn: Conn) -> None:
        found = await schema.found_version(conn)
        known = schema.SCHEMA_VERSION
        if found is not None and found > known:
            raise NewerStoreError(
                f"{self.where} was written by a newer jobwatch (schema {found}, "
                f"this version reads up to {known}); upgrade jobwatch to use it"
            )
        if found is None and self.mode != "create":
            raise StoreError(
                f"no jobwatch store in {self.where} (create one with "
                "`jobwatch --store DSN run -- CMD` or a writable `jobwatch serve`)"
            )
        if found == known:
            self.schema_version = known
            return
        if self.read_only:
            raise StoreError(
                f"{self.where} has schema {found}, older than {known}; open it once "
                "without --read-only to migrate it"
            )
        await schema.migrate(conn)
        self.schema_version = known

    async def close(self) -> None:
        await self._listener.stop()
        if self._commands is not None:
            await self._commands.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- plumbing ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        """A pooled connection; a server that went away is one clear line."""
        if self._pool is None:
            raise StoreError("store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreError(f"cannot reach {self.where}: {await probe(self.dsn)}") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise source_error(self.dsn, exc) from None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise WriteRefused(f"{self.where}: {reason(exc)}") from None
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: {reason(exc)}") from None

    async def _fetch(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _one(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    async def _transaction(self, body: Callable[[Conn], Awaitable[T]], *, feed: bool = True) -> T:
        """One transaction; ``feed``: it writes revisions, drawn under the feed lock
        so they commit in order."""
        self._refuse_if_read_only("write")
        async with self._conn() as conn, conn.transaction():
            if feed:
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.FEED_LOCK,))
            return await body(conn)

    def _refuse_if_read_only(self, verb: str) -> None:
        if self.read_only:
            raise TransitionRefused(f"cannot {verb}: source {self.name} is read-only")

    async def set_lock_wait(self, seconds: float) -> None:
        """The wrapper's bound on a write; the pool's wait does that here."""
        return None

    # -- push ----------------------------------------------------------------------

    async def wait_change(self) -> None:
        """Return when another process changed a run (a NOTIFY), or after the
        listen connection came back (so the poller catches up)."""
        await self._listener.wait()

    @property
    def notified(self) -> int:
        return self._listener.notified

    # -- reading -------------------------------------------------------------------

    def _parse(self, row: Sequence[Any], *, show_abort: bool = True) -> Run | RecordError:
        run_id, _revision, data, abort_at, abort_by = row[:5]
        try:
            run = models.Run.model_validate_json(data)
        except ValueError as exc:
            return models.RecordError(
                source=self.name,
                id=run_id,
                message=f"unreadable record {run_id}: {str(exc).splitlines()[0]}",
                raw=str(data)[:500],
            )
        if show_abort and abort_at is not None and run.status in ACTIVE:
            meta = dict(run.metadata or {})
            meta["abort_requested_at"] = datetime.fromtimestamp(abort_at, UTC).isoformat()
            meta["abort_requested_by"] = abort_by
            run = run.model_copy(update={"metadata": meta})
        return run

    def _sorted(self, rows: Sequence[Sequence[Any]]) -> tuple[list[Run], list[RecordError]]:
        runs: list[Run] = []
        errors: list[RecordError] = []
        with gc_paused():
            for row in rows:
                parsed = self._shown.run(self._parse(row), row[1])
                if isinstance(parsed, models.Run):
                    runs.append(parsed)
                else:
                    errors.append(parsed)
        return runs, errors

    async def _before_read(self, *, poll: bool = False) -> None:
        """Reap (or, showing only, re-judge) lost runs every ``REAP_EVERY_S``; a
        poll of a store that only shows them always re-judges, so a host that went
        silent is shown lost by the very next poll (no revision tells it)."""
        now = time.monotonic()
        if now - self._last_reap >= REAP_EVERY_S or (poll and self._show_only):
            self._last_reap = now
            await self.reap_lost()

    async def _unsent(self, already: set[str]) -> list[tuple[Any, ...]]:
        """Run records (``_RUN_COLS``) whose shown state changed since the last
        poll although their revision did not."""
        if not self._shown.unsent:
            return []
        ids = self._shown.take_unsent(already)
        if not ids:
            return []
        return await self._fetch(f"SELECT {_RUN_COLS} FROM runs WHERE id = ANY(%s)", (ids,))

    async def _unsent_records(self, already: set[str]) -> list[tuple[Any, ...]]:
        """:meth:`_unsent` as table-row records (``_ROW_COLS``), as shown."""
        if not self._shown.unsent:
            return []
        ids = self._shown.take_unsent(already)
        if not ids:
            return []
        rows = await self._fetch(
            f"SELECT {_ROW_COLS} FROM runs WHERE id = ANY(%(ids)s)", {"ids": ids, "active": _ACTIVE}
        )
        return self._shown.records(rows)

    async def revision(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(revision), 0) FROM runs")
        return int(row[0]) if row else 0

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """Runs whose revision is above ``cursor``, oldest change first. Each run
        written gets a revision of its own, so a page never ends inside one."""
        await self._before_read(poll=True)
        since = _cursor(cursor)
        sql = f"SELECT {_RUN_COLS} FROM runs WHERE revision > {_SINCE} ORDER BY revision"
        params: dict[str, Any] = {"since": since}
        if limit is not None:
            sql += " LIMIT %(limit)s"
            params["limit"] = limit + 1
        rows = await self._fetch(sql, params)
        more = limit is not None and len(rows) > limit
        if more:
            rows = rows[:-1]
        new_cursor = rows[-1][1] if rows else since
        if not more:
            rows += await self._unsent({str(r[0]) for r in rows})
        runs, errors = self._sorted(rows)
        return ChangeSet(runs=runs, cursor=new_cursor, errors=errors, more=more)

    async def row_changes(self, cursor: int | str | None, limit: int | None = None) -> RowDelta:
        """Table rows changed after ``cursor``, from columns (no JSON parsing)."""
        await self._before_read(poll=True)
        since = _cursor(cursor)
        params: dict[str, Any] = {"since": since}
        clause = f"WHERE revision > {_SINCE} ORDER BY revision"
        if limit is not None:
            clause += " LIMIT %(limit)s"
            params["limit"] = limit + 1
        rows, revisions = await self._rows_where(clause, params)
        more = limit is not None and len(rows) > limit
        if more:
            rows, revisions = rows[:-1], revisions[:-1]
        new_cursor = revisions[-1] if revisions else since
        if not more:
            rows += table_rows(await self._unsent_records({r.id for r in rows}))
        return RowDelta(rows, new_cursor, more)

    async def row_records(self, cursor: int | str | None, limit: int) -> RowRecords:
        """:meth:`row_changes` as the records read (``jobwatch serve`` encodes them
        without a RunRow each)."""
        await self._before_read(poll=True)
        since = _cursor(cursor)
        params = {"since": since, "limit": max(1, limit) + 1, "active": _ACTIVE}
        sql = f"SELECT {_ROW_COLS} FROM runs WHERE revision > {_SINCE} ORDER BY revision"
        records = self._shown.records(await self._fetch(sql + " LIMIT %(limit)s", params))
        more = len(records) > limit
        records = records[:limit]
        new_cursor = int(records[-1][REVISION_AT]) if records else since
        if not more:
            records += await self._unsent_records({str(r[1]) for r in records})
        return RowRecords(ROW_FIELDS, records, new_cursor, more)

    async def _rows_where(
        self, clause: str, params: dict[str, Any]
    ) -> tuple[list[RunRow], list[int]]:
        params = {**params, "active": _ACTIVE}
        rows = self._shown.records(
            await self._fetch(f"SELECT {_ROW_COLS} FROM runs {clause}", params)
        )
        out = table_rows(rows)
        return out, [int(r[REVISION_AT]) for r in rows]

    async def triage_rows(self, *, per_job: int, since: float) -> TriageFill:
        """The triage fill: each job's newest runs and the window's failures in one
        query, the failure shapes seen before it in another (``triage_sql``)."""
        await self._before_read()
        params = {"per_job": per_job, "since": since}
        rows, _ = await self._rows_where(rows_clause("id", "%(per_job)s", "%(since)s"), params)
        before = await self._fetch(before_query("%(since)s"), params)
        return TriageFill(rows, [(r[0], r[1], r[2], float(r[3])) for r in before])

    async def run_count(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM runs")
        return int(row[0]) if row else 0

    async def first_rows(self, limit: int) -> list[RunRow]:
        await self._before_read()
        rows, _ = await self._rows_where(
            "ORDER BY created_at DESC NULLS LAST, id DESC LIMIT %(limit)s", {"limit": limit}
        )
        return rows

    # -- windowed reads (window.py) ---------------------------------------------------

    async def window_rows(
        self,
        view: WindowView,
        *,
        offset: int = 0,
        limit: int = 500,
        after: RunRow | None = None,
        before: RunRow | None = None,
        from_end: bool = False,
    ) -> list[RunRow]:
        await self._before_read()
        return await self._window.rows(
            view, offset=offset, limit=limit, after=after, before=before, from_end=from_end
        )

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        await self._before_read()
        return await self._window.count(view, before=before)

    async def window_row(self, run_id: str) -> RunRow | None:
        await self._before_read()
        rows, _ = await self._rows_where("WHERE id = %(id)s", {"id": run_id})
        return rows[0] if rows else None

    async def status_counts(self) -> StatusCounts:
        """From the ``run_counts`` table the triggers keep (a dozen rows)."""
        return await self._window.status_counts()

    async def head_cursor(self) -> int | str | None:
        return await self.revision()

    async def resolve(self, ref: str) -> str:
        ref = typed(ref)
        if await self._one("SELECT 1 FROM runs WHERE id = %s", (ref,)):
            return ref
        rows = await self._fetch(
            f"SELECT id FROM runs WHERE id LIKE %s OR id LIKE %s ORDER BY id LIMIT {CANDIDATES}",
            prefix_patterns(ref),
        )
        return pick(ref, [str(r[0]) for r in rows], self.where)

    async def get(self, run_id: str) -> Run:
        await self._before_read()
        run_id = await self.resolve(run_id)
        row = await self._one(f"SELECT {_RUN_COLS} FROM runs WHERE id = %s", (run_id,))
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.where}")
        parsed = self._shown.run(self._parse(row), row[1])
        if isinstance(parsed, models.RecordError):
            raise StoreError(parsed.message)
        return parsed

    async def list_runs(self, query: ListQuery) -> tuple[list[Run], list[RecordError]]:
        """Newest first, filtered in SQL (``--limit 20`` reads 20 rows, by index). A
        run shown lost keeps its place but not a status filter it no longer matches."""
        await self._before_read()
        where, values = list_where(query, PG_DIALECT, shown_ids=self._shown.ids)
        sql = f"SELECT {_RUN_COLS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC NULLS LAST, id DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            values.append(query.limit)
        runs, errors = self._sorted(await self._fetch(*named(sql, values)))
        if query.statuses and self._shown:
            wanted = set(query.statuses)
            runs = [r for r in runs if r.status.value in wanted]
        return runs, errors

    # -- logs ------------------------------------------------------------------------

    def _lines(self, run_id: str, rows: Sequence[Sequence[Any]]) -> list[LogLine]:
        return [
            models.LogLine(
                run_id=run_id,
                seq=r[0],
                ts=datetime.fromtimestamp(r[1], UTC),
                stream=r[2],
                level=r[3],
                text=r[4],
            )
            for r in rows
        ]

    async def append_logs(self, run_id: str, lines: Sequence[tuple[float, str, str, str]]) -> int:
        """Append ``(ts, stream, level, text)`` lines; returns the last seq written."""
        if not lines:
            return 0

        async def body(conn: Conn) -> int:
            cur = await conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM logs WHERE run_id = %s", (run_id,)
            )
            row = await cur.fetchone()
            start = int(row[0]) + 1 if row else 1
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO logs (run_id, seq, ts, stream, level, text) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (run_id, start + i, ts, stream, level, text.replace("\x00", "\ufffd"))
                        for i, (ts, stream, level, text) in enumerate(lines)
                    ],
                )
            return start + len(lines) - 1

        return await self._transaction(body, feed=False)

    async def log_bounds(self, run_id: str) -> LogBounds:
        row = await self._one(
            "SELECT (SELECT MIN(seq) FROM logs WHERE run_id = %(r)s), "
            "(SELECT MAX(seq) FROM logs WHERE run_id = %(r)s)",
            {"r": run_id},
        )
        if row is None or row[0] is None:
            return LogBounds(0, 0)
        return LogBounds(int(row[0]), int(row[1]))

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        rows = await self._fetch(
            "SELECT seq, ts, stream, level, text FROM logs WHERE run_id = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            (run_id, after, limit),
        )
        return self._lines(run_id, rows)

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        rows = await self._fetch(
            "SELECT seq, ts, stream, level, text FROM logs WHERE run_id = %s "
            "ORDER BY seq DESC LIMIT %s",
            (run_id, count),
        )
        return self._lines(run_id, list(reversed(rows)))

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        op, order = ("<", "DESC") if backwards else (">", "ASC")
        row = await self._one(
            f"SELECT seq FROM logs WHERE run_id = %s AND seq {op} %s AND text ILIKE %s "
            f"ORDER BY seq {order} LIMIT 1",
            (run_id, start, pattern),
        )
        return int(row[0]) if row else None

    async def first_error(self, run_id: str) -> int | None:
        row = await self._one(
            "SELECT seq FROM logs WHERE run_id = %s AND level = 'error' ORDER BY seq LIMIT 1",
            (run_id,),
        )
        return int(row[0]) if row else None

    # -- writing runs ----------------------------------------------------------------

    @staticmethod
    def _columns(run: Run, extra: dict[str, Any]) -> dict[str, Any]:
        cols = RunsMixin._columns(run, 0, {})
        del cols["revision"]
        cols["archived"] = bool(cols["archived"])
        cols["partial"] = bool(cols["partial"])
        cols.update(extra)
        cols["data"] = run.model_dump_json()
        return cols

    async def _write_runs(self, conn: Conn, runs: Sequence[Run], **extra: Any) -> None:
        """Upsert runs, each with a revision of its own, in the caller's transaction."""
        if not runs:
            return
        rows = [self._columns(run, extra) for run in runs]
        names = list(rows[0])
        marks = ", ".join(["nextval('jobwatch_revision')", *("%s" for _ in names)])
        updates = ", ".join(f"{c} = excluded.{c}" for c in ["revision", *names] if c != "id")
        sql = (
            f"INSERT INTO runs (revision, {', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        async with conn.cursor() as cur:
            await cur.executemany(sql, [tuple(r.values()) for r in rows])

    def _managed(self, pid: int) -> dict[str, Any]:
        return {
            "heartbeat_at": time.time(),
            "host_id": self.host,
            "pid": pid,
            "pid_start": procs.start_token(pid),
        }

    async def add(self, run: Run, *, managed_by: int | None = None) -> Run:
        await self.add_many([run], managed_by=managed_by)
        return run

    async def add_many(self, runs: Sequence[Run], *, managed_by: int | None = None) -> None:
        """Insert or replace runs in one transaction. ``managed_by``: the pid that
        owns them on this host (heartbeats its host, carries out its commands)."""
        extra = self._managed(managed_by) if managed_by is not None else {}

        async def body(conn: Conn) -> None:
            if managed_by is not None:
                await self._beat(conn)
            await self._write_runs(conn, runs, **extra)

        await self._transaction(body)

    async def _select(self, conn: Conn, run_id: str, *, lock: bool = True) -> tuple[Any, ...]:
        cur = await conn.execute(
            f"SELECT {_RUN_COLS}, heartbeat_at, host_id FROM runs WHERE id = %s"
            + (" FOR UPDATE" if lock else ""),
            (run_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.where}")
        return tuple(row)

    async def update(
        self,
        run_id: str,
        change: Callable[[Run], Run],
        *,
        release: bool = False,
        see_abort: bool = False,
    ) -> Run:
        """Read-modify-write one run under its row lock (see the SQLite store's)."""

        async def body(conn: Conn) -> Run:
            row = await self._select(conn, run_id)
            current = self._parse(row, show_abort=see_abort)
            if isinstance(current, models.RecordError):
                raise StoreError(current.message)
            new = change(current)
            extra: dict[str, Any] = {}
            if release:
                extra = {"heartbeat_at": None, "abort_requested_at": None}
                await conn.execute(
                    f"UPDATE commands SET done_at = {_NOW} WHERE run_id = %s AND done_at IS NULL",
                    (run_id,),
                )
            await self._write_runs(conn, [new], **extra)
            return new

        return await self._transaction(body)

    # -- hosts and heartbeats --------------------------------------------------------

    async def _beat(self, conn: Conn) -> None:
        await conn.execute(
            f"INSERT INTO hosts (host_id, heartbeat_at) VALUES (%s, {_NOW}) "
            f"ON CONFLICT (host_id) DO UPDATE SET heartbeat_at = {_NOW}",
            (self.host,),
        )

    async def heartbeat(self, run_ids: Sequence[str] = ()) -> None:
        """Say this host's wrappers live (no revision: not a change of any run)."""

        async def body(conn: Conn) -> None:
            await self._beat(conn)

        await self._transaction(body, feed=False)

    async def rearm(self, run_id: str, owner_pid: int) -> bool:
        """The wrapper's heartbeat: its host lives. If the run was marked lost while
        the host was silent (a partition, a stalled machine), take it back."""

        async def body(conn: Conn) -> bool:
            await self._beat(conn)
            row = await self._select(conn, run_id)
            if row[5] is not None:
                return True
            run = self._parse(row, show_abort=False)
            if not isinstance(run, models.Run) or not is_lost(run):
                return False
            back = run.evolve(
                status=Status.RUNNING, status_raw="running", ended_at=None, reason=None
            )
            await self._write_runs(conn, [back], **self._managed(owner_pid))
            return True

        return await self._transaction(body)

    async def reap_lost(self) -> list[str]:
        """Mark lost the running runs of hosts that stopped heartbeating (and of
        wrappers on this host that died); returns the ids *this* call marked.

        A store that writes nothing (read mode, or a role whose first lost write
        the server refused: one log line) reaches the same verdicts and shows
        them instead; it returns the ids it shows lost."""
        verdicts = await self._verdicts()
        if self._show_only:
            return self._show(verdicts)
        if not verdicts:
            return []

        async def body(conn: Conn) -> list[str]:
            done: list[str] = []
            for run_id, revision, lost, remote in verdicts:
                cols = self._columns(lost, {"heartbeat_at": None, "abort_requested_at": None})
                sets = ", ".join(f"{c} = %({c})s" for c in cols if c != "id")
                still_silent = (
                    " AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.host_id = runs.host_id "
                    f"AND h.heartbeat_at >= {_NOW} - %(after)s)"
                    if remote
                    else ""
                )
                cur = await conn.execute(
                    f"UPDATE runs SET revision = nextval('jobwatch_revision'), {sets} "
                    "WHERE id = %(id)s AND revision = %(seen)s AND heartbeat_at IS NOT NULL"
                    f"{still_silent} RETURNING id",
                    {**cols, "seen": revision, "after": self.lost_after},
                )
                if await cur.fetchone():
                    done.append(run_id)
            return done

        try:
            return await self._transaction(body)
        except WriteRefused as exc:
            self._show_only = True
            log.warning("%s; lost runs are shown, not marked, from this process", exc)
            return self._show(verdicts)
        except StoreError:
            return []  # showing runs matters more than reaping them

    async def _verdicts(self) -> list[tuple[str, int, Run, bool]]:
        """``(id, revision read, the run marked lost, whether its host is another)``
        for each active managed run whose host is silent for ``lost_after`` on the
        server's clock (or, on this host, whose wrapper is gone). One indexed read
        of the managed runs; a run's document is parsed only for a verdict not
        already shown on the same revision (a poll of a store that only shows
        re-judges every time)."""
        rows = await self._fetch(
            f"WITH t AS MATERIALIZED (SELECT {_NOW} AS now), live AS MATERIALIZED "
            "(SELECT host_id FROM hosts, t WHERE heartbeat_at >= t.now - %(after)s) "
            "SELECT r.id, r.revision, r.host_id, r.pid, r.pid_start, "
            "(SELECT h.heartbeat_at FROM hosts h WHERE h.host_id = r.host_id), "
            "(SELECT now FROM t) FROM runs r "
            "WHERE r.heartbeat_at IS NOT NULL AND r.status = ANY(%(active)s) "
            "AND (r.host_id = %(me)s OR r.host_id IS NULL "
            "OR r.host_id NOT IN (SELECT host_id FROM live))",
            {"active": _ACTIVE, "me": self.host, "after": self.lost_after},
        )  # one index scan whatever the planner's statistics say, the clock read once:
        # 1,000 managed runs of a live host, 2.5 -> 0.6 ms (fresh statistics: 0.95 -> 0.8)
        known = self._shown.runs
        verdicts: list[tuple[str, int, Run, bool]] = []
        fresh: dict[str, tuple[int, str, bool, float | None]] = {}
        for run_id, revision, host, pid, pid_start, beat, now in rows:
            mine = bool(host == self.host and pid)
            if mine:
                if procs.is_alive(pid, pid_start):
                    continue
            elif beat is not None and now - beat <= self.lost_after:
                continue
            cached = known.get(run_id)
            if cached is not None and cached[0] == revision:
                verdicts.append((run_id, revision, cached[1], not mine))
            elif mine:
                fresh[run_id] = (revision, f"its owner (pid {pid} on {host}) is gone", False, beat)
            else:
                silent = f"for {now - beat:.0f} s" if beat is not None else "ever"
                why = f"no heartbeat from its host {host} {silent}"
                fresh[run_id] = (revision, why, True, beat)
        if not fresh:
            return verdicts
        found = await self._fetch(
            f"SELECT {_RUN_COLS} FROM runs WHERE id = ANY(%s)", (list(fresh),)
        )
        for row in found:
            revision, why, remote, beat = fresh[row[0]]
            if row[1] != revision:
                continue  # written since the first read: judged again next time
            run = self._parse(row, show_abort=False)
            if not isinstance(run, models.Run) or run.status not in ACTIVE:
                continue
            last = beat if beat is not None else time.time()
            lost = lost_verdict(run, min(last, time.time()), why)
            verdicts.append((row[0], revision, lost, remote))
        return verdicts

    def _show(self, verdicts: list[tuple[str, int, Run, bool]]) -> list[str]:
        """Show ``verdicts`` from now on (and no other): the ids shown lost."""
        self._shown.replace({run_id: (revision, run) for run_id, revision, run, _ in verdicts})
        return [run_id for run_id, _, _, _ in verdicts]

    # -- commands ----------------------------------------------------------------------

    async def abort_requested(self, run_id: str) -> str | None:
        """The wrapper's poll: claim an abort asked for ``run_id`` on this host (one
        claimer, whoever else looks), and say who asked; ``None`` if nobody did."""

        async def body(conn: Conn) -> str | None:
            cur = await conn.execute(
                f"UPDATE commands SET claimed_at = {_NOW}, claimed_by = %(me)s "
                "WHERE id = (SELECT id FROM commands WHERE run_id = %(run)s "
                "AND host_id = %(host)s AND kind = 'abort' AND claimed_at IS NULL "
                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING requested_by",
                {"me": f"{self.host}:{os.getpid()}", "run": run_id, "host": self.host},
            )
            row = await cur.fetchone()
            return None if row is None else str(row[0] or "someone")

        return await self._transaction(body, feed=False)

    async def wait_command(self, timeout: float) -> None:
        """Return when a command for this host may be waiting (a NOTIFY on its
        channel, or the listening connection (re)connected, which may have missed
        one), or after ``timeout`` seconds: the caller's slow fallback poll."""
        if self._commands is None:
            self._commands = Listener(self.dsn, schema.commands_channel(self.host))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._commands.wait(), timeout)

    @property
    def command_notifies(self) -> int:
        """Notifications on this host's commands channel (what tests read)."""
        return 0 if self._commands is None else self._commands.notified

    async def aborts_requested(self, run_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for run_id in run_ids:
            by = await self.abort_requested(run_id)
            if by is not None:
                found[run_id] = by
        return found

    async def pending_commands(self, run_id: str) -> list[tuple[str, str | None, bool]]:
        """``(kind, claimed_by, done)`` of the commands for ``run_id``, oldest first."""
        rows = await self._fetch(
            "SELECT kind, claimed_by, done_at IS NOT NULL FROM commands WHERE run_id = %s "
            "ORDER BY id",
            (run_id,),
        )
        return [(str(r[0]), r[1], bool(r[2])) for r in rows]

    # -- actions -----------------------------------------------------------------------

    async def abort(self, run_id: str, by: str) -> ActionResult:
        """Ask the run's own host to stop it (a command row); a run nobody owns is
        marked aborted at once."""
        self.refuse_early(Action.ABORT, run_id)
        run_id = await self.resolve(run_id)

        async def body(conn: Conn) -> ActionResult:
            row = await self._select(conn, run_id)
            run = self._parse(row, show_abort=False)
            if isinstance(run, models.RecordError):
                raise StoreError(run.message)
            self.check(Action.ABORT, run)
            owner = row[6]
            if row[5] is not None:
                now = time.time()
                await conn.execute(
                    "INSERT INTO commands (run_id, host_id, kind, requested_by, requested_at) "
                    f"VALUES (%s, %s, 'abort', %s, {_NOW})",
                    (run_id, owner, by),
                )
                if owner is not None:  # delivered at commit: its wrapper claims it at once
                    channel = schema.commands_channel(str(owner))
                    await conn.execute("SELECT pg_notify(%s, %s)", (channel, run_id))
                await conn.execute(
                    "UPDATE runs SET abort_requested_at = %s, abort_requested_by = %s, "
                    "revision = nextval('jobwatch_revision') WHERE id = %s",
                    (now, by, run_id),
                )
                asked = self._parse((*row[:3], now, by))
                return ActionResult(
                    asked if isinstance(asked, models.Run) else run,
                    f"abort of {run_id} requested; its host {owner} stops it",
                )
            done = run.evolve(
                status=Status.ABORTED,
                ended_at=datetime.now(UTC),
                reason=models.Reason(type="aborted", message=f"aborted by {by}"),
            )
            await self._write_runs(conn, [done])
            return ActionResult(done, f"aborted {run_id}")

        return await self._transaction(body)

    # -- pruning -----------------------------------------------------------------------

    async def prune(self, before: float, *, dry_run: bool = False) -> tuple[list[str], int]:
        """Delete finished runs created before ``before`` (epoch seconds), their
        lines, feed entries and commands; never an active run. Returns the ids and
        the number of log lines (what would go, with ``dry_run``)."""
        select = (
            "SELECT id FROM runs WHERE NOT (status = ANY(%(active)s)) "
            "AND COALESCE(ended_at, created_at) < %(before)s ORDER BY created_at, id"
        )
        params = {"active": _ACTIVE, "before": before}
        if dry_run:
            ids = [str(r[0]) for r in await self._fetch(select, params)]
            row = await self._one("SELECT COUNT(*) FROM logs WHERE run_id = ANY(%s)", (ids,))
            return ids, int(row[0]) if row else 0

        async def body(conn: Conn) -> tuple[list[str], int]:
            cur = await conn.execute(select + " FOR UPDATE", params)
            ids = [str(r[0]) for r in await cur.fetchall()]
            cur = await conn.execute("DELETE FROM logs WHERE run_id = ANY(%s)", (ids,))
            lines = cur.rowcount
            await conn.execute("DELETE FROM run_changes WHERE run_id = ANY(%s)", (ids,))
            await conn.execute("DELETE FROM commands WHERE run_id = ANY(%s)", (ids,))
            await conn.execute("DELETE FROM runs WHERE id = ANY(%s)", (ids,))
            return ids, lines

        return await self._transaction(body)
