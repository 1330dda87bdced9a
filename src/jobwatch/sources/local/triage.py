"""The SQLite store's triage fill (:meth:`Source.triage_rows`)."""

from __future__ import annotations

from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.protocol import TriageFill
from jobwatch.sources.triage_sql import before_query, rows_clause


class TriageMixin(RunsMixin):
    async def triage_rows(self, *, per_job: int, since: float) -> TriageFill:
        await self._follow_file()
        await self._before_read()
        # on the second connection: the window's pages must not wait behind it
        clause = rows_clause("rowid", "?", "?")
        rows, _ = await self._rows_where(clause, (per_job, since), aside=True)
        before = await self._fetchall_aside(before_query("?"), (since,))
        return TriageFill(rows, [(r[0], r[1], r[2], float(r[3])) for r in before])
