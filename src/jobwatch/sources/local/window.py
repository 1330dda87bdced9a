"""Windowed reads of the store: a page of rows for a sort, a filter and an offset
or a keyset, and counts by aggregate, so a monitor over a million runs holds a few
thousand rows (see ``tui/table_model/window.py``).

Every sort of the column registry (:mod:`jobwatch.core.columns`) is written here
as a tuple of SQL expressions read in ascending order, the same order as the
registry's Python key (ties by id, then source); :func:`key_of` computes the same
tuple from a :class:`RunRow`, which is what a keyset ("after this row") compares
with a row value. The two sorts a monitor uses most (``started``, ``status``) have
expression indexes (schema version 3), so a page costs a few index steps; the
other sorts scan and keep the top of the order (measured in ``bench_store.py``).

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

from jobwatch.core import FAULTS, RunRow, Status
from jobwatch.core.columns import STATUS_RANK, last_change
from jobwatch.sources.local.runs import RunsMixin
from jobwatch.sources.protocol import StatusCounts, WindowTerm, WindowView

WHEN = "COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)"
"""``started_at or created_at or 0.0``: the registry's "when" of a row."""
_START = "COALESCE(NULLIF(started_at, 0), created_at)"
CHANGED = f"MAX(COALESCE(ended_at, {_START}), COALESCE({_START}, ended_at))"
"""The registry's ``last_change``: the later of end and start (or creation), NULL
when a run has neither (SQLite's two-argument ``MAX`` is NULL if either is)."""
_NOT_RANKED = 99
RANK = (
    "(CASE status "
    + " ".join(f"WHEN '{s.value}' THEN {rank}" for s, rank in STATUS_RANK.items())
    + f" ELSE {_NOT_RANKED} END)"
)
"""The status sort's rank, as in the registry's ``STATUS_RANK``."""

SORT_SQL: dict[str, tuple[str, ...]] = {
    "started": (f"-{WHEN}", "id", "source"),
    "status": (RANK, f"-{WHEN}", "id", "source"),
    "changed": (f"-COALESCE({CHANGED}, 0.0)", "id", "source"),
    "duration": ("-COALESCE(NULLIF(duration_ms, 0), 0.0)", f"-{WHEN}", "id", "source"),
    "source": ("source", f"-{WHEN}", "id"),
    "job": (
        "jw_lower(COALESCE(NULLIF(job, ''), NULLIF(label, ''), ''))",
        f"-{WHEN}",
        "id",
        "source",
    ),
    "problem": ("(problem IS NULL)", "COALESCE(problem, '')", f"-{WHEN}", "id", "source"),
    "id": ("id", "source"),
}
"""Each sort as ascending SQL expressions; must order exactly as the registry's key
(checked against it by ``tests/integration/test_store_window.py``)."""

INDEXES: tuple[str, ...] = (
    f"CREATE INDEX IF NOT EXISTS runs_win_started ON runs ({', '.join(SORT_SQL['started'])})",
    f"CREATE INDEX IF NOT EXISTS runs_win_status ON runs ({', '.join(SORT_SQL['status'])})",
)
"""What schema version 3 adds for the windowed sorts a monitor starts with."""

_FIELDS: dict[str | None, tuple[str, ...]] = {
    "status": ("status",),
    "id": ("id",),
    "source": ("source",),
    "job": ("job", "label"),
    "problem": ("problem",),
    "label": ("label",),
    "raw": ("status_raw",),
    None: ("status", "id", "source", "job", "label", "problem", "status_raw"),
}
"""Filter fields and the columns each is matched on (free text: all of them)."""
_PREFIXED = frozenset({"status"})
_TIMES = frozenset({"since", "before"})
"""Time terms: by the row's last change, against the bound the filter computed."""


def _when(row: RunRow) -> float:
    return row.started_at or row.created_at or 0.0


def key_of(sort: str, row: RunRow) -> tuple[Any, ...]:
    """The SQL sort tuple of ``row`` (what :data:`SORT_SQL` computes from its columns)."""
    when = -_when(row)
    if sort == "started":
        return (when, row.id, row.source)
    if sort == "status":
        return (STATUS_RANK.get(row.status, _NOT_RANKED), when, row.id, row.source)
    if sort == "changed":
        return (-(last_change(row) or 0.0), row.id, row.source)
    if sort == "duration":
        return (-(row.duration_ms or 0.0), when, row.id, row.source)
    if sort == "source":
        return (row.source, when, row.id)
    if sort == "job":
        return ((row.job or row.label or "").lower(), when, row.id, row.source)
    if sort == "problem":
        return (int(row.problem is None), row.problem or "", when, row.id, row.source)
    if sort == "id":
        return (row.id, row.source)
    raise ValueError(f"no windowed sort {sort!r}")


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _term(term: WindowTerm) -> tuple[str, list[Any]]:
    """One filter term as SQL, matching ``RunSet``'s Python filter."""
    if term.at is not None and term.field in _TIMES:  # since:1h, before:2026-12-01
        op = ">=" if term.field == "since" else "<"
        return f"COALESCE({CHANGED} {op} ?, 0)", [term.at]
    if term.field not in _FIELDS:
        raise ValueError(f"filter field {term.field!r} has no SQL translation")
    columns = _FIELDS[term.field]
    prefix = term.field in _PREFIXED
    options = [term.value] if term.field is None else [v for v in term.value.split(",") if v]
    if not options:
        if prefix:
            return "1", []
        return "(" + " OR ".join(f"COALESCE({c}, '') <> ''" for c in columns) + ")", []
    tests: list[str] = []
    params: list[Any] = []
    for option in options:
        for column in columns:
            if option.isascii():
                pattern = _like(option) + "%" if prefix else "%" + _like(option) + "%"
                tests.append(f"COALESCE({column}, '') LIKE ? ESCAPE '\\'")
                params.append(pattern)
            elif prefix:
                tests.append(f"substr(jw_lower(COALESCE({column}, '')), 1, ?) = ?")
                params += [len(option), option]
            else:
                tests.append(f"instr(jw_lower(COALESCE({column}, '')), ?) > 0")
                params.append(option)
    return "(" + " OR ".join(tests) + ")", params


def where(view: WindowView) -> tuple[list[str], list[Any]]:
    """The view's filter as SQL conditions (ANDed) and their parameters."""
    conditions: list[str] = []
    params: list[Any] = []
    if not view.show_archived:
        conditions.append("archived = 0")
    if view.faults_only:
        conditions.append("status IN (" + ", ".join(f"'{s.value}'" for s in FAULTS) + ")")
    for term in view.terms:
        sql, values = _term(term)
        conditions.append(f"NOT {sql}" if term.negate else sql)
        params += values
    return conditions, params


def translatable(view: WindowView) -> bool:
    """Whether every term of ``view`` can be asked of the store."""
    return view.sort in SORT_SQL and all(
        t.field in _FIELDS or (t.at is not None and t.field in _TIMES) for t in view.terms
    )


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
        conditions, params = where(view)
        exprs = SORT_SQL[view.sort]
        anchor = after or before
        backwards = (before is not None and after is None) or (from_end and anchor is None)
        direction = " DESC" if backwards else ""
        order = ", ".join(e + direction for e in exprs)

        async def page(
            extra: list[str], values: list[Any], count: int, by: str = order
        ) -> list[RunRow]:
            both = [*conditions, *extra]
            clause = _from(view) + ("WHERE " + " AND ".join(both) + " " if both else "")
            clause += f"ORDER BY {by} LIMIT ? OFFSET ?"
            skip = max(0, offset) if anchor is None else 0
            found, _ = await self._rows_where(clause, (*params, *values, count, skip))
            return found

        if anchor is None:
            rows = await page([], [], max(0, limit))
        else:
            # Two index ranges instead of one: the rows that tie with the anchor on the
            # first expression (searched on the first two), then the ones past it. One
            # range bounded by the first expression alone walks the anchor's whole band
            # of it first (the status sort's "succeeded": 1.2-2.4 s at 1M, measured).
            key = key_of(view.sort, anchor)
            op = ">" if after else "<"
            first, rest = exprs[0], exprs[1:]
            marks = ", ".join("?" for _ in rest)
            tie = [f"({first}) = ?", f"({rest[0]}) {op}= ?", f"({', '.join(rest)}) {op} ({marks})"]
            # (ordered without the first expression: SQLite 3.40 sorts the whole range
            # in a temporary tree when the ORDER BY names the one the range fixes)
            tied = ", ".join(e + direction for e in rest)
            rows = await page(tie, [key[0], key[1], *key[1:]], max(0, limit), tied)
            if len(rows) < limit:
                rows += await page([f"({first}) {op} ?"], [key[0]], limit - len(rows))
        if direction:
            rows.reverse()
        return rows

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        await self._follow_file()
        await self._before_read()
        await self._window_functions()
        conditions, params = where(view)
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
        # The rows before a key, as one index range per sort expression: those equal
        # on the first i expressions and below on the next (a single row-value test
        # would walk every row of the key's status band for the status sort).
        exprs, key = SORT_SQL[view.sort], key_of(view.sort, before)
        parts: list[str] = []
        values: list[Any] = []
        for i, expr in enumerate(exprs):
            level = [*conditions, *(f"({e}) = ?" for e in exprs[:i]), f"({expr}) < ?"]
            parts.append(f"(SELECT COUNT(*) FROM runs {_from(view)}WHERE {' AND '.join(level)})")
            values += [*params, *key[:i], key[i]]
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
        return _counts(await self._fetchall(sql))

    async def head_cursor(self) -> int | str | None:
        await self._follow_file()
        row = await self._fetchone("SELECT value FROM meta WHERE key = 'revision'")
        return int(row[0])


def _counts(rows: Sequence[Sequence[Any]]) -> StatusCounts:
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
