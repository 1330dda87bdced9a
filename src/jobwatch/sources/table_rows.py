"""Table rows straight from a store's columns, for both stores (SQLite and
PostgreSQL): the monitor's fast path builds :class:`RunRow` by position, without
JSON or pydantic, so what each column means is said once, here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobwatch.core import RunRow, Status
from jobwatch.core.gcpause import gc_paused
from jobwatch.core.row import short_message

ROW_COLUMNS = (
    "source, id, job, label, status, status_raw, created_at, started_at, ended_at, "
    "duration_ms, p_total, p_succeeded, p_failed, partial, archived, problem, message"
)
"""The first columns of every table-row query, in the order :func:`table_rows`
reads them; the store adds whether an abort is pending and the revision."""
ROW_FIELDS: tuple[str, ...] = (
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
    "message",
    "aborting",
)
"""The :class:`RunRow` field each record column holds (``ROW_COLUMNS``, then
``aborting``; the revision follows, at :data:`REVISION_AT`): ``jobwatch serve``
encodes records column by column by these names without building a row object per
record (see :mod:`jobwatch.sources.http.rows`)."""
REVISION_AT = len(ROW_FIELDS)
"""Where the revision is in a record of ``ROW_COLUMNS`` plus the two the store adds."""

_STATUSES = {s.value: s for s in Status}


def row_record(row: RunRow, revision: int = 0) -> tuple[Any, ...]:
    """``row`` as a record of ``ROW_FIELDS`` and a revision (the inverse of
    :func:`table_rows`, for a row a store shows other than it stored it)."""
    values = [getattr(row, name) for name in ROW_FIELDS]
    values[ROW_FIELDS.index("status")] = row.status.value
    return (*values, revision)


def table_rows(records: Sequence[Sequence[Any]]) -> list[RunRow]:
    """One :class:`RunRow` per record of ``ROW_COLUMNS``, then ``aborting`` (any
    truthy value), then the revision (not read here). An unknown status word is
    ``unknown``, never an error: the row still shows. The message is cleaned
    again: a store migrated from before the column holds raw text there."""
    unknown = Status.UNKNOWN
    with gc_paused():
        return [
            RunRow(
                r[0],
                r[1],
                r[2],
                r[3],
                _STATUSES.get(r[4], unknown),
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                r[11],
                r[12],
                bool(r[13]),
                bool(r[14]),
                r[15],
                bool(r[17]),
                message=short_message(r[16]) if r[16] else None,
            )
            for r in records
        ]
