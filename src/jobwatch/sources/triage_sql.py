"""The triage fill's SQL, for both stores (SQLite and PostgreSQL): each job's
newest finished runs by ``ROW_NUMBER() OVER (PARTITION BY source, job …)``, the
active runs and the failures since a time in one query, and the failure shapes
seen before that time in another (see :class:`~jobwatch.sources.protocol.TriageFill`).
"""

from __future__ import annotations

from jobwatch.core.status import ACTIVE, FAULTS

WHEN = "COALESCE(ended_at, started_at, created_at, 0)"
"""When a run happened, as the triage index orders a job's history."""
BEFORE_LIMIT = 100_000
"""Distinct failure messages read from before the window at most."""

_ACTIVE = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE))
_FAULTS = ", ".join(f"'{s.value}'" for s in sorted(FAULTS))


def rows_clause(mark: str, per_job: str, since: str) -> str:
    """The ``WHERE`` of the fill's row query; ``mark`` selects the row identity
    (SQLite: ``rowid``, PostgreSQL: ``id``), ``per_job`` and ``since`` are the
    driver's placeholders."""
    return (
        f"WHERE status IN ({_ACTIVE}) OR {mark} IN (SELECT {mark} FROM ("
        f"SELECT {mark}, status, {WHEN} AS at, ROW_NUMBER() OVER ("
        f"PARTITION BY source, COALESCE(job, label, '') ORDER BY {WHEN} DESC) AS rn "
        f"FROM runs WHERE status NOT IN ({_ACTIVE})) t "
        f"WHERE rn <= {per_job} OR (status IN ({_FAULTS}) AND at >= {since}))"
    )


def before_query(since: str) -> str:
    return (
        f"SELECT source, problem, message, MIN({WHEN}) FROM runs "
        f"WHERE status IN ({_FAULTS}) AND {WHEN} < {since} "
        f"GROUP BY source, problem, message LIMIT {BEFORE_LIMIT}"
    )
