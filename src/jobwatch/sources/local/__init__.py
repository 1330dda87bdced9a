"""The embedded SQLite store: jobwatch's own runs and their logs."""

from jobwatch.sources.local.store import SqliteStore

__all__ = ["SqliteStore"]
