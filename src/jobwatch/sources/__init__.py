"""Where runs come from: the embedded store, remote servers and vendor adapters,
all behind the :class:`~jobwatch.sources.protocol.Source` protocol."""

from jobwatch.sources.protocol import ActionResult, ChangeSet, LogBounds, Source

__all__ = ["ActionResult", "ChangeSet", "LogBounds", "Source"]
