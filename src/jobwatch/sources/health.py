"""How a source is doing, and when to try it again after it failed.

Headless and generic: the poller keeps one :class:`SourceHealth` and one
:class:`Backoff` per source (local store, remote server, vendor adapter alike), and
the TUI and the CLI only read them to say "stale since 12:03 (connection refused),
retry in 8 s" next to the last runs they know.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jobwatch.core.errors import JobwatchError
from jobwatch.core.redact import clean


def _now() -> datetime:
    return datetime.now(UTC)


def describe_error(exc: BaseException) -> str:
    """One sanitized line for a failure, whatever raised it."""
    if isinstance(exc, JobwatchError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = clean(text)
    return text if len(text) <= 300 else text[:299] + "…"


@dataclass(slots=True)
class SourceHealth:
    """The state shown next to a source: fresh, or stale since when and why.

    A source that has never answered is not ``ok`` but has no ``last_ok`` either,
    so "never reached" and "was fine until 12:03" read differently.
    """

    ok: bool = False
    stale_since: datetime | None = None
    error: str | None = None
    last_ok: datetime | None = None
    next_retry_at: datetime | None = None
    failures: int = 0

    @property
    def stale(self) -> bool:
        return self.stale_since is not None

    def mark_ok(self, now: datetime | None = None) -> None:
        """A call succeeded: the source is fresh again and its failures are forgotten."""
        self.ok = True
        self.last_ok = now or _now()
        self.stale_since = None
        self.error = None
        self.next_retry_at = None
        self.failures = 0

    def mark_failed(self, error: str, retry_in: float, now: datetime | None = None) -> None:
        """A call failed: keep when it first went stale, remember the latest reason."""
        now = now or _now()
        self.ok = False
        if self.stale_since is None:
            self.stale_since = now
        self.error = error
        self.failures += 1
        self.next_retry_at = now + timedelta(seconds=max(0.0, retry_in))

    def describe(self, now: datetime | None = None) -> str:
        """One line for a status bar or ``stderr``: ``ok`` or why and since when."""
        if self.ok:
            return "ok"
        if self.stale_since is None:
            return "not polled yet"
        now = now or _now()
        ago = max(0, int((now - self.stale_since).total_seconds()))
        text = f"stale for {ago}s: {self.error or 'unknown error'}"
        if self.next_retry_at is not None:
            wait = max(0, round((self.next_retry_at - now).total_seconds()))
            text += f" (retry in {wait}s)"
        return text


@dataclass(slots=True)
class Backoff:
    """Exponential back-off with jitter, so many clients of one struggling server
    do not all come back in the same second.

    ``jitter="full"`` draws from ``[0, d]`` (AWS's "full jitter", best for short
    retries inside one call); ``"equal"`` draws from ``[d/2, d]`` so a failing source
    is never hammered again at once (used between polls).
    """

    base: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    jitter: str = "equal"
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def peek(self) -> float:
        """The ceiling of the next delay, without jitter."""
        return min(self.cap, self.base * self.factor ** min(self.attempt, 64))

    def next(self, at_least: float | None = None) -> float:
        """The delay before the next try; grows with every call until :meth:`reset`.

        ``at_least`` is what the server asked for (``Retry-After``): honoured, but
        never beyond ``cap``, so a bogus header cannot park a source for a day.
        """
        ceiling = self.peek()
        self.attempt += 1
        if self.jitter == "full":
            delay = self.rng.uniform(0.0, ceiling)
        elif self.jitter == "equal":
            delay = ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)
        else:
            delay = ceiling
        if at_least is not None:
            delay = max(delay, min(at_least, self.cap))
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class Tracker:
    """One source's health and back-off together: whether it is due for a try, and
    what a success or a failure does to both. Shared by every poller (the CLI's
    :class:`~jobwatch.sources.poller.Poller`, whichever front end drives it), so a
    source is marked stale, backed off and recovered the same way everywhere."""

    health: SourceHealth = field(default_factory=SourceHealth)
    backoff: Backoff = field(default_factory=Backoff)
    due_at: float = 0.0
    """``clock()`` time of the next try while failing; 0 when healthy."""
    clock: Callable[[], float] = time.monotonic

    def due(self) -> bool:
        return self.due_at <= self.clock()

    def wait(self) -> float | None:
        """Seconds until the next try of a failing source (``None`` when healthy)."""
        return max(0.0, self.due_at - self.clock()) if self.due_at > 0 else None

    def failed(self, message: str, *, retry_after: float | None = None) -> float:
        """Mark it stale (since the first failure) and schedule the next try; a
        server's ``Retry-After`` is honoured up to the back-off's cap."""
        delay = self.backoff.next(at_least=retry_after)
        self.health.mark_failed(message, delay)
        self.due_at = self.clock() + delay
        return delay

    def succeeded(self) -> bool:
        """Mark it fresh; ``True`` when it had been failing (it just recovered)."""
        recovered = self.health.stale
        self.health.mark_ok()
        self.backoff.reset()
        self.due_at = 0.0
        return recovered
