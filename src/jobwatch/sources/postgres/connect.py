"""Connections to the server: the pool for queries, one connection for LISTEN,
and the one-line messages a libpq failure turns into."""

from __future__ import annotations

import logging
import os

import psycopg
from psycopg import conninfo

from jobwatch.core.errors import SourceError
from jobwatch.core.redact import clean
from jobwatch.sources.postgres.dsn import describe

CONNECT_TIMEOUT_S = 5
"""libpq's ``connect_timeout`` unless the DSN or ``PGCONNECT_TIMEOUT`` sets one:
a server that does not answer is a stale source after this, not a hang."""


class _QuitNoise(logging.Filter):
    """Demotes to DEBUG what psycopg says when a query is cancelled while its own
    cancellation is under way: the monitor's workers are cancelled at quit (and
    again by ``asyncio.run``), and the two warnings reached the terminal on stderr
    just after the screen was restored. The connection is closed either way; a
    server that really went away is reported by the store (stale, retried)."""

    QUIET = ("query cancellation interrupted", "discarding closed connection")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(self.QUIET):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


for _name in ("psycopg", "psycopg.pool"):
    logging.getLogger(_name).addFilter(_QuitNoise())


def full_dsn(dsn: str) -> str:
    """``dsn`` with jobwatch's defaults for what it leaves open."""
    params = conninfo.conninfo_to_dict(dsn)
    extra: dict[str, str | int] = {}
    if "connect_timeout" not in params and not os.environ.get("PGCONNECT_TIMEOUT"):
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in params and not os.environ.get("PGAPPNAME"):
        extra["application_name"] = "jobwatch"
    return conninfo.make_conninfo(dsn, **extra) if extra else dsn


def reason(exc: BaseException) -> str:
    """libpq's own first line (e.g. ``connection to server on socket … failed: No
    such file or directory``), without the hints that follow it."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    first = first.removeprefix("connection is bad: ")
    # libpq puts the real cause after "failed:", sometimes on the next line.
    if first.endswith("failed:") and len(lines) > 1:
        first = f"{first} {lines[1]}"
    return clean(first)


def source_error(dsn: str, exc: BaseException, doing: str = "cannot reach") -> SourceError:
    return SourceError(f"{doing} {describe(dsn)}: {reason(exc)}")


async def probe(dsn: str) -> str:
    """Why a fresh connection fails now (a pool only says it timed out)."""
    try:
        conn = await psycopg.AsyncConnection.connect(full_dsn(dsn), autocommit=True)
    except psycopg.Error as exc:
        return reason(exc)
    await conn.close()
    return "the server answers again"
