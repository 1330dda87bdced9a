"""Windowed reads of the PostgreSQL store: the same queries as the SQLite store's
(:mod:`jobwatch.sources.local.window`), built by the same code
(:mod:`jobwatch.sources.window_sql`) in PostgreSQL's dialect.

What the dialect changes: text sorts by code point (``COLLATE "C"``, as Python
compares strings, whatever the database's collation); case is folded for a term
with non-ASCII letters by ICU's root locale (``und-x-icu``, as Python's
``str.lower`` does, where the server has ICU; else by the database's own
``lower``), ASCII terms by ``ILIKE``. The ``started`` and ``status`` sorts have
expression indexes (schema version 3; version 6 adds ``INCLUDE`` columns, so a far
jump's key query is an index-only scan, and the same for the ``changed`` and
``duration`` sorts), so their pages cost a few index steps;
the status counts come from the ``run_counts`` table the triggers keep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobwatch.core import RunRow
from jobwatch.sources.local.window import counts_of
from jobwatch.sources.protocol import StatusCounts, WindowView
from jobwatch.sources.table_rows import ROW_COLUMNS, table_rows
from jobwatch.sources.window_sql import (
    KEYED,
    Dialect,
    before_levels,
    key_of,
    named,
    read_rows,
    where,
)

if TYPE_CHECKING:
    from jobwatch.sources.postgres.store import PostgresStore

ICU = "und-x-icu"


def dialect(icu: bool) -> Dialect:
    """PostgreSQL's spelling of the windowed queries (``icu``: the server has ICU)."""
    return Dialect(
        greatest="GREATEST",
        true="true",
        false="false",
        not_archived="NOT archived",
        like="ILIKE",
        find="strpos",
        lower=(lambda e: f'lower(({e}) COLLATE "{ICU}")') if icu else (lambda e: f"lower({e})"),
        text=lambda e: f'({e}) COLLATE "C"',
        flag=lambda e: f"({e})::int",
        whole_keyset=True,
    )


SORT_SQL = dialect(True).sorts()
"""The sorts in PostgreSQL's dialect (the indexed two do not fold case)."""
INDEXED = KEYED
"""The sorts schema version 6 indexes (``runs_sort_<sort>``)."""


class PgWindow:
    """The windowed queries of :class:`~.store.PostgresStore` (``capabilities.window``)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._dialect: Dialect | None = None
        self._sorts: dict[str, tuple[str, ...]] = {}

    async def dialect(self) -> Dialect:
        if self._dialect is None:
            row = await self.store._one(
                "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = %s)", (ICU,)
            )
            self._dialect = dialect(bool(row and row[0]))
            self._sorts = self._dialect.sorts()
        return self._dialect

    async def rows(
        self,
        view: WindowView,
        *,
        offset: int,
        limit: int,
        after: RunRow | None,
        before: RunRow | None,
        from_end: bool,
    ) -> list[RunRow]:
        d = await self.dialect()

        async def fetch(clause: str, params: list[Any]) -> list[RunRow]:
            sql, bound = named(clause, params)
            found, _ = await self.store._rows_where(sql, bound)
            return found

        async def key(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
            return await self.store._one(*named(sql, params))

        return await read_rows(
            view,
            d,
            fetch,
            offset=offset,
            limit=limit,
            after=await self._as_stored(after),
            before=await self._as_stored(before),
            from_end=from_end,
            shown=self.store._shown.by_status(),
            key=key,
        )

    async def _as_stored(self, row: RunRow | None) -> RunRow | None:
        """An anchor as stored: the sorts order by the stored columns, and a row
        shown lost differs there (status, end, duration, problem)."""
        if row is None or row.id not in self.store._shown.runs:
            return row
        found = await self.store._fetch(
            f"SELECT {ROW_COLUMNS}, false, revision FROM runs WHERE id = %s", (row.id,)
        )
        return table_rows(found)[0] if found else row

    async def count(self, view: WindowView, *, before: RunRow | None) -> int:
        d = await self.dialect()
        if before is None and not view.terms and not view.faults_only:
            counts = await self.status_counts()
            shown = sum(counts.by_status.values())
            return shown + counts.archived if view.show_archived else shown
        conditions, params = where(view, d, self.store._shown.by_status())
        before = await self._as_stored(before)
        if before is None:
            sql = "SELECT COUNT(*) FROM runs"
            if conditions:
                sql += " WHERE " + " AND ".join(conditions)
            text, bound = named(sql, params)
        else:
            levels, values = before_levels(
                self._sorts[view.sort], key_of(view.sort, before), conditions, params
            )
            parts = [f"(SELECT COUNT(*) FROM runs WHERE {' AND '.join(level)})" for level in levels]
            text, bound = named("SELECT " + " + ".join(parts), values)
        row = await self.store._one(text, bound)
        return int(row[0]) if row else 0

    async def status_counts(self) -> StatusCounts:
        """From ``run_counts``; a run the store shows lost (not stored so) counted
        as shown, by one more read of those few runs."""
        counts = counts_of(
            await self.store._fetch("SELECT status, archived, n FROM run_counts WHERE n > 0")
        )
        shown = self.store._shown
        if not shown:
            return counts
        stored = await self.store._fetch(
            "SELECT id, status, revision, archived FROM runs WHERE id = ANY(%s)", (shown.ids,)
        )
        return shown.recount(counts, stored)
