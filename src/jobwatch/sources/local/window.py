"""Windowed reads of the store: a page of rows for a sort, a filter and an offset
or a keyset, and counts by aggregate, so a monitor over a million runs holds a few
thousand rows (see ``tui/table_model/window.py``).

Every sort of the column registry (:mod:`jobwatch.core.columns`) is written here
as a tuple of SQL expressions read in ascending order, the same order as the
registry's Python key (ties by id, then source); :func:`key_of` computes the same
tuple from a :class:`RunRow`, which is what a keyset ("after this row") compares
with a row value. The sorts by start, status, last change and duration have
expression indexes (schema version 3 the first two; version 7 all four, ending in
``archived``, for far jumps), so a page costs a few index steps; the other sorts
scan and keep the top of the order (measured in ``bench_store.py``).

What the filter grammar says becomes SQL: ``status:`` (prefix), ``job:``,
``source:``, ``id:``, ``problem:``, ``label:``, ``raw:`` and free text
(substrings, via ``LIKE``), ``since:``/``before:`` (by last change), ``!`` and
faults-only. ``LIKE`` folds case for ASCII
only, so a term with other letters is matched by a Python ``lower()`` registered
on the connection (slower, as exact as the monitor's own filter). A term on a
field this module does not know is refused (:class:`ValueError`): the monitor
then keeps the whole table in memory, as for any source without windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobwatch.core import RunRow, Status
from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.protocol import StatusCounts, WindowView
from jobwatch.sources.table_rows import ROW_COLUMNS, table_rows
from jobwatch.sources.window_sql import (
    KEYED,
    RANK,
    SQLITE,
    WHEN,
    before_levels,
    key_of,
    read_rows,
    translatable,
    where,
)

CHANGED = SQLITE.changed
SORT_SQL: dict[str, tuple[str, ...]] = SQLITE.sorts()
"""Each sort as ascending SQL expressions (the shared builder, SQLite's dialect)."""

INDEXED = KEYED
"""The sorts with an index (``runs_sort_<sort>``, schema version 7)."""
INDEXES: tuple[str, ...] = tuple(
    f"CREATE INDEX IF NOT EXISTS runs_sort_{sort} ON runs ({', '.join(SORT_SQL[sort])}, archived)"
    for sort in INDEXED
)
"""What schema version 7 has for the windowed sorts: their expressions, then
``archived``, so a far jump's key is read from the index alone."""


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _keyset(
    conditions: list[str], params: list[Any], exprs: Sequence[str], key: Sequence[Any], op: str
) -> None:
    """Rows after (``>``) or before (``<``) ``key`` in the sort ``exprs``: a row value,
    plus the same bound on the first expression alone, which is what lets SQLite
    3.40 *search* the expression index instead of scanning it (measured: 13 ms
    instead of seconds for a page half a million rows down)."""
    marks = ", ".join("?" for _ in exprs)
    conditions.append(f"({exprs[0]}) {op}= ?")
    conditions.append(f"({', '.join(exprs)}) {op} ({marks})")
    params += [key[0], *key]


def _from(view: WindowView) -> str:
    """A view with filter terms is read by one scan of the table and a top-N sort:
    walking an index in order and looking up every row it passes is slower when
    few rows match (measured at 1M runs: a term matching none, 4.4 s by the index
    against 0.6 s by the scan)."""
    return "NOT INDEXED " if view.terms else ""


class WindowMixin(RunsMixin):
    """The store's answers to windowed queries (``capabilities.window``)."""

    _functions_on: object | None = None

    async def _window_functions(self) -> None:
        """``jw_lower`` (Python's ``str.lower``) on the connection in use."""
        conn = self._conn
        if self._functions_on is not conn:
            await conn.create_function("jw_lower", 1, _lower, deterministic=True)
            self._functions_on = conn

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
        await self._follow_file()
        await self._before_read()
        await self._window_functions()

        async def fetch(clause: str, params: list[Any]) -> list[RunRow]:
            found, _ = await self._rows_where(clause, tuple(params))
            return found

        async def key(sql: str, params: list[Any]) -> Sequence[Any] | None:
            row = await self._fetchone(sql, params)
            return None if row is None else tuple(row)

        return await read_rows(
            view,
            SQLITE,
            fetch,
            offset=offset,
            limit=limit,
            after=await self._as_stored(after),
            before=await self._as_stored(before),
            from_end=from_end,
            scan=_from(view),
            shown=self._shown.by_status(),
            key=key,
        )

    async def _as_stored(self, row: RunRow | None) -> RunRow | None:
        """An anchor as stored: the sorts order by the stored columns, and a row
        shown lost differs there (status, end, duration, problem)."""
        if row is None or row.id not in self._shown.runs:
            return row
        found = await self._fetchall(
            f"SELECT {ROW_COLUMNS}, 0, revision FROM runs WHERE id = ?", (row.id,)
        )
        return table_rows(found)[0] if found else row

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        await self._follow_file()
        await self._before_read()
        await self._window_functions()
        conditions, params = where(view, SQLITE, self._shown.by_status())
        before = await self._as_stored(before)
        if before is None and not view.terms and not view.faults_only:
            counts = await self.status_counts()
            shown = sum(counts.by_status.values())
            return shown + counts.archived if view.show_archived else shown
        if before is None:
            sql = "SELECT COUNT(*) FROM runs " + _from(view)
            if conditions:
                sql += " WHERE " + " AND ".join(conditions)
            row = await self._fetchone(sql, params)
            return int(row[0])
        levels, values = before_levels(
            SORT_SQL[view.sort], key_of(view.sort, before), conditions, params
        )
        parts = [
            f"(SELECT COUNT(*) FROM runs {_from(view)}WHERE {' AND '.join(level)})"
            for level in levels
        ]
        row = await self._fetchone("SELECT " + " + ".join(parts), values)
        return int(row[0])

    async def status_counts(self) -> StatusCounts:
        """From the ``run_counts`` table the triggers keep (a dozen rows); an older
        store opened read-only is counted by a scan."""
        await self._follow_file()
        if self.schema_version >= 3:
            sql = "SELECT status, archived, n FROM run_counts WHERE n > 0"
        else:
            sql = "SELECT status, archived, COUNT(*) FROM runs GROUP BY status, archived"
        counts = counts_of(await self._fetchall(sql))
        if not self._shown:
            return counts
        ids = self._shown.ids
        marks = ", ".join("?" for _ in ids)
        stored = await self._fetchall(
            f"SELECT id, status, revision, archived FROM runs WHERE id IN ({marks})", ids
        )
        return self._shown.recount(counts, stored)

    async def head_cursor(self) -> int | str | None:
        await self._follow_file()
        row = await self._fetchone("SELECT value FROM meta WHERE key = 'revision'")
        return int(row[0])

    async def window_row(self, run_id: str) -> RunRow | None:
        await self._follow_file()
        await self._before_read()
        rows, _ = await self._rows_where("WHERE id = ?", (run_id,))
        return rows[0] if rows else None


def counts_of(rows: Sequence[Sequence[Any]]) -> StatusCounts:
    """Status counts from ``(status, archived, n)`` rows (shared with PostgreSQL)."""
    known = {s.value for s in Status}
    by_status: dict[str, int] = {}
    archived = 0
    for status, is_archived, n in rows:
        if is_archived:
            archived += int(n)
        else:
            name = status if status in known else Status.UNKNOWN.value
            by_status[name] = by_status.get(name, 0) + int(n)
    return StatusCounts(by_status, archived)


__all__ = ["CHANGED", "INDEXES", "RANK", "SORT_SQL", "WHEN", "key_of", "translatable", "where"]
