"""Telling a PostgreSQL connection string from a store path, and checking it.

A DSN is what libpq takes: a ``postgresql://`` or ``postgres://`` URL, or
``key=value`` words (``service=jobs``, ``host=db dbname=jobs``). Everything a
libpq user expects comes with it: ``PG*`` variables, ``~/.pgpass``, service
files. Only a password is refused: on the command line it is readable by every
user of the machine (``ps``), so it belongs in ``.pgpass``, ``PGPASSFILE``,
``PGPASSWORD`` or a service file, like any token jobwatch refuses on argv.
"""

from __future__ import annotations

import re
import urllib.parse

from jobwatch.core.errors import UsageError
from jobwatch.core.redact import clean

_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD = re.compile(r"^\s*(service|host|hostaddr|dbname|user|port|sslmode)\s*=", re.IGNORECASE)
_PASSWORD = "a password on the command line is visible to every user (ps)"
_INSTEAD = "put it in ~/.pgpass, PGPASSFILE, PGPASSWORD or a service file"


def is_dsn(spec: str) -> bool:
    """A PostgreSQL connection string rather than a store path or an HTTP URL."""
    text = spec.strip()
    return text.lower().startswith(_SCHEMES) or bool(_KEYWORD.match(text))


def check_dsn(spec: str, *, where: str = "--store", argv: bool = True) -> str:
    """``spec`` if libpq can parse it and (``argv``: it came from the command
    line) carries no password; else one line. From the environment
    (``$JOBWATCH_STORE``) a password is allowed, as any token there is."""
    from psycopg import conninfo

    text = spec.strip()
    if text.lower().startswith(_SCHEMES):
        parts = urllib.parse.urlsplit(text)
        if parts.password is not None and argv:
            raise UsageError(f"{where}: {_PASSWORD}; {_INSTEAD}")
    try:
        params = conninfo.conninfo_to_dict(text)
    except Exception as exc:  # psycopg.ProgrammingError: libpq could not parse it
        raise UsageError(
            f"{where}: not a PostgreSQL connection string: {_first_line(exc)}"
        ) from None
    if params.get("password") and argv:
        raise UsageError(f"{where}: {_PASSWORD}; {_INSTEAD}")
    return text


def describe(dsn: str) -> str:
    """Where a DSN points, for messages: its host (or socket folder), port and
    database, never anything else it carries."""
    from psycopg import conninfo

    try:
        params = conninfo.conninfo_to_dict(dsn)
    except Exception:
        return "postgresql"
    if params.get("service"):
        return f"postgresql service={clean(str(params['service']))}"
    host = str(params.get("host") or params.get("hostaddr") or "")
    port = str(params.get("port") or "")
    db = str(params.get("dbname") or "")
    where = host + (f":{port}" if port else "")
    return clean(f"postgresql {where}/{db}".replace("  ", " ").rstrip("/"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return clean(text[0]) if text else type(exc).__name__
