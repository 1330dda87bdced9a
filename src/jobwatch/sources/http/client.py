"""A :class:`~jobwatch.sources.protocol.Source` that speaks to ``jobwatch serve``.

Every call has a timeout, connection failures are retried by the transport, and
429/5xx answers by our own loop (exponential back-off with full jitter, honouring
``Retry-After`` up to a cap), a bounded number of times. After that the call raises
:class:`~jobwatch.core.errors.SourceError` and nothing else: the poller turns it into
"stale" and keeps the last runs it knew. Refusals keep their meaning
(409 → :class:`TransitionRefused`, 404 → :class:`RunNotFound`) with the server's
own message, so a refusal reads the same locally and remotely.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import random
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from jobwatch import core as models
from jobwatch.core import RunRow
from jobwatch.core.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    TransitionRefused,
)
from jobwatch.core.gcpause import gc_paused
from jobwatch.core.rules import Action, Capabilities, source_refusal
from jobwatch.sources.http import rows as row_codec
from jobwatch.sources.http import window_wire
from jobwatch.sources.http.transport import (
    ApiClient,
    RemoteUnavailable,
    decode_json,
    parse_retry_after,
)
from jobwatch.sources.http.transport import short as _short
from jobwatch.sources.protocol import (
    ActionResult,
    ChangeSet,
    ListQuery,
    LogBounds,
    RowDelta,
    SourceBase,
    StatusCounts,
    TriageFill,
    WindowView,
)

if TYPE_CHECKING:
    from jobwatch.core import LogLine, RecordError, Run

__all__ = ["API", "HttpSource", "RemoteUnavailable", "parse_retry_after"]


@functools.cache
def _orjson_loads() -> Callable[[httpx.Response], Any] | None:
    """orjson's parser for big rows pages where it is installed (the server extra
    brings it): 5 MB in 40-50 ms against the stdlib's 60-130 (measured). Looked
    up at the first page, not at import: importing it costs the first paint 20 ms."""
    try:
        import orjson
    except ImportError:
        return None

    def loads(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return decode_json(response, "rows")  # the stdlib's error, as everywhere

    return loads


API = "/api/v1"
DEFAULT_PAGE = 1000
DEFAULT_ROW_PAGE = 50_000
"""Table rows per ``/rows`` page: 100k runs arrive in two answers."""
LIST_LIMIT = 10_000
"""The longest listing the server filters itself (its ``MAX_PAGE``)."""
LOG_PAGE = 5000
"""The most log lines ``jobwatch serve`` hands out per request (its ``MAX_LOG_PAGE``)."""


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"bad response: {what} is not a number")
    return value


class HttpSource(SourceBase):
    """A remote jobwatch store, read incrementally by revision."""

    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "The server passes the abort to the run's owner: a run started by "
            "`jobwatch run` gets SIGTERM on its process group, then SIGKILL after "
            "its grace period."
        ),
        rows=True,
        first_rows=True,
        rerun_refusal=(
            "jobwatch serve never sends a command line, so a rerun is started on the "
            "server's host (`jobwatch rerun` there)"
        ),
    )

    _WINDOWED: ClassVar[Capabilities] = dataclasses.replace(CAPABILITIES, window=True)

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        token: str | None = None,
        token_loader: Callable[[], str | None] | None = None,
        verify: bool | str = True,
        timeout: float = 10.0,
        read_only: bool = False,
        attempts: int = 3,
        connect_retries: int = 1,
        retry_base: float = 0.25,
        retry_cap: float = 2.0,
        max_retry_after: float = 5.0,
        page: int = DEFAULT_PAGE,
        row_page: int = DEFAULT_ROW_PAGE,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.name = name or (parts.netloc or self.url)
        self.read_only = read_only
        self.timeout = timeout
        self.page = page
        self.row_page = row_page
        self._rows_api = True
        """Until the server says it has no ``/rows`` (an older ``jobwatch serve``)."""
        self._window_api = True
        """Until the server says it answers no windowed reads."""
        self._list_api = True
        """Until the server says it cannot filter a listing itself."""
        self._head: Any = None
        """The head revision the last counts came with, until a first poll takes it."""
        self._ahead: tuple[dict[str, Any], asyncio.Task[httpx.Response]] | None = None
        """The next rows page, asked for before the caller wants it (see :meth:`_read_ahead`)."""
        self._token = token
        self._token_loader = token_loader
        self._api = ApiClient(
            self.url + API,
            name=self.name,
            headers=self._auth_headers,
            verify=verify,
            timeout=timeout,
            attempts=attempts,
            connect_retries=connect_retries,
            retry_base=retry_base,
            retry_cap=retry_cap,
            max_retry_after=max_retry_after,
            rng=rng,
            sleep=sleep,
        )

    @property
    def capabilities(self) -> Capabilities:
        """Windowed reads until the server says it has none (an older ``jobwatch
        serve``, or one whose source is no store): then a monitor syncs as before."""
        return self._WINDOWED if self._window_api else self.CAPABILITIES

    def __repr__(self) -> str:  # never shows the token
        return f"HttpSource({self.name!r}, {self.url!r})"

    def _auth_headers(self) -> dict[str, str]:
        token = self._token
        if token is None and self._token_loader is not None:
            try:
                token = self._token_loader()
            except JobwatchError as exc:
                raise SourceError(f"{self.name}: {exc}") from None
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Build the client; no request yet, so a server that is down does not
        stop the monitor from starting (the first poll marks it stale)."""
        await self._api.open()

    async def close(self) -> None:
        self._drop_ahead()
        await self._api.close()

    # -- plumbing ----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One API call with bounded retries; returns the decoded JSON body."""
        response = await self._api.request(
            method, path, params=params, json=body, describe=self._message
        )
        if response.status_code >= 300:
            self._raise_for(response)
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return decode_json(response, self.name)
        except SourceError as exc:
            raise SourceError(f"{exc}; is it a jobwatch server?") from None

    @staticmethod
    def _error_body(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _message(self, response: httpx.Response) -> str:
        message = self._error_body(response).get("message")
        return _short(message) if isinstance(message, str) else ""

    def _raise_for(self, response: httpx.Response) -> None:
        data = self._error_body(response)
        code = data.get("error")
        message = self._message(response) or f"HTTP {response.status_code}"
        status = response.status_code
        if status == 404 and code == "not_found":
            raise RunNotFound(message)
        if status == 409 or (status == 403 and code == "read_only"):
            raise TransitionRefused(message)
        if status == 400 and code == "ambiguous":
            raise AmbiguousRunId(message)
        if status == 401:
            raise SourceError(
                f"{self.name}: {self.url} refused the token ({message}); "
                "check the source's token_env or token_file"
            )
        if status == 404:
            raise SourceError(
                f"{self.name}: {self.url} has no jobwatch API at {API} "
                f"({message}); is it a jobwatch server?"
            )
        raise SourceError(f"{self.name}: {self.url} answered {status}: {message}")

    def _shape(self, data: Any, *keys: str) -> dict[str, Any]:
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise SourceError(
                f"{self.name}: unexpected response from {self.url} "
                f"(expected an object with {', '.join(keys)})"
            )
        return data

    def _run(self, data: Any) -> Run:
        from pydantic import ValidationError  # not at import: the monitor starts without it

        try:
            return models.Run.model_validate(data)
        except ValidationError as exc:
            raise SourceError(
                f"{self.name}: unreadable run from {self.url}: "
                f"{_short(str(exc.errors()[0].get('msg')))}"
            ) from None

    def _lines(self, data: Any) -> list[LogLine]:
        from pydantic import ValidationError

        body = self._shape(data, "lines")
        lines = body["lines"]
        if not isinstance(lines, list):
            raise SourceError(f"{self.name}: unexpected log response from {self.url}")
        try:
            return [models.LogLine.model_validate(line) for line in lines]
        except ValidationError:
            raise SourceError(f"{self.name}: unreadable log lines from {self.url}") from None

    @staticmethod
    def _path(run_id: str, *rest: str) -> str:
        return "/".join(("/runs", quote(run_id, safe=""), *rest))

    # -- reading -----------------------------------------------------------------

    async def changes(self, cursor: int | str | None, limit: int | None = None) -> ChangeSet:
        """One page of changes; ``more`` says whether to ask again right away."""

        params: dict[str, Any] = {"limit": limit or self.page}
        if cursor is not None and cursor != "":
            params["since"] = str(cursor)
        body = self._shape(
            await self._request("GET", "/runs", params=params), "runs", "revision", "more"
        )
        revision = body["revision"]
        if isinstance(revision, bool) or not isinstance(revision, int | str):
            raise SourceError(f"{self.name}: unexpected runs page from {self.url}")
        runs, errors = self._runs_and_errors(body)
        return ChangeSet(runs=runs, cursor=revision, errors=errors, more=bool(body["more"]))

    def _runs_and_errors(self, body: dict[str, Any]) -> tuple[list[Run], list[RecordError]]:
        """The runs of a page, and a visible error for each one that cannot be read."""
        from pydantic import ValidationError

        raw_runs = body["runs"]
        if not isinstance(raw_runs, list):
            raise SourceError(f"{self.name}: unexpected runs page from {self.url}")
        runs: list[Run] = []
        errors: list[RecordError] = []
        for item in raw_runs:
            try:
                runs.append(models.Run.model_validate(item))
            except ValidationError as exc:
                run_id = item.get("id") if isinstance(item, dict) else None
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "record"
                errors.append(
                    models.RecordError(
                        source=self.name,
                        id=str(run_id) if run_id is not None else None,
                        message=_short(f"unreadable record: {where}: {first.get('msg')}"),
                        raw=_short(str(item), 500),
                    )
                )
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                errors.append(
                    models.RecordError(
                        source=_short(str(item.get("source") or self.name), 100),
                        id=_short(str(item["id"]), 200) if item.get("id") is not None else None,
                        message=_short(str(item.get("message") or "unreadable record")),
                    )
                )
        return runs, errors

    async def list_runs(self, query: ListQuery) -> tuple[list[Run], list[RecordError]]:
        """Asked of the store behind the server when it filters listings and the
        listing has a limit (``jobwatch list``'s default 50: at 100k runs the sync
        it replaces took 36 s); else, or from an older server, a full sync."""
        if self._list_api and query.limit and query.limit <= LIST_LIMIT:
            params: dict[str, Any] = {"limit": query.limit, "archived": query.include_archived}
            params |= {"status": list(query.statuses), "job": list(query.jobs)}
            params["run_source"] = list(query.run_sources)
            response = await self._api.request(
                "GET", "/list", params=params, describe=self._message
            )
            gone = response.status_code == 404
            if gone and self._error_body(response).get("error") in ("no_query", "no_route", None):
                self._list_api = False
            else:
                if response.status_code >= 300:
                    self._raise_for(response)
                return self._runs_and_errors(self._shape(self._decode(response), "runs"))
        return await super().list_runs(query)

    async def row_changes(self, cursor: int | str | None, limit: int | None = None) -> RowDelta:
        """Table rows from ``/rows`` (compact, see :mod:`.rows`); a server without it
        (older than ``rows/1``) is read through ``/runs``, as before."""
        params: dict[str, Any] = {"limit": limit or self.row_page}
        if cursor is not None and cursor != "":
            params["since"] = str(cursor)
        body = await self._rows_page(params) if self._rows_api else None
        if body is None:
            return await super().row_changes(cursor, limit or self.page)
        revision = body.get("revision")
        if isinstance(revision, bool) or not isinstance(revision, int | str):
            raise SourceError(f"{self.name}: unexpected rows page from {self.url}")
        more = bool(body.get("more"))
        if more:
            self._read_ahead({"limit": params["limit"], "since": str(revision)})
        return RowDelta(self._decode_rows(body), revision, more)

    async def first_rows(self, limit: int) -> list[RunRow] | None:
        """The newest rows for a first screen, ahead of the sync (``None`` from a
        server without ``/rows``: the first page of the sync paints instead)."""
        # ``limit``: the page size the sync will ask for, so the server can start
        # reading its first page meanwhile (an older server ignores it)
        params = {"newest": limit, "limit": self.row_page}
        body = await self._rows(params) if self._rows_api else None
        return None if body is None else self._decode_rows(body)

    def _read_ahead(self, params: dict[str, Any]) -> None:
        """Ask for the page a first sync reads next while this one is decoded and
        shown: the server reads and encodes it on its own core meanwhile (a 50k-row
        page costs it about half a second). Only the bytes arrive meanwhile: they
        are parsed when asked for, so the first frame never waits for that. One page
        at most; a caller that asks for another cursor drops it."""
        self._drop_ahead()
        self._ahead = (params, asyncio.ensure_future(self._get_rows(params)))

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            _, task = self._ahead
            self._ahead = None
            if task.done():
                if not task.cancelled():
                    task.exception()  # retrieved: a failed read-ahead is not an error
            else:
                task.cancel()

    async def _rows_page(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The page for ``params``: the one read ahead if it is that one."""
        ahead = self._ahead
        if ahead is not None and ahead[0] == params:
            self._ahead = None
            try:
                return self._rows_body(await ahead[1])
            except (SourceError, httpx.HTTPError):
                pass  # read again now, with this call's own retries and error
        else:
            self._drop_ahead()
        return await self._rows(params)

    async def _get_rows(self, params: dict[str, Any]) -> httpx.Response:
        return await self._api.request("GET", "/rows", params=params, describe=self._message)

    async def _rows(self, params: dict[str, Any]) -> dict[str, Any] | None:
        return self._rows_body(await self._get_rows(params))

    def _rows_body(self, response: httpx.Response) -> dict[str, Any] | None:
        if response.status_code == 404 and self._error_body(response).get("error") != "not_found":
            self._rows_api = False  # an older server: no such route
            return None
        if response.status_code >= 300:
            self._raise_for(response)
        with gc_paused():  # a page of 50k rows is a million small objects
            loads = _orjson_loads()
            body = loads(response) if loads is not None else self._decode(response)
        return self._shape(body, "format", "columns", "revision")

    def _decode_rows(self, body: dict[str, Any]) -> list[RunRow]:
        try:
            with gc_paused():  # none of the rows is garbage: a collection only walks them
                return row_codec.decode(body)
        except row_codec.RowsFormatError as exc:
            raise SourceError(f"{self.name}: unexpected rows page from {self.url}: {exc}") from None

    # -- windowed reads (a big store behind the server: see window_wire) ---------------

    async def _window(
        self, path: str, params: dict[str, Any] | None = None, *, lacking: str = ""
    ) -> Any:
        """One windowed read; a server without them is remembered (``None``). A 404
        with the code ``lacking`` is this read's own "none" (``None``), not that."""
        if not self._window_api:
            return None
        response = await self._api.request(
            "GET", "/window/" + path, params=params, describe=self._message
        )
        code = self._error_body(response).get("error") if response.status_code == 404 else ""
        if lacking and code == lacking:
            return None
        if response.status_code == 404 and code in (
            "no_window",
            "no_route",  # an older jobwatch serve
            None,  # not a jobwatch answer at all (a proxy's page)
        ):
            self._window_api = False
            return None
        if response.status_code >= 300:
            self._raise_for(response)
        with gc_paused():
            loads = _orjson_loads()
            return loads(response) if loads is not None else self._decode(response)

    def _unwindowed(self) -> SourceError:
        return SourceError(f"{self.name}: {self.url} answers no windowed reads")

    async def status_counts(self) -> StatusCounts:
        """The counts a monitor chooses a window by; from a server without windowed
        reads, none (so the monitor syncs everything, as with an older server)."""
        data = await self._window("counts")
        if data is None:
            return StatusCounts({}, 0)
        try:
            counts = window_wire.parse_counts(data)
        except ValueError as exc:
            raise SourceError(f"{self.name}: unexpected counts from {self.url}: {exc}") from None
        self._head = data.get("revision", self._head)
        return counts

    async def head_cursor(self) -> int | str | None:
        """The head the last counts came with, if any (one round trip less before a
        window's first poll: a head older than now only makes that poll read the
        changes since, which it merges like any other); else the server's now."""
        if self._head is not None:
            revision, self._head = self._head, None
        else:
            data = await self._window("head")
            if data is None:
                return None
            revision = self._shape(data, "revision")["revision"]
        if isinstance(revision, bool) or not isinstance(revision, int | str | None):
            raise SourceError(f"{self.name}: unexpected head from {self.url}")
        return revision

    async def window_rows(
        self,
        view: WindowView,
        *,
        offset: int = 0,
        limit: int = 500,
        after: RunRow | None = None,
        before: RunRow | None = None,
        from_end: bool = False,
    ) -> list[RunRow]:
        params: dict[str, Any] = {"view": window_wire.view_param(view), "limit": limit}
        if offset:
            params["offset"] = offset
        if after is not None:
            params["after"] = window_wire.anchor_param(after)
        if before is not None:
            params["before"] = window_wire.anchor_param(before)
        if from_end:
            params["from_end"] = "true"
        data = await self._window("rows", params)
        if data is None:
            raise self._unwindowed()
        return self._decode_rows(self._shape(data, "format", "columns"))

    async def window_count(self, view: WindowView, *, before: RunRow | None = None) -> int:
        params = {"view": window_wire.view_param(view)}
        if before is not None:
            params["before"] = window_wire.anchor_param(before)
        data = await self._window("count", params)
        if data is None:
            raise self._unwindowed()
        return _int(self._shape(data, "count")["count"], "count")

    async def triage_rows(self, *, per_job: int, since: float) -> TriageFill | None:
        params = {"per_job": per_job, "since": since}
        data = await self._window("triage", params, lacking="no_triage")
        if data is None:
            return None
        try:
            with gc_paused():
                return window_wire.parse_triage(data)
        except (ValueError, row_codec.RowsFormatError) as exc:
            raise SourceError(f"{self.name}: unexpected triage from {self.url}: {exc}") from None

    async def get(self, run_id: str) -> Run:
        data = await self._request("GET", self._path(run_id))
        if "jobwatch.core.run" not in sys.modules:
            # The detail pane asks as the monitor mounts: importing the run models
            # (0.2-0.3 s) on the event loop would hold back the first frame.
            await asyncio.to_thread(importlib.import_module, "jobwatch.core.run")
        return self._run(data)

    async def log_bounds(self, run_id: str) -> LogBounds:
        body = self._shape(
            await self._request("GET", self._path(run_id, "logs", "bounds")), "first", "last"
        )
        return LogBounds(_int(body["first"], "first"), _int(body["last"], "last"))

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        """Up to ``limit`` lines, in pages the server accepts (it hands out at most
        :data:`LOG_PAGE` per request)."""
        lines: list[LogLine] = []
        for _ in range(limit // LOG_PAGE + 1):
            asked = min(LOG_PAGE, limit - len(lines))
            if asked <= 0:
                break
            params = {"after": lines[-1].seq if lines else after, "limit": asked}
            page = self._lines(
                await self._request("GET", self._path(run_id, "logs"), params=params)
            )
            lines += page
            if len(page) < asked:
                break
        return lines

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        if count <= 0:
            return []
        if count > LOG_PAGE:  # more than one page: read forward from where the tail starts
            bounds = await self.log_bounds(run_id)
            start = max(bounds.first, bounds.last - count + 1)
            return await self.log_lines(run_id, after=start - 1, limit=count)
        params = {"tail": count}
        return self._lines(await self._request("GET", self._path(run_id, "logs"), params=params))

    async def log_find(
        self, run_id: str, needle: str, *, start: int, backwards: bool = False
    ) -> int | None:
        params = {"q": needle, "start": start, "backwards": "true" if backwards else "false"}
        body = self._shape(
            await self._request("GET", self._path(run_id, "logs", "find"), params=params), "seq"
        )
        return None if body["seq"] is None else _int(body["seq"], "seq")

    async def first_error(self, run_id: str) -> int | None:
        body = self._shape(
            await self._request("GET", self._path(run_id, "logs", "first-error")), "seq"
        )
        return None if body["seq"] is None else _int(body["seq"], "seq")

    # -- actions -----------------------------------------------------------------

    async def _act(self, action: Action, run_id: str, body: dict[str, Any] | None) -> ActionResult:
        why = source_refusal(action, run_id, self)
        if why is not None:
            raise TransitionRefused(why)
        verb = action.value
        data = self._shape(
            await self._request("POST", self._path(run_id, verb), body=body), "run", "message"
        )
        return ActionResult(self._run(data["run"]), _short(str(data["message"])))

    async def abort(self, run_id: str, by: str) -> ActionResult:
        return await self._act(Action.ABORT, run_id, {"by": by})

    async def archive(self, run_id: str) -> ActionResult:
        return await self._act(Action.ARCHIVE, run_id, None)

    async def unarchive(self, run_id: str) -> ActionResult:
        return await self._act(Action.UNARCHIVE, run_id, None)

    async def health(self) -> dict[str, Any]:
        """The server's own health answer (no token needed)."""
        return self._shape(await self._request("GET", "/health"), "ok")
