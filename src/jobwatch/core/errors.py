"""Errors that reach the user as one clear line, never as a traceback."""

from __future__ import annotations


class JobwatchError(Exception):
    """Base for every error the CLI and TUI show as a message."""

    exit_code = 1
    """The CLI's exit status for it; 2 for what the user typed or configured wrong."""


class StoreError(JobwatchError):
    """The store cannot be opened, read or written."""


class NewerStoreError(StoreError):
    """The store was written by a newer jobwatch; we refuse rather than damage it."""


class RunNotFound(JobwatchError):
    """No run matches the id (or id prefix) the user gave."""


class AmbiguousRunId(JobwatchError):
    """An id prefix matches several runs."""


class TransitionRefused(JobwatchError):
    """Abort/archive/unarchive is not allowed for the run in its current state."""


class SourceError(JobwatchError):
    """A remote source failed; the caller marks it stale and retries later."""
