"""The shared PostgreSQL store (``pip install 'jobwatch[postgres]'``).

Why psycopg 3 (with psycopg-pool) and not asyncpg: psycopg talks through libpq,
so a DSN means exactly what it means to ``psql`` — ``PG*`` variables,
``~/.pgpass``, ``service=`` names from ``pg_service.conf``, ``sslmode`` and
client certificates all work with no code of ours; asyncpg re-implements the
protocol and only some of those. psycopg also has a synchronous API with the
same types, which the ``jobwatch run`` writer thread needs (``COPY`` of log
lines off the event loop), and ``LISTEN``/``NOTIFY`` as an async iterator.
"""

from __future__ import annotations

from jobwatch.sources.postgres.dsn import check_dsn, is_dsn

__all__ = ["check_dsn", "is_dsn"]
