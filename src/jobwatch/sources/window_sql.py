"""The SQL of windowed reads, for both stores (SQLite and PostgreSQL): each sort of
the column registry as ascending SQL expressions, the filter grammar as SQL
conditions, and the keyset tuple of a row; and ``jobwatch list``'s filter. One
builder, a :class:`Dialect` for what the two engines spell differently, so the
two stores cannot drift apart.

Placeholders are ``?``; the PostgreSQL store renames them (:func:`named`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobwatch.core import FAULTS, RunRow
from jobwatch.core.columns import STATUS_RANK, last_change
from jobwatch.sources.protocol import ListQuery, WindowTerm, WindowView

NOT_RANKED = 99
RANK = (
    "(CASE status "
    + " ".join(f"WHEN '{s.value}' THEN {rank}" for s, rank in STATUS_RANK.items())
    + f" ELSE {NOT_RANKED} END)"
)
"""The status sort's rank, as in the registry's ``STATUS_RANK``."""

WHEN = "COALESCE(NULLIF(started_at, 0), NULLIF(created_at, 0), 0.0)"
"""``started_at or created_at or 0.0``: the registry's "when" of a row."""
_START = "COALESCE(NULLIF(started_at, 0), created_at)"


def _same(expr: str) -> str:
    return expr


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines. ``lower`` folds case as Python's
    ``str.lower`` does; ``text`` makes a text expression sort by code point (as
    Python compares strings); ``flag`` turns a condition into 0/1."""

    greatest: str = "MAX"
    true: str = "1"
    false: str = "0"
    not_archived: str = "archived = 0"
    like: str = "LIKE"
    find: str = "instr"
    lower: Callable[[str], str] = field(default=lambda e: f"jw_lower({e})")
    text: Callable[[str], str] = field(default=_same)
    flag: Callable[[str], str] = field(default=_same)
    whole_keyset: bool = False
    """A keyset's tie range as one row value over every expression, ordered by all
    of them (PostgreSQL reads it from the sort's own index); else SQLite's shape,
    see :func:`tie_and_past`."""

    @property
    def changed(self) -> str:
        """The registry's ``last_change``: the later of end and start (or creation),
        NULL when a run has neither (both arguments are NULL together)."""
        return f"{self.greatest}(COALESCE(ended_at, {_START}), COALESCE({_START}, ended_at))"

    def sorts(self) -> dict[str, tuple[str, ...]]:
        """Each sort as ascending SQL expressions; must order exactly as the
        registry's key (checked by ``tests/integration/test_store_window.py``)."""
        when = f"-{WHEN}"
        ident, source = self.text("id"), self.text("source")
        job = self.text(self.lower("COALESCE(NULLIF(job, ''), NULLIF(label, ''), '')"))
        return {
            "started": (when, ident, source),
            "status": (RANK, when, ident, source),
            "changed": (f"-COALESCE({self.changed}, 0.0)", ident, source),
            "duration": ("-COALESCE(NULLIF(duration_ms, 0), 0.0)", when, ident, source),
            "source": (source, when, ident),
            "job": (job, when, ident, source),
            "problem": (
                self.flag("(problem IS NULL)"),
                self.text("COALESCE(problem, '')"),
                when,
                ident,
                source,
            ),
            "id": (ident, source),
        }


SQLITE = Dialect()

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
    """The SQL sort tuple of ``row`` (what :meth:`Dialect.sorts` computes from its columns)."""
    when = -_when(row)
    if sort == "started":
        return (when, row.id, row.source)
    if sort == "status":
        return (STATUS_RANK.get(row.status, NOT_RANKED), when, row.id, row.source)
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


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


Shown = Mapping[str, Sequence[str]]
"""Status word -> ids of the runs a store shows with that status although it
stored another (runs shown lost by a store that writes nothing)."""


def shown_status(shown: Shown) -> tuple[str, list[Any]]:
    """The status a row shows, as SQL and its parameters: ``status`` itself, unless
    ``shown`` says otherwise for some ids."""
    cases: list[str] = []
    params: list[Any] = []
    for word, ids in shown.items():
        if ids:
            cases.append(f"WHEN id IN ({', '.join('?' for _ in ids)}) THEN ?")
            params += [*ids, word]
    if not cases:
        return "status", []
    return f"(CASE {' '.join(cases)} ELSE status END)", params


def _term(term: WindowTerm, d: Dialect, shown: Shown | None = None) -> tuple[str, list[Any]]:
    """One filter term as SQL, matching ``RunSet``'s Python filter; the status
    column is what a row shows (``shown``)."""
    if term.at is not None and term.field in _TIMES:  # since:1h, before:2026-12-01
        op = ">=" if term.field == "since" else "<"
        return f"COALESCE({d.changed} {op} ?, {d.false})", [term.at]
    if term.field not in _FIELDS:
        raise ValueError(f"filter field {term.field!r} has no SQL translation")
    status = shown_status(shown or {})

    def column_of(name: str) -> tuple[str, list[Any]]:
        return status if name == "status" else (name, [])

    columns = _FIELDS[term.field]
    prefix = term.field in _PREFIXED
    options = [term.value] if term.field is None else [v for v in term.value.split(",") if v]
    if not options:
        if prefix:
            return d.true, []
        empty: list[str] = []
        params: list[Any] = []
        for name in columns:
            column, values = column_of(name)
            empty.append(f"COALESCE({column}, '') <> ''")
            params += values
        return "(" + " OR ".join(empty) + ")", params
    tests: list[str] = []
    params = []
    for option in options:
        for name in columns:
            column, values = column_of(name)
            params += values  # the column's own parameters come first in each test
            lowered = d.lower(f"COALESCE({column}, '')")
            if option.isascii():
                pattern = _like(option) + "%" if prefix else "%" + _like(option) + "%"
                tests.append(f"COALESCE({column}, '') {d.like} ? ESCAPE '\\'")
                params.append(pattern)
            elif prefix:
                tests.append(f"substr({lowered}, 1, ?) = ?")
                params += [len(option), option]
            else:
                tests.append(f"{d.find}({lowered}, ?) > 0")
                params.append(option)
    return "(" + " OR ".join(tests) + ")", params


def where(
    view: WindowView, d: Dialect = SQLITE, shown: Shown | None = None
) -> tuple[list[str], list[Any]]:
    """The view's filter as SQL conditions (ANDed) and their parameters. ``shown``:
    runs whose shown status is not the stored one (a run shown lost is a fault,
    matches ``status:unknown``), so the filter keeps what the rows show."""
    conditions: list[str] = []
    params: list[Any] = []
    if not view.show_archived:
        conditions.append(d.not_archived)
    if view.faults_only:
        status, status_params = shown_status(shown or {})
        params += status_params
        faults = f"{status} IN (" + ", ".join(f"'{s.value}'" for s in FAULTS) + ")"
        if view.also:  # stuck runs are faults too (triage/stuck.py)
            faults = f"({faults} OR id IN ({', '.join('?' for _ in view.also)}))"
            params += list(view.also)
        conditions.append(faults)
    for term in view.terms:
        sql, values = _term(term, d, shown)
        conditions.append(f"NOT {sql}" if term.negate else sql)
        params += values
    return conditions, params


def list_where(
    query: ListQuery, d: Dialect = SQLITE, *, shown_ids: Sequence[str] = ()
) -> tuple[list[str], list[Any]]:
    """``jobwatch list``'s filter (exact statuses, jobs, run sources; archived or
    not) as SQL conditions (ANDed) and their parameters. ``shown_ids`` pass the
    status test whatever their stored status (SQLite's runs shown lost, stored
    active: the caller checks their shown status)."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, given in (
        ("status", query.statuses),
        ("job", query.jobs),
        ("source", query.run_sources),
    ):
        values = list(given)
        if not values:
            continue
        test = f"{column} IN ({', '.join('?' for _ in values)})"
        if column == "status" and shown_ids:
            test = f"({test} OR id IN ({', '.join('?' for _ in shown_ids)}))"
            values += list(shown_ids)
        conditions.append(test)
        params += values
    if not query.include_archived:
        conditions.append(d.not_archived)
    return conditions, params


def translatable(view: WindowView) -> bool:
    """Whether every term of ``view`` can be asked of the store."""
    return view.sort in SQLITE.sorts() and all(
        t.field in _FIELDS or (t.at is not None and t.field in _TIMES) for t in view.terms
    )


def tie_and_past(
    exprs: tuple[str, ...], key: tuple[Any, ...], op: str, *, whole: bool = False
) -> tuple[tuple[list[str], list[Any]], tuple[list[str], list[Any]]]:
    """Rows after (``>``) or before (``<``) ``key`` as two index ranges: those that
    tie with it on the first expression (searched on the first two), then the ones
    past it. One range bounded by the first expression alone walks the key's whole
    band of it first (the status sort's "succeeded": seconds at 1M, measured).
    ``whole``: the tie's row value spans every expression, so PostgreSQL reads it
    from the sort's own index (else it may pick the index of the other columns)."""
    first, rest = exprs[0], exprs[1:]
    past = ([f"({first}) {op} ?"], [key[0]])
    if whole:
        marks = ", ".join("?" for _ in exprs)
        return ([f"({first}) = ?", f"({', '.join(exprs)}) {op} ({marks})"], [key[0], *key]), past
    marks = ", ".join("?" for _ in rest)
    tie = [f"({first}) = ?", f"({rest[0]}) {op}= ?", f"({', '.join(rest)}) {op} ({marks})"]
    return (tie, [key[0], key[1], *key[1:]]), past


Fetch = Callable[[str, list[Any]], Awaitable[list[RunRow]]]
"""Runs the store's ``SELECT <row columns> FROM runs <clause>`` with ``?`` parameters."""
KeyFetch = Callable[[str, list[Any]], Awaitable[Sequence[Any] | None]]
"""Runs a whole ``SELECT`` with ``?`` parameters; its first row, or ``None``."""

JUMP_FROM = 200
"""From this offset a page is read key first (:func:`read_rows`): below it the
rows an ``OFFSET`` skips cost less than a second query."""
KEYED = ("started", "status", "changed", "duration")
"""The sorts read key first at a far offset: both stores have an index for each
that answers the key query alone. The others have none, so a key query would be
one more scan and sort of the table."""


def keyed(view: WindowView) -> bool:
    """Whether a far page of ``view`` is read key first (see :func:`read_rows`)."""
    return view.sort in KEYED and not view.terms


async def read_rows(
    view: WindowView,
    d: Dialect,
    fetch: Fetch,
    *,
    offset: int,
    limit: int,
    after: RunRow | None,
    before: RunRow | None,
    from_end: bool,
    scan: str = "",
    shown: Shown | None = None,
    key: KeyFetch | None = None,
) -> list[RunRow]:
    """``window_rows`` of either store: a page by offset (``from_end``: read
    backwards), or after/before a row by keyset; always in ascending order.
    ``scan`` goes before the ``WHERE`` (SQLite's ``NOT INDEXED``); ``shown`` as for
    :func:`where` (the sort still orders by the stored columns, so an anchor must
    be a row as stored).

    A far offset (``>= JUMP_FROM``, with ``key``) is read key first: the sort key
    of the row just before the page, by a query the engine answers from the
    sort's index alone (its expressions and ``archived``: SQLite's schema 7,
    PostgreSQL's 6), then the page by keyset after that key. ``LIMIT ? OFFSET ?``
    with the row columns fetches every skipped row from the table (1M runs,
    offset 500k, 3,000 rows, by start: SQLite 1.2-1.6 s before schema 7, 82-148
    ms now; PostgreSQL 223-250 ms by OFFSET, 94 ms key first). The keys are unique (every
    sort ends in the id), so the page is exactly the one ``OFFSET`` returns. Only
    for the :data:`KEYED` sorts and views without filter terms: a term's columns
    are in no index, so the key query would walk the table as ``OFFSET`` does and
    the keyset page again (SQLite at 1M runs, free text: 2.5 s against 1.4 s)."""
    conditions, params = where(view, d, shown)
    exprs = d.sorts()[view.sort]
    anchor = after or before
    backwards = (before is not None and after is None) or (from_end and anchor is None)
    direction = " DESC" if backwards else ""
    order = ", ".join(e + direction for e in exprs)

    def clause_of(extra: list[str], by: str) -> str:
        both = [*conditions, *extra]
        clause = scan + ("WHERE " + " AND ".join(both) + " " if both else "")
        return clause + f"ORDER BY {by} LIMIT ? OFFSET ?"

    async def page(
        extra: list[str], values: list[Any], count: int, by: str, skip: int = 0
    ) -> list[RunRow]:
        return await fetch(clause_of(extra, by), [*params, *values, count, skip])

    async def past(found: tuple[Any, ...], op: str) -> list[RunRow]:
        """The page after (``>``) or before (``<``) the key ``found``."""
        (tie, tie_values), (beyond, beyond_values) = tie_and_past(
            exprs, found, op, whole=d.whole_keyset
        )
        # (SQLite's tie is ordered without the first expression: SQLite 3.40 sorts
        # the whole range in a temporary tree when the ORDER BY names the one the
        # range fixes)
        tied = order if d.whole_keyset else ", ".join(e + direction for e in exprs[1:])
        rows = await page(tie, tie_values, max(0, limit), tied)
        if len(rows) < limit:
            rows += await page(beyond, beyond_values, limit - len(rows), order)
        return rows

    if anchor is not None:
        rows = await past(key_of(view.sort, anchor), ">" if after else "<")
    elif key is not None and offset >= JUMP_FROM and limit > 0 and keyed(view):
        sql = f"SELECT {', '.join(exprs)} FROM runs " + clause_of([], order)
        found = await key(sql, [*params, 1, offset - 1])
        rows = [] if found is None else await past(tuple(found), "<" if backwards else ">")
    else:
        rows = await page([], [], max(0, limit), order, max(0, offset))
    if direction:
        rows.reverse()
    return rows


def before_levels(
    exprs: tuple[str, ...], key: tuple[Any, ...], conditions: list[str], params: list[Any]
) -> tuple[list[list[str]], list[Any]]:
    """The rows before ``key`` as one index range per sort expression: those equal
    on the first i expressions and below on the next (a single row-value test
    would walk every row of the key's band of the first expression)."""
    levels: list[list[str]] = []
    values: list[Any] = []
    for i, expr in enumerate(exprs):
        levels.append([*conditions, *(f"({e}) = ?" for e in exprs[:i]), f"({expr}) < ?"])
        values += [*params, *key[:i], key[i]]
    return levels, values


def named(sql: str, params: list[Any]) -> tuple[str, dict[str, Any]]:
    """``?`` placeholders as psycopg's ``%(wN)s`` (a literal ``%`` doubled)."""
    parts = sql.replace("%", "%%").split("?")
    if len(parts) - 1 != len(params):
        raise ValueError("placeholders and parameters differ in number")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += f"%(w{i})s" + part
    return out, {f"w{i}": value for i, value in enumerate(params)}
