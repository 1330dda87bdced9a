"""Windowed reads over ``jobwatch serve``: how a :class:`WindowView` and a page's
anchor row travel as query parameters (``/api/v1/window/…``).

A view is compact JSON: ``{"sort": …, "terms": [[field, value, negate, at], …],
"archived": bool, "faults": bool, "also": [ids]}``. An anchor (the row a page
starts after or before) is a one-row ``rows/1`` body. The client's copy of a row is
cleaned and its times are whole milliseconds, so the server pages from the row as
its store has it, found by id (:meth:`~jobwatch.sources.protocol.Source.window_row`);
the copy is used only for a row the store no longer has.

Both directions are checked here, so the server answers bad input with a 400 and
the client refuses an answer that is not a page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jobwatch.core import RunRow
from jobwatch.sources.http import rows as row_codec
from jobwatch.sources.protocol import StatusCounts, TriageFill, WindowTerm, WindowView
from jobwatch.sources.window_sql import translatable

MAX_TERMS = 50
MAX_TEXT = 1000
MAX_ALSO = 100
"""Stuck run ids a view sends (faults-only keeps them besides the faults): the view
travels in the URL, which stays under the server's 16 KB request line."""
MAX_ID = 256


def _same(text: str) -> str:
    return text


def view_param(view: WindowView) -> str:
    return json.dumps(
        {
            "sort": view.sort,
            "terms": [[t.field, t.value, t.negate, t.at] for t in view.terms],
            "archived": view.show_archived,
            "faults": view.faults_only,
            "also": list(view.also[:MAX_ALSO]),
        },
        separators=(",", ":"),
    )


def _text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what}: not a text of at most {limit} characters")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what}: not true or false")
    return value


def _term(item: Any) -> WindowTerm:
    if not isinstance(item, list) or len(item) != 4:
        raise ValueError("view: a term is [field, value, negate, at]")
    field, value, negate, at = item
    if field is not None:
        field = _text(field, "view: a term's field", 40)
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        raise ValueError("view: a term's time is not a number")
    return WindowTerm(
        field, _text(value, "view: a term's value"), _flag(negate, "view: negate"), at
    )


def parse_view(text: str) -> WindowView:
    """The view a client sent; ``ValueError`` (a 400) for anything else, or for a
    view the store's SQL cannot answer."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("view: not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("view: not an object")
    terms, also = data.get("terms", []), data.get("also", [])
    if not isinstance(terms, list) or len(terms) > MAX_TERMS:
        raise ValueError(f"view: terms is not a list of at most {MAX_TERMS}")
    if not isinstance(also, list) or len(also) > MAX_ALSO:
        raise ValueError(f"view: also is not a list of at most {MAX_ALSO} ids")
    view = WindowView(
        sort=_text(data.get("sort", "started"), "view: sort", 40),
        terms=tuple(_term(t) for t in terms),
        show_archived=_flag(data.get("archived", False), "view: archived"),
        faults_only=_flag(data.get("faults", False), "view: faults"),
        also=tuple(_text(i, "view: an id", MAX_ID) for i in also),
    )
    if not translatable(view):
        raise ValueError("view: a sort or filter field this server cannot ask its store")
    return view


def rows_body(
    rows: list[RunRow], clean: Callable[[str], str] = _same, ids: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """A ``rows/1`` body of ``rows`` (no revision: a window page is not a change)."""
    return {
        "format": row_codec.FORMAT,
        "fields": list(row_codec.FIELDS),
        "count": len(rows),
        "columns": row_codec.encode(rows, clean, ids),
    }


def anchor_param(row: RunRow) -> str:
    return json.dumps(rows_body([row]), separators=(",", ":"))


def parse_anchor(text: str) -> RunRow:
    try:
        rows = row_codec.decode(json.loads(text))
    except (ValueError, row_codec.RowsFormatError) as exc:
        raise ValueError(f"anchor: not a row ({exc})") from None
    if len(rows) != 1 or len(rows[0].id) > MAX_ID:
        raise ValueError("anchor: not one row")
    return rows[0]


def counts_json(counts: StatusCounts) -> dict[str, Any]:
    return {"by_status": counts.by_status, "archived": counts.archived}


def parse_counts(data: Any) -> StatusCounts:
    if not isinstance(data, dict):
        raise ValueError("not an object")
    by_status, archived = data.get("by_status"), data.get("archived")
    if (
        not isinstance(by_status, dict)
        or not all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in by_status.items())
        or type(archived) is not int
        or archived < 0
    ):
        raise ValueError("counts are not numbers by status")
    return StatusCounts(by_status, archived)


def triage_json(
    fill: TriageFill, clean: Callable[[str], str], ids: Callable[[str], str] | None = None
) -> dict[str, Any]:
    return {
        **rows_body(fill.rows, clean, ids),
        "before": [
            [clean(source), None if p is None else clean(p), None if m is None else clean(m), t]
            for source, p, m, t in fill.before
        ],
    }


def parse_triage(data: Any) -> TriageFill:
    rows = row_codec.decode(data)
    before = data.get("before") if isinstance(data, dict) else None
    if not isinstance(before, list):
        raise ValueError("triage answer without its failures before")
    out: list[tuple[str, str | None, str | None, float]] = []
    for item in before:
        if (
            not isinstance(item, list)
            or len(item) != 4
            or not isinstance(item[0], str)
            or not all(v is None or isinstance(v, str) for v in item[1:3])
            or isinstance(item[3], bool)
            or not isinstance(item[3], int | float)
        ):
            raise ValueError("triage answer: a failure before is not [source, problem, message, t]")
        out.append((item[0], item[1], item[2], float(item[3])))
    return TriageFill(rows, out)
