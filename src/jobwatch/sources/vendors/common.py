"""Small value readers the vendor mappers share.

Only what means exactly the same for every system lives here; what a field may
hold, and whether an odd value is an error or just unknown, stays with each
adapter, which wraps these in its own rules and messages.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (JSON ``true`` is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def whole_number(value: Any) -> int | None:
    """``3`` or ``3.0`` as ``3``; ``None`` for anything else (bools, fractions,
    NaN, infinities, text)."""
    if is_int(value):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def iso_datetime(text: str) -> datetime:
    """An ISO 8601 date-time; one without a zone is taken as UTC.
    Raises :class:`ValueError` for anything else."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def epoch_datetime(value: float) -> datetime:
    """Seconds since the epoch, or milliseconds when the number is too large to be
    seconds (past the year 5138). Raises what :meth:`datetime.fromtimestamp`
    raises (``OverflowError``, ``OSError``, ``ValueError``) when out of range."""
    seconds = value / 1000 if abs(value) > 1e11 else value
    return datetime.fromtimestamp(seconds, UTC)
