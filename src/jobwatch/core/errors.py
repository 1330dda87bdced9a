"""Errors that reach the user as one clear line, never as a traceback."""

from __future__ import annotations


class JobwatchError(Exception):
    """Base for every error the CLI and TUI show as a message."""

    retry_after: float | None = None
    """Seconds the source asked us to wait before trying again (``Retry-After``)."""
    resync: bool = False
    """What a reader knew of the source no longer holds: it must sync afresh."""
    exit_code = 1
    """The CLI's exit status for it; 2 for what the user typed or configured wrong."""


class StoreError(JobwatchError):
    """The store cannot be opened, read or written."""


class UsageError(JobwatchError):
    """The command line names something unusable (exit 2, like a bad option)."""

    exit_code = 2


class StorePathError(StoreError, UsageError):
    """The store path is empty or a directory: a usage error, not a broken store."""


class StoreReplaced(StoreError):
    """The store's file was replaced by another one and has been reopened.

    ``resync``: what a reader knew about the old file (its runs, its cursor) no
    longer holds; it starts a fresh sync, and drops runs the new file lacks."""

    resync = True


class NewerStoreError(StoreError):
    """The store was written by a newer jobwatch; we refuse rather than damage it."""


class RunNotFound(JobwatchError):
    """No run matches the id (or id prefix) the user gave."""


class AmbiguousRunId(JobwatchError):
    """An id prefix matches several runs: what the user typed is not enough (exit 2,
    like a usage error); the message lists the candidates."""

    exit_code = 2


class TransitionRefused(JobwatchError):
    """Abort/archive/unarchive is not allowed for the run in its current state."""


class SourceError(JobwatchError):
    """A remote source failed; the caller marks it stale and retries later."""
