"""Reading raw vendor records: one set of readers, one strictness switch, one error.

Every adapter reads the same kinds of value out of its system's JSON (text, numbers,
counters, flags, nested objects, date-times) and must decide, field by field,
whether an odd value spoils the whole record or only makes that field unknown.
:class:`Reader` does the reading for all of them; what stays in each adapter is
the quirk: *which* fields it reads, under which keys, and how strictly.

* ``Reader(raw, strict=True)`` raises :class:`MappingError` naming the field
  (``"StartTime is not a date-time: 'yesterday'"``) for a value of the wrong kind;
  the base turns that into an error row for the record.
* ``strict=False`` (per reader, or per call) reads an odd value as unknown
  (``None``): for systems whose records are loose on purpose (Intuned) and for
  optional parts an adapter chooses to ignore (Matatika).

``None`` is always "not there", in either mode, and so is blank text unless the
caller keeps it (a raw status is shown as sent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwatch.core.text import MAX_TEXT, cap_text
from jobwatch.sources.http.transport import short

__all__ = [
    "MAX_TEXT",
    "OVERLAP",
    "MappingError",
    "Reader",
    "StampCursor",
    "cap_text",
    "epoch_datetime",
    "is_int",
    "iso_datetime",
    "parse_datetime",
    "whole_number",
]

EXCERPT = 60
"""How much of an odd value an error message quotes."""
OVERLAP = timedelta(minutes=5)
"""How far behind its newest stamp a timestamp cursor reads again: a record
committed late with an earlier stamp (transaction skew) is still found."""


class StampCursor:
    """A change cursor on a record timestamp, read back with :data:`OVERLAP`.

    A system that lists "changed since" by a stamp (Salesforce ``SystemModstamp``,
    Modzy ``updatedAt``) is asked from ``newest - overlap`` on, not from ``newest``:
    a record stamped a moment before the newest one but committed after it was
    listed would otherwise be missed until it changes again. What the overlap
    reads twice is dropped by the vendor base (an unchanged run is no change)."""

    __slots__ = ("newest", "overlap")

    def __init__(self, overlap: timedelta = OVERLAP) -> None:
        self.newest: datetime | None = None
        self.overlap = overlap

    def since(self) -> datetime | None:
        """Where the next poll starts (``None`` before the first: a full sync)."""
        return None if self.newest is None else self.newest - self.overlap

    def advance(self, stamps: Iterable[datetime | None]) -> None:
        """Move to the newest of ``stamps`` (never back)."""
        known = [s for s in stamps if s is not None]
        if self.newest is not None:
            known.append(self.newest)
        if known:
            self.newest = max(known)

    def reset(self) -> None:
        self.newest = None


class MappingError(ValueError):
    """A raw record that cannot become a run; its message is shown on the error row."""


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (JSON ``true`` is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite ``int`` or ``float`` that is not a ``bool``."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def whole_number(value: Any) -> int | None:
    """``3`` or ``3.0`` as ``3``; ``None`` for anything else (bools, fractions,
    NaN, infinities, text)."""
    if is_int(value):
        return int(value)
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


def parse_datetime(value: Any, *, epoch: bool = True) -> datetime | None:
    """A date-time as vendors send one: ISO 8601 text (``Z``, ``z``, ``+00:00`` or
    ``+0000``; no zone means UTC; a decimal comma and more than six fraction
    digits are fine) or, when ``epoch``, a number of seconds or milliseconds.

    ``None`` and blank text are no date-time (``None``); anything else that is
    not one raises :class:`ValueError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[-1] == "z":
            text = text[:-1] + "Z"
        return iso_datetime(text)
    if epoch and is_number(value):
        try:
            return epoch_datetime(value)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"out of range: {exc}") from None
    raise ValueError(f"{type(value).__name__} is not a date-time")


class Reader:
    """Typed reads of one raw record, with one strictness and one error format.

    Each method takes one or more keys: the first one present with a value is
    read (``read.text("job_id", "jobId")`` for systems that spell a field two
    ways). ``strict`` given to a method overrides the reader's own for that field.
    """

    __slots__ = ("epoch", "prefix", "raw", "strict")

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        strict: bool = True,
        epoch: bool = True,
        prefix: str = "",
    ) -> None:
        self.raw = raw
        self.strict = strict
        self.epoch = epoch
        """Whether a number is read as seconds (or milliseconds) since the epoch
        where a date-time is expected; systems that always send text say False."""
        self.prefix = prefix
        """Put before every field name in messages (``"model."`` for a nested object)."""

    @classmethod
    def of(cls, raw: Any, what: str = "record", **options: Any) -> Reader:
        """A reader for ``raw``, which must be an object (else :class:`MappingError`)."""
        if not isinstance(raw, Mapping):
            raise MappingError(f"a {what} must be an object, not {type(raw).__name__}")
        return cls(raw, **options)

    # -- the mechanics -------------------------------------------------------------

    def get(self, *keys: str) -> tuple[str, Any]:
        """``(key, value)`` of the first key holding a value, else ``(keys[0], None)``."""
        for key in keys:
            value = self.raw.get(key)
            if value is not None:
                return key, value
        return keys[0], None

    def wrong(self, key: str, value: Any, what: str, strict: bool | None = None) -> None:
        """The one verdict on an odd value: an error naming the field, or unknown."""
        if self.strict if strict is None else strict:
            excerpt = short(repr(value), EXCERPT)
            raise MappingError(f"{self.prefix}{key} is not {what}: {excerpt}")

    # -- the readers -----------------------------------------------------------------

    def text(
        self,
        *keys: str,
        numbers: bool = False,
        keep_blank: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """A string as sent (cut to :data:`MAX_TEXT`, with a count of the rest),
        blank being none unless ``keep_blank`` (a raw status is kept whatever it
        is); with ``numbers``, a number as its text."""
        key, value = self.get(*keys)
        if value is None:
            return None
        if isinstance(value, str):
            return cap_text(value) if keep_blank or value.strip() else None
        if numbers and is_number(value):
            return str(value)
        self.wrong(key, value, "text", strict)
        return None

    def number(self, *keys: str, strict: bool | None = None) -> float | None:
        """A finite number (never a bool), as a float."""
        key, value = self.get(*keys)
        if value is None:
            return None
        if is_number(value):
            return float(value)
        self.wrong(key, value, "a number", strict)
        return None

    def whole(
        self, *keys: str, minimum: int | None = None, strict: bool | None = None
    ) -> int | None:
        """A whole number (``3`` or ``3.0``), at least ``minimum`` if given."""
        key, value = self.get(*keys)
        if value is None:
            return None
        number = whole_number(value)
        if number is None:
            self.wrong(key, value, "a whole number", strict)
            return None
        if minimum is not None and number < minimum:
            self.wrong(key, value, f"a whole number of at least {minimum}", strict)
            return None
        return number

    def flag(self, *keys: str, strict: bool | None = None) -> bool | None:
        key, value = self.get(*keys)
        if value is None or isinstance(value, bool):
            return value
        self.wrong(key, value, "true or false", strict)
        return None

    def obj(self, *keys: str, strict: bool | None = None) -> Mapping[str, Any] | None:
        """A nested object as it is (not copied)."""
        key, value = self.get(*keys)
        if value is None or isinstance(value, Mapping):
            return value
        self.wrong(key, value, "an object", strict)
        return None

    def time(self, *keys: str, strict: bool | None = None) -> datetime | None:
        """A date-time (see :func:`parse_datetime`)."""
        key, value = self.get(*keys)
        try:
            return parse_datetime(value, epoch=self.epoch)
        except ValueError:
            self.wrong(key, value, "a date-time", strict)
            return None

    def child(self, *keys: str, strict: bool | None = None) -> Reader:
        """A reader for a nested object (an empty one when it is absent, or odd and
        read leniently); its messages name the field as ``parent.field``."""
        key, _ = self.get(*keys)
        inner = self.obj(*keys, strict=strict)
        return Reader(
            inner or {},
            strict=self.strict if strict is None else strict,
            epoch=self.epoch,
            prefix=f"{self.prefix}{key}.",
        )
