"""The normalized run model shared by the store, the CLI, the server and the TUI.

Field names follow the proposal at the end of ``vendor-apis.md``; each source keeps
its own raw status in ``status_raw`` next to the normalized ``status``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobwatch.core.clock import utcnow
from jobwatch.core.levels import LogLevel
from jobwatch.core.status import Status

__all__ = ["Callback", "LogLine", "Progress", "Reason", "RecordError", "Run", "RunError", "utcnow"]


def _as_utc(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC (several vendors send them that way)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(_Part):
    """Item counters of a batch-like run (payloads, inputs, items)."""

    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    pending: int | None = None


class RunError(_Part):
    code: str | None = None
    message: str | None = None
    category: str | None = None
    correlation_id: str | None = None
    doc_url: str | None = None
    retriable: bool | None = None


class Reason(_Part):
    """Why a run stopped or paused, when the system says (e.g. ``user-request``)."""

    type: str | None = None
    message: str | None = None
    doc_url: str | None = None


class Callback(_Part):
    url: str | None = None
    sent_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None

    @field_validator("sent_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class Run(BaseModel):
    """One execution of a job, in any system."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    source: str
    job: str | None = None
    label: str | None = None
    type: str | None = None
    status: Status = Status.UNKNOWN
    status_raw: str | None = None
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    progress: Progress | None = None
    error: RunError | None = None
    reason: Reason | None = None
    exit_code: int | None = None
    owner: str | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    callback: Callback | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    archived: bool = False
    partial: bool = False
    deleted: bool = False
    """The system no longer has this run (a 404 on re-read, or gone from a list that
    is authoritative): its last known status stays, so the outcome is not lost."""

    @field_validator("created_at", "queued_at", "started_at", "ended_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _derive(self) -> Run:
        """Fill what follows from other fields, so no source has to remember it."""
        if self.duration_ms is None and self.started_at and self.ended_at:
            seconds = (self.ended_at - self.started_at).total_seconds()
            object.__setattr__(self, "duration_ms", max(0.0, seconds * 1000.0))
        failed = self.progress.failed if self.progress else None
        if not self.partial and self.status is Status.SUCCEEDED and (failed or 0) > 0:
            object.__setattr__(self, "partial", True)
        return self

    @property
    def short_id(self) -> str:
        """A prefix that is enough to tell runs apart on screen (``run-1a2b3c4d``)."""
        head, sep, tail = self.id.partition("-")
        if sep and head.isalpha() and len(head) <= 6:
            return f"{head}-{tail[:8]}"
        return self.id[:12]

    def elapsed_ms(self, now: datetime | None = None) -> float | None:
        """Duration so far: final for ended runs, ticking for running ones, unknown
        for a run that is over without a known end (a lost run that never reported)."""
        if self.duration_ms is not None:
            return self.duration_ms
        if self.started_at is None or (self.ended_at is None and not self.status.is_active):
            return None
        end = self.ended_at or (now or utcnow())
        return max(0.0, (end - self.started_at).total_seconds() * 1000.0)

    def evolve(self, **changes: Any) -> Run:
        """A validated copy with ``changes`` applied (models are frozen on purpose)."""
        data = self.model_dump()
        if {"started_at", "ended_at"} & changes.keys() and "duration_ms" not in changes:
            data["duration_ms"] = None  # derived again from the new times
        data.update(changes)
        return Run.model_validate(data)


class LogLine(BaseModel):
    """One line of a run's output, addressed by its per-run sequence number."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    seq: int
    ts: datetime
    stream: str = "stdout"
    level: LogLevel = LogLevel.INFO
    text: str = ""

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> LogLevel:
        """Any source's word for a level (``warning``, ``FATAL``) becomes one of four."""
        return LogLevel.of(value)


class RecordError(BaseModel):
    """A record a source could not read: shown as an error row, never dropped."""

    model_config = ConfigDict(frozen=True)

    source: str
    id: str | None = None
    message: str
    raw: str | None = Field(default=None, description="The record as received, truncated")
