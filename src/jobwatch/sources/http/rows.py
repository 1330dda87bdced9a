"""The compact encoding of table rows between ``jobwatch serve`` and its clients
(``GET /api/v1/rows``, format ``rows/1``).

A first sync of 100k runs as full run objects cost 11.6 s (validating and
redacting every run's configuration on both ends). The table needs a dozen scalar
fields per run (:class:`RunRow`), so the server sends those, column by column:

    {"format": "rows/1", "fields": [...], "count": n,
     "columns": [[...], {"d": [distinct values], "c": [codes]}, ...],
     "revision": R, "more": false}

A column of few distinct values (source, job, label, status, raw status, problem,
flags) is a dictionary and a list of small integers: each distinct string is
redacted once instead of once per row, the body is about half the size, and
parsing integers is quicker than parsing strings. Measured on 100k rows of the
benchmark store (2-core machine under load, so ranges): a list of row arrays is
17.7 MB and decodes to rows in 1.8-2.1 s (``json.loads`` 1.2-1.3 s); dictionary
columns are 9.7 MB and decode in 0.6-1.0 s (``json.loads`` 0.37-0.40 s); objects
with field names are 36.9 MB and 2.5 s. No third-party codec is needed.

Run ids are only stripped of control characters, not searched for secrets: an
id is the key every other call names the run by (``/runs/{id}``), secret
detection costs most on exactly such random-looking strings (measured: 4 of the
13.5 s of encoding 50k rows under load went to ids), and every client cleans what
it shows again (the monitor's cells go through ``clean``).

A client reads the fields by name, so a newer server may add fields; a field the
client needs and does not find is a clear error, and a server without
``/rows`` (older than this format) answers 404, on which the client falls back
to full runs from ``/runs``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter, mul
from typing import Any

from jobwatch.core import RunRow, Status
from jobwatch.core.redact import sanitize, sanitize_many

FORMAT = "rows/1"
FIELDS: tuple[str, ...] = (
    "source",
    "id",
    "job",
    "label",
    "status",
    "status_raw",
    "created_at",
    "started_at",
    "ended_at",
    "duration_ms",
    "total",
    "succeeded",
    "failed",
    "partial",
    "archived",
    "problem",
    "aborting",
    "deleted",
    "error",
    "message",
)
"""In :class:`RunRow`'s own order, so a decoded row is built positionally (a test
keeps the two alike)."""
LOCAL_FIELDS: tuple[str, ...] = ("stuck_since",)
""":class:`RunRow` fields after :data:`FIELDS` that the monitor sets itself (the
stuck stamp, ``tui/live.py``): never sent, left at their defaults when decoded."""
OPTIONAL: dict[str, Any] = {"deleted": False, "error": None, "message": None}
"""Fields a rows/1 answer may lack (added after the format, or the same in every
row), and their value then. A field the client does not know is ignored."""
_DEFAULTS: dict[str, Any] = {"aborting": False, "deleted": False, "error": None}
"""What the server sends for a field its source's records lack."""
DICTIONARY = frozenset(
    {
        "source",
        "job",
        "label",
        "status",
        "status_raw",
        "partial",
        "archived",
        "problem",
        "aborting",
        "deleted",
    }
)
"""Columns sent as a dictionary and codes (few distinct values in practice)."""
REPEATING = frozenset({"error", "message"})
"""Text columns sent as a dictionary on a page where their values repeat (a
failure's message often does: the failure groups are built on that), else as a
list: each distinct message is then cleaned once, not once per row."""
TEXT = frozenset({"source", "id", "job", "label", "status_raw", "problem", "error", "message"})
"""Columns of outside text: redacted and cleaned by the server before they leave."""


NUMBERS = frozenset(
    {"created_at", "started_at", "ended_at", "duration_ms", "total", "succeeded", "failed"}
)


FLAGS = frozenset({"partial", "archived", "aborting", "deleted"})
MILLIS = frozenset({"created_at", "started_at", "ended_at", "duration_ms"})
"""Sent as whole milliseconds (times since the epoch, durations): printing and
parsing 200k floats cost four times as much as integers (measured), and the table
shows nothing finer than a tenth of a second."""


class RowsFormatError(ValueError):
    """A rows answer that does not have the shape of ``rows/1``."""


def encode(
    rows: Sequence[RunRow],
    clean: Callable[[str], str],
    ids: Callable[[str], str] | None = None,
) -> list[Any]:
    """The ``columns`` of ``rows``; ``clean`` is applied to every text value (once
    per distinct value in a dictionary column), ``ids`` (default ``clean``) to the
    run ids, which are unique and so the dear column to redact."""
    # one pass per field: transposing row objects cost three times as much (measured)
    return encode_columns(
        {name: list(map(attrgetter(name), rows)) for name in FIELDS}, len(rows), clean, ids
    )


def encode_records(
    fields: Sequence[str],
    records: Sequence[Sequence[Any]],
    clean: Callable[[str], str],
    ids: Callable[[str], str] | None = None,
) -> list[Any]:
    """:func:`encode` of a store's records (``fields`` names their values; the
    rest of a record is ignored): transposed in C, no row object built."""
    columns = list(zip(*records, strict=True)) if records else [()] * len(fields)
    return encode_columns(dict(zip(fields, columns, strict=False)), len(records), clean, ids)


def encode_columns(
    values_of: Mapping[str, Sequence[Any]],
    count: int,
    clean: Callable[[str], str],
    ids: Callable[[str], str] | None = None,
) -> list[Any]:
    """The ``columns`` of every field in ``FIELDS`` from its values (a field
    ``values_of`` lacks is its :class:`RunRow` default in every row). Statuses may
    be :class:`Status` or their words, flags booleans or 0/1."""
    columns: list[Any] = []
    for name in FIELDS:
        values = values_of.get(name)
        if values is None:
            values = [_DEFAULTS.get(name, False if name in FLAGS else None)] * count
        if name in DICTIONARY:
            index = {v: n for n, v in enumerate(dict.fromkeys(values))}
            distinct: list[Any] = list(index)
            if name == "status":
                distinct = [v.value if isinstance(v, Status) else clean(str(v)) for v in distinct]
            elif name in FLAGS:
                distinct = [1 if v else 0 for v in distinct]
            elif name in TEXT:
                distinct = [clean(v) if isinstance(v, str) else v for v in distinct]
            columns.append({"d": distinct, "c": list(map(index.__getitem__, values))})
        elif name in REPEATING and _repeats(values):
            index = {v: n for n, v in enumerate(dict.fromkeys(values))}
            distinct = [clean(v) if isinstance(v, str) else v for v in index]
            columns.append({"d": distinct, "c": list(map(index.__getitem__, values))})
        elif name in TEXT:
            tidy = ids if name == "id" and ids is not None else clean
            if name == "id" and tidy is sanitize:
                columns.append(sanitize_many(list(values)))  # one search for them all
            elif name == "id" or None not in values:
                columns.append(list(map(tidy, values)))
            else:
                columns.append([tidy(v) if isinstance(v, str) else v for v in values])
        elif name in MILLIS:
            scale = 1.0 if name == "duration_ms" else 1000.0
            if None in values:
                columns.append([None if v is None else round(v * scale) for v in values])
            else:  # in C: a comprehension cost twice as much (measured)
                columns.append(list(map(round, map(mul, values, repeat(scale)))))
        else:
            columns.append(values if isinstance(values, list) else list(values))
    return columns


def _repeats(values: Sequence[Any]) -> bool:
    """Whether a column has at most half as many distinct values as rows."""
    return len(dict.fromkeys(values)) * 2 <= len(values)


def _column(body: dict[str, Any], name: str, count: int) -> list[Any]:
    fields = body.get("fields")
    columns = body.get("columns")
    if not isinstance(fields, list) or not isinstance(columns, list):
        raise RowsFormatError("rows answer without fields and columns")
    if name not in fields and name in OPTIONAL:
        return [OPTIONAL[name]] * count
    try:
        column = columns[fields.index(name)]
    except (ValueError, IndexError):
        raise RowsFormatError(f"rows answer without the {name!r} column") from None
    if isinstance(column, dict):
        distinct, codes = column.get("d"), column.get("c")
        if not isinstance(distinct, list) or not isinstance(codes, list):
            raise RowsFormatError(f"rows answer: column {name!r} is not a dictionary")
        if name == "status":
            known = {s.value: s for s in Status}
            distinct = [known.get(v, Status.UNKNOWN) for v in distinct]
        elif name in FLAGS:
            distinct = [v == 1 for v in distinct]
        _check_types(name, distinct)  # each distinct value once, not once per row
        try:
            column = [distinct[c] for c in codes]
        except (IndexError, TypeError):
            raise RowsFormatError(f"rows answer: column {name!r} has bad codes") from None
    elif not isinstance(column, list):
        raise RowsFormatError(f"rows answer: column {name!r} is not a list")
    else:
        _check_types(name, column)
        if name in MILLIS and name != "duration_ms":
            column = [None if v is None else v / 1000 for v in column]
    if len(column) != count:
        raise RowsFormatError(f"rows answer: column {name!r} has {len(column)} of {count} rows")
    return column


def decode(body: Any) -> list[RunRow]:
    """The rows of a ``rows/1`` answer (raises :class:`RowsFormatError`)."""
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise RowsFormatError(f"not a {FORMAT} answer")
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise RowsFormatError("rows answer without a count")
    columns = [_column(body, name, count) for name in FIELDS]
    return list(map(RunRow, *columns))


_KEYS: frozenset[type] = frozenset({str})
_TEXTS: frozenset[type] = frozenset({str, type(None)})
_NUMBER_TYPES: frozenset[type] = frozenset({int, float, type(None)})


def _check_types(name: str, values: list[Any]) -> None:
    """Refuse a value of the wrong type in a text or number column (the set of
    types is built in C: a test per value in Python cost more than the rest of
    decoding, measured)."""
    allowed: frozenset[type]
    if name in ("source", "id"):
        allowed = _KEYS
    elif name in TEXT:
        allowed = _TEXTS
    elif name in NUMBERS:
        allowed = _NUMBER_TYPES
    else:
        return
    if not allowed.issuperset(map(type, values)):
        raise RowsFormatError(f"rows answer: a value of {name!r} of the wrong type")
