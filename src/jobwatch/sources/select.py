"""Several sources as one: which to open, and a poller that never lets one fail all.

:func:`open_sources` turns the user's selection (config names, URLs, store paths)
into :class:`~jobwatch.sources.protocol.Source` objects. :class:`MultiSource` polls
them by revision, each with its own cursor, last known runs and
:class:`~jobwatch.sources.health.SourceHealth`: a source that fails keeps its runs on
screen, is marked stale (since when, why), is retried with back-off and catches up
from its cursor when it answers again, so nothing is lost. Runs are keyed by
``(source name, run id)`` because two servers may well use the same ids, and
actions go to the source that owns the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from jobwatch.config import TOKEN_ENV, Config, ConfigError, check_url
from jobwatch.core.errors import AmbiguousRunId, RunNotFound, SourceError
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import clean
from jobwatch.sources.health import Backoff, SourceHealth, Tracker, describe_error
from jobwatch.sources.protocol import ActionResult, ChangeSet, Source

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run

DEFAULT_PAGE = 1000
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class RunKey(NamedTuple):
    """A run's identity across sources."""

    source: str
    id: str


# -- choosing sources --------------------------------------------------------------


def is_url(spec: str) -> bool:
    return "://" in spec


def is_path(spec: str) -> bool:
    """A store path rather than a config name: has a slash, a ``~``, a store suffix,
    or names an existing file."""
    return (
        os.sep in spec
        or "/" in spec
        or spec.startswith(("~", "."))
        or spec.endswith(_STORE_SUFFIXES)
        or Path(spec).is_file()
    )


def known_spec(spec: str, config: Config) -> bool:
    """Whether ``spec`` selects a source (a config name, a URL or a store path)."""
    return spec in config.sources or is_url(spec) or is_path(spec)


def _env_token() -> str | None:
    return os.environ.get(TOKEN_ENV, "").strip() or None


def _store_mode(read_only: bool) -> Literal["read", "write"]:
    """A selected store is never created: read through a read-only connection,
    and (unless ``read_only``) reopened read-write for the first action."""
    return "read" if read_only else "write"


def source_from_spec(spec: str, config: Config, *, read_only: bool = False) -> Source:
    """One source from a config name, an ``http(s)://`` URL or a store path."""
    if spec in config.sources:
        settings = config.sources[spec]
        source = settings.build(spec, read_only=read_only)
        if settings.refresh is not None:
            source.poll_every = settings.refresh  # type: ignore[attr-defined]
        return source
    if is_url(spec):
        from jobwatch.sources.http.client import HttpSource

        try:
            url = check_url(spec)
        except ValueError as exc:
            raise ConfigError(f"--source {clean(spec)}: {exc}") from None
        return HttpSource(url, token_loader=_env_token, read_only=read_only)
    if is_path(spec):
        from jobwatch.sources.local.store import SqliteStore

        return SqliteStore(Path(spec).expanduser(), name=spec, mode=_store_mode(read_only))
    names = ", ".join(sorted(config.sources)) or "none"
    where = f" in {config.path}" if config.path else ""
    raise ConfigError(
        f"unknown source {clean(spec)!r} (configured{where}: {names}); "
        "give a configured name, an http(s):// URL or a store path"
    )


def open_sources(
    config: Config,
    selected: Sequence[str],
    *,
    store: str | Path | None = None,
    read_only: bool = False,
) -> list[Source]:
    """The sources to show, built but not opened yet (``MultiSource.open`` does that,
    so one unreachable server cannot stop the others from showing).

    Precedence: ``store`` (``--store``) plus ``selected`` (``--source``, repeatable);
    when neither is given, the config's ``default_sources``; else the default local
    store. ``read_only`` (or the config's) makes every source refuse writes.
    """
    read_only = read_only or config.read_only
    sources: list[Source] = []
    if store is not None:
        from jobwatch.sources.local.store import SqliteStore

        sources.append(SqliteStore(Path(store).expanduser(), mode=_store_mode(read_only)))
    specs = list(dict.fromkeys(selected))
    if not specs and not sources:
        specs = list(config.default_sources)
    for spec in specs:
        sources.append(source_from_spec(spec, config, read_only=read_only))
    if not sources:
        from jobwatch.sources.local.store import SqliteStore

        sources.append(SqliteStore(default_store_path(), mode=_store_mode(read_only)))
    seen: set[str] = set()
    for source in sources:
        base, n = source.name, 1
        while source.name in seen:  # two stores called "local": keep both, tell apart
            n += 1
            source.name = f"{base}-{n}"
        seen.add(source.name)
    return sources


async def sync(
    source: Source,
    cursor: int | str | None = None,
    *,
    page: int = DEFAULT_PAGE,
    max_pages: int = 100_000,
    timeout: float = 600.0,
) -> ChangeSet:
    """Every change after ``cursor``, page by page (bounded in pages and time)."""
    deadline = time.monotonic() + timeout
    runs: dict[str, Run] = {}
    errors: list[RecordError] = []
    for _ in range(max_pages):
        changes = await source.changes(cursor, page)
        for run in changes.runs:
            runs[run.id] = run
        errors += changes.errors
        cursor = changes.cursor
        if not changes.more:
            return ChangeSet(list(runs.values()), cursor, errors, more=False)
        if time.monotonic() > deadline:
            break
    return ChangeSet(list(runs.values()), cursor, errors, more=True)


# -- polling -----------------------------------------------------------------------


@dataclass(eq=False)
class SourceState:
    """What the poller knows about one source."""

    source: Source
    tracker: Tracker = field(default_factory=Tracker)
    cursor: int | str | None = None
    runs: dict[str, Run] = field(default_factory=dict)
    errors: dict[str, RecordError] = field(default_factory=dict)
    opened: bool = False
    synced: bool = False
    busy: bool = False

    @property
    def health(self) -> SourceHealth:
        return self.tracker.health

    @property
    def backoff(self) -> Backoff:
        return self.tracker.backoff


@dataclass
class PollReport:
    """What one :meth:`MultiSource.poll` changed, for a UI that redraws only that."""

    changed: list[RunKey] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    removed: list[RunKey] = field(default_factory=list)
    """Runs forgotten because their source's data was replaced (a store file swapped)."""
    more: bool = False

    @property
    def health_changed(self) -> bool:
        return bool(self.failed or self.recovered)


class MultiSource:
    """Polls several sources without overlap and keeps their last known runs.

    ``poll()`` never raises for a failing source (it marks it stale and schedules a
    retry); only programming errors in the poller itself could escape. Actions
    (:meth:`abort`, :meth:`archive`, :meth:`unarchive`) do raise
    :class:`~jobwatch.core.errors.JobwatchError` subclasses: the user asked for them and
    must see why they failed.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        page: int = DEFAULT_PAGE,
        max_pages: int = 20,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        rng = rng or random.Random()
        self.page = page
        self.max_pages = max(1, max_pages)
        self._states: dict[str, SourceState] = {
            s.name: SourceState(
                s,
                Tracker(backoff=Backoff(base=backoff_base, cap=backoff_cap, rng=rng), clock=clock),
            )
            for s in sources
        }

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Open every source; one that fails is marked stale and retried by ``poll``."""
        await asyncio.gather(*(self._open(st) for st in self._states.values()))

    async def _open(self, state: SourceState) -> None:
        if state.opened:
            return
        try:
            await state.source.open()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(state, exc)
            return
        state.opened = True

    async def close(self) -> None:
        for state in self._states.values():
            if state.opened:
                state.opened = False
                with contextlib.suppress(Exception):
                    await state.source.close()

    async def __aenter__(self) -> MultiSource:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- polling -------------------------------------------------------------------

    def _failed(self, state: SourceState, exc: BaseException) -> str:
        message = describe_error(exc)
        state.tracker.failed(message, retry_after=getattr(exc, "retry_after", None))
        return message

    async def poll(self) -> PollReport:
        """Read what changed in every source that is due (all healthy ones, and
        failing ones whose back-off has passed), concurrently."""
        due = [st for st in self._states.values() if not st.busy and st.tracker.due()]
        report = PollReport()
        await asyncio.gather(*(self._poll_one(st, report) for st in due))
        return report

    async def _poll_one(self, state: SourceState, report: PollReport) -> None:
        state.busy = True
        name = state.source.name
        try:
            if not state.opened:
                await state.source.open()
                state.opened = True
            for _ in range(self.max_pages):
                changes = await state.source.changes(state.cursor, self.page)
                self._apply(state, changes, report)
                if not changes.more:
                    state.synced = True
                    break
            else:
                report.more = True  # a long first sync goes on at the next poll
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if getattr(exc, "resync", False):  # the data was replaced: sync afresh
                report.removed += [RunKey(name, run_id) for run_id in state.runs]
                state.runs.clear()
                state.errors.clear()
                state.cursor, state.synced = None, False
            report.failed[name] = self._failed(state, exc)
        else:
            if state.tracker.succeeded():
                report.recovered.append(name)
        finally:
            state.busy = False

    def _apply(self, state: SourceState, changes: ChangeSet, report: PollReport) -> None:
        name = state.source.name
        for run in changes.runs:
            state.runs[run.id] = run
            state.errors.pop(run.id, None)
            report.changed.append(RunKey(name, run.id))
        for error in changes.errors:
            state.errors[error.id or error.message] = error
            report.errors.append(error)
        state.cursor = changes.cursor

    async def run(
        self,
        *,
        refresh: float = 1.0,
        stop: asyncio.Event | None = None,
        on_update: Callable[[PollReport], Awaitable[None] | None] | None = None,
        max_polls: int | None = None,
    ) -> None:
        """Poll every ``refresh`` seconds until ``stop`` is set (or ``max_polls``),
        handing each report to ``on_update``; unfinished first syncs go on at once."""
        stop = stop or asyncio.Event()
        polls = 0
        while not stop.is_set() and (max_polls is None or polls < max_polls):
            report = await self.poll()
            polls += 1
            if on_update is not None:
                result = on_update(report)
                if result is not None:
                    await result
            if report.more:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.next_wait(refresh))

    def next_wait(self, refresh: float) -> float:
        """Seconds until something is due: ``refresh``, or sooner for a retry."""
        waits = [refresh]
        waits += [w for st in self._states.values() if (w := st.tracker.wait()) is not None]
        return max(0.01, min(waits))

    # -- what is known -------------------------------------------------------------

    @property
    def sources(self) -> list[Source]:
        return [st.source for st in self._states.values()]

    @property
    def names(self) -> list[str]:
        return list(self._states)

    def source(self, name: str) -> Source:
        try:
            return self._states[name].source
        except KeyError:
            raise SourceError(f"no source named {clean(name)!r}") from None

    def state(self, name: str) -> SourceState:
        return self._states[name]

    def health(self) -> dict[str, SourceHealth]:
        """Each source's health (the live objects: read, do not change)."""
        return {name: st.health for name, st in self._states.items()}

    def synced(self) -> bool:
        """Whether every source has finished its first full sync."""
        return all(st.synced for st in self._states.values())

    def entries(self) -> Iterator[tuple[RunKey, Run]]:
        """Every known run with its key, source by source."""
        for name, state in self._states.items():
            for run_id, run in state.runs.items():
                yield RunKey(name, run_id), run

    def runs(self) -> list[Run]:
        return [run for _, run in self.entries()]

    def get_run(self, key: RunKey) -> Run | None:
        state = self._states.get(key.source)
        return state.runs.get(key.id) if state else None

    def record_errors(self) -> list[RecordError]:
        return [e for st in self._states.values() for e in st.errors.values()]

    def __len__(self) -> int:
        return sum(len(st.runs) for st in self._states.values())

    # -- routing -------------------------------------------------------------------

    def key_for(self, ref: RunKey | str) -> RunKey:
        """The key of a known run; a bare id must be unique across sources."""
        if isinstance(ref, RunKey):
            if self.get_run(ref) is None and ref.source not in self._states:
                raise RunNotFound(f"no source named {clean(ref.source)!r}")
            return ref
        found = [RunKey(name, ref) for name, st in self._states.items() if ref in st.runs]
        if not found:
            raise RunNotFound(f"no run {clean(ref)!r} in {', '.join(self._states)}")
        if len(found) > 1:
            where = ", ".join(k.source for k in found)
            raise AmbiguousRunId(
                f"run {clean(ref)!r} is in several sources ({where}); pick one with --source"
            )
        return found[0]

    def source_for(self, ref: RunKey | str) -> Source:
        """The source that owns a run: where its logs and actions go."""
        return self._states[self.key_for(ref).source].source

    async def _act(
        self, ref: RunKey | str, call: Callable[[Source, str], Awaitable[ActionResult]]
    ) -> ActionResult:
        key = self.key_for(ref)
        state = self._states[key.source]
        result = await call(state.source, key.id)
        state.runs[result.run.id] = result.run  # show it now; the next poll confirms
        return result

    async def abort(self, ref: RunKey | str, by: str) -> ActionResult:
        return await self._act(ref, lambda src, rid: src.abort(rid, by))

    async def archive(self, ref: RunKey | str) -> ActionResult:
        return await self._act(ref, lambda src, rid: src.archive(rid))

    async def unarchive(self, ref: RunKey | str) -> ActionResult:
        return await self._act(ref, lambda src, rid: src.unarchive(rid))
