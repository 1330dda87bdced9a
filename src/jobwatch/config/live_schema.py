"""Validation of the live settings (:mod:`jobwatch.config.live`): pydantic, loaded
only with a config file, like the rest of :mod:`jobwatch.config.schema`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobwatch.config.live import (
    DEFAULT_HOOK_TIMEOUT_S,
    DEFAULT_STUCK_AFTER_S,
    Hooks,
    LiveConfig,
    ScheduleEntry,
    hook_argv,
    parse_span,
)

MIN_STUCK_AFTER_S = 1.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScheduleFile(_Strict):
    job: str = Field(min_length=1)
    source: str = Field(default="local", min_length=1)
    every: float | None = None
    cron: str | None = None
    grace: float = 0.0

    @field_validator("every", "grace", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        return None if value is None else parse_span(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from jobwatch.triage.schedules import check_cron

        return check_cron(value)

    @model_validator(mode="after")
    def _one(self) -> ScheduleFile:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"schedule of {self.job!r} needs one of every or cron")
        if self.every is not None and self.every <= 0:
            raise ValueError(f"schedule of {self.job!r}: every must be above 0")
        return self


class HooksFile(_Strict):
    on_failure: str | list[str] | None = None
    on_late: str | list[str] | None = None
    on_stuck: str | list[str] | None = None
    timeout: float = Field(default=DEFAULT_HOOK_TIMEOUT_S, gt=0, le=3600)

    @field_validator("timeout", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        return parse_span(value, what="timeout")

    @field_validator("on_failure", "on_late", "on_stuck")
    @classmethod
    def _argv(cls, value: str | list[str] | None) -> str | list[str] | None:
        hook_argv(value)  # an empty command is an error here, not at the first failure
        return value


class LiveFile(BaseModel):
    """The top-level keys this adds to the config file."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    stuck_after: float = Field(default=DEFAULT_STUCK_AFTER_S, ge=MIN_STUCK_AFTER_S)
    schedules: list[ScheduleFile] = Field(default_factory=list)
    hooks: HooksFile = Field(default_factory=HooksFile)
    terminal_notify: Literal["off", "osc9", "osc777"] = "off"

    @field_validator("stuck_after", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        return parse_span(value, what="stuck_after")

    def build(self) -> LiveConfig:
        h = self.hooks
        return LiveConfig(
            stuck_after=self.stuck_after,
            schedules=tuple(
                ScheduleEntry(s.job, s.source, s.every, s.cron, s.grace) for s in self.schedules
            ),
            hooks=Hooks(
                hook_argv(h.on_failure), hook_argv(h.on_late), hook_argv(h.on_stuck), h.timeout
            ),
            terminal_notify=self.terminal_notify,
        )


LIVE_KEYS = frozenset(LiveFile.model_fields)
