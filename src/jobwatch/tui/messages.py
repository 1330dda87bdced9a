"""Every message the monitor's widgets post, in one place (small dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

Key = tuple[str, str]


@dataclass
class CursorMoved(Message):
    """The selected run changed, or the same run changed underneath the cursor."""

    key: Key | None
    user: bool = True
    """The user moved the cursor; False when a poll did (following the newest, or
    the run changed): only the user's own selection counts a failure as seen."""


@dataclass
class MarksChanged(Message):
    """Runs were marked or unmarked: the counts on the status line and footer follow."""


@dataclass
class RowsDrawn(Message):
    """The table drew its first data rows: the rest of a first sync may load now."""


@dataclass
class SearchRequested(Message):
    """The log view wants a search term from the box under it."""
