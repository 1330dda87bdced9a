"""The embedded SQLite store: jobwatch's own runs and their logs.

``SqliteStore`` is loaded on first use: the PostgreSQL store and the CLI import
small modules of this package (``procs``, ``runs``, ``window``), and importing
any of them runs this file, which would otherwise load the whole SQLite store
(aiosqlite included) into a monitor that never opens one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwatch.sources.local.store import SqliteStore

__all__ = ["SqliteStore"]


def __getattr__(name: str) -> Any:
    if name == "SqliteStore":
        from jobwatch.sources.local.store import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
