"""What every vendor adapter shares, so each one only translates.

A vendor adapter answers four questions in its own system's words — which runs
changed (:meth:`VendorSource.poll`), what one run looks like now
(:meth:`VendorSource.fetch`), what its log says (:meth:`VendorSource.fetch_logs`)
and how to stop it (:meth:`VendorSource.remote_abort`) — and maps raw records
with :meth:`VendorSource.parse`. This base turns that into a
:class:`~jobwatch.sources.protocol.Source`:

* a local revision counter over an in-memory cache of the runs, so the monitor
  polls a vendor exactly like the local store and redraws only what changed;
* the transition rules from :mod:`jobwatch.core.rules` before any call
  goes out (adapters never decide what may be aborted);
* archive as a local, undoable flag in the embedded store for systems that have
  no archive of their own;
* a malformed record becomes a :class:`RecordError` for that record, never an
  exception out of the adapter;
* a small, bounded log cache, so a log pane can page and search;
* the mechanics adapters would otherwise each repeat: one reading of an HTTP
  status (:meth:`VendorSource.raise_for`), one re-read of the runs still active
  (:meth:`VendorSource.reread`) and, in :mod:`.common`, one set of value readers
  with an explicit strictness. What is particular to a system stays in its adapter.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field

from jobwatch.config.schema import RemoteSourceConfig, rebase_path
from jobwatch.core import LogLine, Reason, RecordError, Run, Status
from jobwatch.core.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    TransitionRefused,
)
from jobwatch.core.levels import LogLevel
from jobwatch.core.paths import default_store_path
from jobwatch.core.redact import redact
from jobwatch.core.rules import Action, Capabilities
from jobwatch.sources.http.transport import ApiClient, RemoteUnavailable, error_message, short
from jobwatch.sources.protocol import ActionResult, ChangeSet, LogBounds, SourceBase
from jobwatch.sources.vendors.common import MappingError

if TYPE_CHECKING:
    from jobwatch.sources.local import SqliteStore

MAX_LOG_LINES = 200_000
"""Lines kept per run: a vendor log is fetched whole, so it is capped."""
LOG_RUNS_CACHED = 8
POLL_EVERY_S = 15.0
"""Default seconds between polls of a vendor API (``refresh`` per source overrides)."""
LOG_REFRESH_S = 1.0
"""A log of an active run is asked for again at most this often."""
REREAD_CONCURRENCY = 4
"""Runs re-read at once: polite to the server, quick enough for a poll."""
PREFIX_CANDIDATES_SHOWN = 5
"""Ids an ambiguous prefix lists before "…"."""
LOCAL_ARCHIVE = (
    "{system} has no archive: jobwatch keeps the flag in its local store, the run "
    "keeps its outcome and is hidden from lists; unarchive brings it back."
)


def raw_excerpt(raw: Any, limit: int = 500) -> str:
    """The start of a bad record, redacted and sanitized, for its error row."""
    try:
        text = str(redact(raw))
    except Exception:  # a record so broken even repr fails
        text = f"<{type(raw).__name__}>"
    return short(text, limit)


def mark_deleted(run: Run, system: str) -> Run:
    """``run`` as the system no longer has it: flagged ``deleted``. A finished run
    keeps its outcome; one still active is over with an unknown one."""
    if run.deleted:
        return run
    if not run.status.is_active:
        return run.evolve(deleted=True)
    return run.evolve(
        deleted=True,
        status=Status.UNKNOWN,
        status_raw=None,  # the last raw word was "running": no longer true
        reason=Reason(type="deleted", message=f"{system} no longer has this run."),
    )


def raw_id(raw: Any, *keys: str) -> str | None:
    """The record's id if it has a readable one, for its error row."""
    if isinstance(raw, Mapping):
        for key in keys or ("id",):
            value = raw.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return short(str(value), 200)
    return None


class VendorConfig(RemoteSourceConfig):
    """Settings every vendor kind shares; each adds its own ids and ``build``.

    ``token_env`` / ``token_file`` name where the API token is (never argv, and a
    token written in the file itself gets the readable-by-others warning).
    """

    flags_store: Path | None = None
    """Store that keeps local archive flags; the default local store if unset."""
    max_runs: int = Field(default=1000, ge=1, le=100_000)
    """How many recent runs the first sync reads."""
    page_size: int = Field(default=100, ge=1, le=2000)

    def rebase(self, base: Path) -> VendorConfig:
        config = super().rebase(base)
        assert isinstance(config, VendorConfig)
        if config.flags_store is not None:
            flags = rebase_path(config.flags_store, base)
            config = config.model_copy(update={"flags_store": flags})
        return config

    def flags_path(self) -> Path:
        return (self.flags_store or default_store_path()).expanduser()

    def api(
        self, name: str, auth: Callable[[str], Mapping[str, str]], *, base_path: str = ""
    ) -> ApiClient:
        """An :class:`ApiClient` whose headers come from ``auth(token)`` when it
        opens; a missing token fails this source only, with a clear message."""
        load = self.token_loader()

        def headers() -> Mapping[str, str]:
            token = load()
            if not token:
                raise SourceError(
                    f"{name}: no API token; set token_env or token_file in [sources.{name}]"
                )
            return auth(token)

        return ApiClient(
            self.url + base_path,
            name=name,
            headers=headers,
            verify=self.verify,
            timeout=self.timeout,
        )


class _LogCache:
    """One run's log as fetched so far, in seq order, capped."""

    __slots__ = ("done", "fetched_at", "lines", "note", "seqs")

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self.seqs: list[int] = []
        self.fetched_at = 0.0
        self.done = False
        self.note: str | None = None

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def add(self, lines: Iterable[LogLine]) -> None:
        for line in sorted(lines, key=lambda ln: ln.seq):
            if line.seq > self.last:
                self.lines.append(line)
                self.seqs.append(line.seq)
        if len(self.lines) > MAX_LOG_LINES:
            drop = len(self.lines) - MAX_LOG_LINES
            del self.lines[:drop], self.seqs[:drop]


class VendorSource(SourceBase):
    """Base of the vendor adapters. Subclasses set the class attributes and
    implement the hooks; they never override the :class:`Source` methods.

    Each adapter module also has a ``STATUS_MAP`` (raw status → normalized, ``None``
    for a raw status that is a flag rather than an outcome). The first raw word it
    lists for a status is that status's own spelling: the demo writes it.
    """

    KIND: ClassVar[str] = ""
    SYSTEM: ClassVar[str] = ""
    """The system's name as people say it ("Salesforce"), for messages."""
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(pace=POLL_EVERY_S)
    """Each adapter declares its own: what abort does there, its log note, pace."""
    REMOTE_ARCHIVE: ClassVar[bool] = False
    """The system archives runs itself (Salesforce); otherwise archive is local."""
    ID_KEYS: ClassVar[tuple[str, ...]] = ("id",)

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        read_only: bool = False,
        flags_path: Path | None = None,
        max_runs: int = 1000,
        page_size: int = 100,
    ) -> None:
        self.name = name
        self.api = api
        self.read_only = read_only
        self.max_runs = max_runs
        self.page_size = max(1, page_size)
        """Records asked for per list request (at least one)."""
        self._flags_path = flags_path
        self._flags: SqliteStore | None = None
        """Keeps local archive flags; opened on the first poll or archive."""
        self._archived: set[str] = set()
        self._runs: dict[str, Run] = {}
        self._rev_of: dict[str, int] = {}
        self._revision = 0
        self._errors: dict[str, tuple[int, RecordError]] = {}
        self._poll_lock = asyncio.Lock()
        self._logs: OrderedDict[str, _LogCache] = OrderedDict()
        self._synced = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.api.base_url!r})"

    # -- hooks for subclasses ------------------------------------------------------

    async def poll(self, first: bool) -> Iterable[Run | RecordError]:
        """Runs that may have changed since the last poll (all recent runs, up to
        ``max_runs``, when ``first``), already parsed with :meth:`parse_safely`.
        Keeps its own cursor; returning an unchanged run is harmless."""
        raise NotImplementedError

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        """One run as the system has it now (``run`` is the cached one, if any).
        Raise :class:`RunNotFound` when the system does not know it."""
        raise NotImplementedError

    async def fetch_logs(self, run: Run, after: int) -> list[LogLine] | None:
        """Log lines with ``seq > after``; ``None`` when the system keeps none."""
        return None

    async def remote_abort(self, run: Run, by: str) -> str:
        """Ask the system to stop ``run``; return what it said. Raise
        :class:`TransitionRefused` with the system's own message when it refuses."""
        raise TransitionRefused(f"cannot abort {run.id}: {self.SYSTEM} has no way to stop runs")

    async def remote_archive(self, run: Run, archived: bool) -> str:
        """Only for ``REMOTE_ARCHIVE`` systems."""
        raise NotImplementedError

    async def remote_rerun(self, run: Run, by: str) -> tuple[Run, str]:
        """Start ``run``'s job again; return the new run (as the system first tells
        of it) and what it said. Only for systems declaring ``Action.RERUN``."""
        raise TransitionRefused(f"cannot rerun {run.id}: {self.CAPABILITIES.rerun_refusal}")

    def parse(self, raw: Any) -> Run:
        """Map one raw record; may raise anything (caught by :meth:`parse_safely`)."""
        raise NotImplementedError

    def scrub_raw(self, raw: Any) -> Any:
        """``raw`` as an error row may show it, before the generic redaction: a
        system whose records carry keys or PII that :func:`redact` does not know
        masks them here."""
        return raw

    def _excerpt(self, raw: Any) -> str:
        try:
            return raw_excerpt(self.scrub_raw(raw))
        except Exception:  # a record the masking cannot walk is not shown at all
            return f"<{type(raw).__name__} not shown: it could not be masked>"

    # -- helpers for subclasses -----------------------------------------------------

    def parse_safely(self, raw: Any, what: str = "record") -> Run | RecordError:
        """:meth:`parse`, with any failure turned into an error row for that record."""
        try:
            run = self.parse(raw)
            if not isinstance(run, Run):
                raise MappingError(f"mapper returned {type(run).__name__}")
            return run
        except RecursionError:
            message = "record nested too deeply"
        except Exception as exc:
            message = short(str(exc) or type(exc).__name__, 200)
        return RecordError(
            source=self.name,
            id=raw_id(raw, *self.ID_KEYS),
            message=f"unreadable {self.SYSTEM} {what}: {message}",
            raw=self._excerpt(raw),
        )

    def parse_all(self, raws: Any, what: str = "record") -> list[Run | RecordError]:
        """Each item of a list of raw records, parsed safely; a non-list is one error."""
        if not isinstance(raws, list):
            return [
                RecordError(
                    source=self.name,
                    message=f"{self.SYSTEM} sent {type(raws).__name__} where a list of "
                    f"{what}s was expected",
                    raw=self._excerpt(raws),
                )
            ]
        return [self.parse_safely(raw, what) for raw in raws]

    def cached(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def active_runs(self) -> list[Run]:
        """Cached runs not yet finished: what a system without change cursors must
        ask about again on every poll."""
        return [run for run in self._runs.values() if run.status.is_active and not run.deleted]

    async def reread(
        self,
        runs: Iterable[Run],
        fetch_one: Callable[[Run], Awaitable[Run | RecordError]],
        *,
        concurrency: int = REREAD_CONCURRENCY,
    ) -> list[Run | RecordError]:
        """Ask again about cached runs that may have changed (``fetch_one`` each, a
        few at a time), for systems with no "changed since" to list by.

        A run the system answers 404 for is marked deleted (:func:`mark_deleted`:
        it stops being active and is not asked about forever); a
        read that fails for that run alone becomes an error row for it (the run
        is asked about again next time, and its row comes back once it reads).
        A server that asks us to come back later fails the poll, so the poller
        waits as long as it was asked.
        """
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(run: Run) -> Run | RecordError:
            async with gate:
                try:
                    return await fetch_one(run)
                except RunNotFound:
                    return mark_deleted(run, self.SYSTEM)
                except RemoteUnavailable as exc:
                    if exc.retry_after is not None:
                        raise
                    failed: SourceError = exc
                except SourceError as exc:
                    failed = exc
                return RecordError(
                    source=self.name,
                    id=run.id,
                    message=f"could not read {self.SYSTEM} run {run.id} again: "
                    f"{short(str(failed), 300)}",
                )

        return list(await asyncio.gather(*(one(run) for run in runs)))

    def raise_for(
        self,
        response: httpx.Response,
        *,
        doing: str,
        not_found: str | JobwatchError | None = None,
        refusal: str | None = None,
        said: Callable[[httpx.Response], str] = error_message,
    ) -> None:
        """The one reading of an HTTP status, for every call of every adapter.

        Nothing below 300. Otherwise, in this order: a 404 is ``not_found``
        (text: :class:`RunNotFound`; an error: raised as it is) when given; a 401,
        or a 403 on a read, is a :class:`SourceError` naming the token settings;
        any other 4xx on an action (``refusal`` given: "Letta refused to cancel
        run-1") is a :class:`TransitionRefused` with the system's own words;
        everything else is a :class:`SourceError` saying what was being done.
        ``said`` reads the system's message from its error body.
        """
        status = response.status_code
        if status < 300:
            return
        words = said(response)
        told = f": {words}" if words else ""
        if status == 404 and not_found is not None:
            if isinstance(not_found, str):
                raise RunNotFound(f"{self.name}: {not_found}")
            raise not_found
        if status == 401 or (status == 403 and refusal is None):
            raise SourceError(
                f"{self.name}: {self.SYSTEM} refused the credentials ({status}) while "
                f"{doing}{told}; check token_env / token_file in [sources.{self.name}]"
            )
        if refusal is not None and 400 <= status < 500 and status not in (408, 429):
            raise TransitionRefused(f"{refusal}: {words or f'HTTP {status}'}")
        raise SourceError(f"{self.name}: {self.SYSTEM} answered {status} while {doing}{told}")

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        await self.api.open()
        await self._open_flags()

    async def close(self) -> None:
        await self.api.close()
        if self._flags is not None:
            flags, self._flags = self._flags, None
            await flags.close()

    async def _open_flags(self, *, create: bool = False) -> None:
        """Open the local store that keeps archive flags. Reading never creates or
        changes it; only the first local archive (``create``) makes it."""
        if self._flags is not None or self._flags_path is None or self.REMOTE_ARCHIVE:
            return
        if not create and not self._flags_path.exists():
            return  # nothing archived here yet
        from jobwatch.sources.local.db import Mode
        from jobwatch.sources.local.store import SqliteStore

        mode: Mode = "read" if self.read_only else "create" if create else "write"
        store = SqliteStore(self._flags_path, name=f"{self.name} flags", mode=mode)
        try:
            await store.open()
            self._archived = await store.local_archived(self.name)
        except Exception as exc:
            await store.close()
            raise SourceError(
                f"{self.name}: cannot open the store that keeps local archive flags: {exc}"
            ) from None
        self._flags = store

    # -- the cache and its revisions -------------------------------------------------

    def _remember(self, item: Run | RecordError) -> None:
        if isinstance(item, RecordError):
            key = item.row_id
            old = self._errors.get(key)
            if old is None or old[1] != item:
                self._revision += 1
                self._errors[key] = (self._revision, item)
            return
        run = item
        if run.source != self.name:
            run = run.evolve(source=self.name)
        if not self.REMOTE_ARCHIVE:
            wanted = run.id in self._archived
            if run.archived != wanted:
                run = run.evolve(archived=wanted)
        # It reads fine now: its error row goes, and the run is handed out again
        # even if unchanged, or the table would keep showing the error row.
        cleared = self._errors.pop(run.id, None) is not None
        if cleared or self._runs.get(run.id) != run:
            self._revision += 1
            self._runs[run.id] = run
            self._rev_of[run.id] = self._revision

    async def refresh(self) -> None:
        """Ask the system what changed (all recent runs on the first call): the only
        place an adapter polls, so the poller alone decides how often."""
        async with self._poll_lock:
            if self._flags is None:
                await self._open_flags()
            items = list(await self.poll(first=not self._synced))
            for item in self._keyed(items):
                self._remember(item)
            self._synced = True

    @staticmethod
    def _keyed(items: list[Run | RecordError]) -> list[Run | RecordError]:
        """Every error row of a poll under a key of its own (:attr:`RecordError.row_id`,
        from its content; identical records are told apart by their order), so
        three bad records are three rows, not one, and the same ones next time."""
        out: list[Run | RecordError] = []
        taken: set[str] = set()
        for item in items:
            if isinstance(item, RecordError) and item.id is None:
                key = base = item.row_id
                n = 1
                while key in taken:
                    n += 1
                    key = f"{base}-{n}"
                taken.add(key)
                item = item.model_copy(update={"key": key})
            out.append(item)
        return out

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """What changed in the cached view after ``cursor``, in revision order; the
        first call syncs (so a one-shot read works without a :meth:`refresh`)."""
        try:
            since = int(cursor) if cursor not in (None, "") else 0
        except (TypeError, ValueError):
            since = 0
        if since > self._revision:
            since = 0  # a cursor from another process: start over
        if not self._synced:
            await self.refresh()
        changed = sorted((rev, run_id) for run_id, rev in self._rev_of.items() if rev > since)
        more = False
        if limit is not None and len(changed) > limit:
            changed, more = changed[:limit], True
        upto = changed[-1][0] if more else self._revision
        errors = [err for rev, err in self._errors.values() if since < rev <= upto]
        return ChangeSet(
            runs=[self._runs[run_id] for _, run_id in changed],
            cursor=upto,
            errors=errors,
            more=more,
        )

    def _resolve(self, ref: str) -> str:
        """A full id, or the one id among the runs seen so far that starts with
        ``ref``; an ambiguous prefix names its candidates."""
        if ref in self._runs:
            return ref
        matches = sorted(run_id for run_id in self._runs if run_id.startswith(ref))
        if len(matches) > 1:
            shown = ", ".join(matches[:PREFIX_CANDIDATES_SHOWN])
            more = ", …" if len(matches) > PREFIX_CANDIDATES_SHOWN else ""
            raise AmbiguousRunId(
                f"run id {short(ref, 80)!r} matches {len(matches)} runs in {self.name}: "
                f"{shown}{more}; give more of the id"
            )
        return matches[0] if matches else ref

    async def resolve(self, ref: str) -> str:
        """:meth:`_resolve` after the first sync, so a prefix typed into a fresh
        process (``show 0jRROSSTFz``) finds the run the lists show."""
        if ref not in self._runs and not self._synced:
            with contextlib.suppress(SourceError):  # the direct read says why
                await self.refresh()
        return self._resolve(ref)

    async def get(self, run_id: str) -> Run:
        run_id = await self.resolve(run_id)
        cached = self._runs.get(run_id)
        try:
            run = await self.fetch(cached, run_id)
        except RunNotFound:
            if cached is None:
                raise
            run = mark_deleted(cached, self.SYSTEM)  # seen before, gone now
        except SourceError:
            if cached is None:
                raise
            return cached  # the list still knows it; better stale than nothing
        self._remember(run)
        return self._runs.get(run.id, run)

    # -- actions ---------------------------------------------------------------------

    async def abort(self, run_id: str, by: str) -> ActionResult:
        self.refuse_early(Action.ABORT, run_id)
        run = await self.get(run_id)
        self.check(Action.ABORT, run)
        said = await self.remote_abort(run, by)
        with contextlib.suppress(SourceError):
            run = await self.get(run.id)
        return ActionResult(run, said or f"asked {self.SYSTEM} to stop {run.id}")

    async def rerun(self, run_id: str, by: str) -> ActionResult:
        self.refuse_early(Action.RERUN, run_id)
        run = await self.get(run_id)
        self.check(Action.RERUN, run)
        new, said = await self.remote_rerun(run, by)
        new = new.evolve(metadata={**(new.metadata or {}), "rerun_of": run.id})
        self._remember(new)
        return ActionResult(self._runs.get(new.id, new), said)

    async def archive(self, run_id: str) -> ActionResult:
        return await self._set_archived(run_id, True)

    async def unarchive(self, run_id: str) -> ActionResult:
        return await self._set_archived(run_id, False)

    async def _set_archived(self, run_id: str, archived: bool) -> ActionResult:
        action = Action.ARCHIVE if archived else Action.UNARCHIVE
        self.refuse_early(action, run_id)
        run = await self.get(run_id)
        self.check(action, run)
        if self.REMOTE_ARCHIVE:
            said = await self.remote_archive(run, archived)
            run = await self.get(run.id)
            return ActionResult(run, said)
        await self._open_flags(create=True)
        if self._flags is None:
            raise TransitionRefused(
                f"cannot {action.value} {run.id}: {self.SYSTEM} has no archive and "
                "no local store is configured to keep the flag"
            )
        await self._flags.set_local_archived(self.name, run.id, archived)
        if archived:
            self._archived.add(run.id)
        else:
            self._archived.discard(run.id)
        self._remember(run)
        where = f"locally ({self.SYSTEM} has no archive)"
        return ActionResult(self._runs[run.id], f"{action.value}d {run.id} {where}")

    # -- logs ------------------------------------------------------------------------

    async def _log(self, run_id: str) -> _LogCache:
        run_id = await self.resolve(run_id)
        cache = self._logs.get(run_id)
        if cache is None:
            cache = self._logs[run_id] = _LogCache()
            while len(self._logs) > LOG_RUNS_CACHED:
                self._logs.popitem(last=False)
        self._logs.move_to_end(run_id)
        if cache.done or time.monotonic() - cache.fetched_at < LOG_REFRESH_S:
            return cache
        run = self._runs.get(run_id) or await self.get(run_id)
        lines = await self.fetch_logs(run, cache.last)
        cache.fetched_at = time.monotonic()
        if lines is None:
            cache.note = self.capabilities.logs_note or f"{self.SYSTEM} keeps no log for its runs."
            cache.done = True
            cache.add(
                [
                    LogLine(
                        run_id=run_id,
                        seq=1,
                        ts=datetime.now(UTC),
                        stream="jobwatch",
                        level=LogLevel.INFO,
                        text=cache.note,
                    )
                ]
            )
            return cache
        cache.add(lines)
        cache.done = run.status.is_terminal
        return cache

    async def log_bounds(self, run_id: str) -> LogBounds:
        cache = await self._log(run_id)
        return LogBounds(cache.seqs[0], cache.seqs[-1]) if cache.seqs else LogBounds(0, 0)

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        cache = await self._log(run_id)
        start = bisect.bisect_right(cache.seqs, after)
        return cache.lines[start : start + max(0, limit)]

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        cache = await self._log(run_id)
        return cache.lines[-count:] if count > 0 else []

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        cache = await self._log(run_id)
        needle = needle.casefold()
        if backwards:
            end = bisect.bisect_left(cache.seqs, start)
            for line in reversed(cache.lines[:end]):
                if needle in line.text.casefold():
                    return line.seq
            return None
        for line in cache.lines[bisect.bisect_right(cache.seqs, start) :]:
            if needle in line.text.casefold():
                return line.seq
        return None

    async def first_error(self, run_id: str) -> int | None:
        cache = await self._log(run_id)
        for line in cache.lines:
            if line.level is LogLevel.ERROR:
                return line.seq
        return None
