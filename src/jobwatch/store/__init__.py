"""Where runs come from: the embedded store, remote servers and vendor adapters,
all behind the :class:`~jobwatch.store.source.Source` protocol."""

from jobwatch.store.source import ActionResult, ChangeSet, LogBounds, Source
from jobwatch.store.sqlite import SqliteStore

__all__ = ["ActionResult", "ChangeSet", "LogBounds", "Source", "SqliteStore"]
