"""The one clock every module reads "now" from, free of the pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
