"""The HTTP API around any :class:`~jobwatch.sources.protocol.Source` (``/api/v1``).

Run objects are exactly :func:`jobwatch.core.format.run_json` (the redacted normalized
model), so what a remote client sees is what ``jobwatch list --json`` prints
locally. Transition rules come from :mod:`jobwatch.core` only; the server never
has its own. Every error is ``{"error": code, "message": text}`` with a proper
status; no answer ever carries a traceback or names a path on the server.
Every parameter is bounded (ids to 256 characters, numbers to SQLite's range),
so bad input is a 400, not a 500; and a bug answers 500 without closing the
client's keep-alive connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobwatch import __version__
from jobwatch.core import Action, LogLine, RecordError, Run, RunRow, check
from jobwatch.core.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    StoreError,
    TransitionRefused,
)
from jobwatch.core.format import run_json
from jobwatch.core.redact import clean, sanitize
from jobwatch.server.pages_ahead import Page, PagesAhead
from jobwatch.sources.http import rows as row_codec
from jobwatch.sources.http import window_wire
from jobwatch.sources.local import procs
from jobwatch.sources.poller import Poller
from jobwatch.sources.protocol import ActionResult, ListQuery, RowDelta, RowRecords, Source

try:
    import orjson
except ImportError:  # an install without the server extra's optional speed-up
    orjson = None  # type: ignore[assignment]

log = logging.getLogger("jobwatch.server")

API = "/api/v1"
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_ROWS_PAGE = 100_000
MAX_WINDOW_PAGE = 10_000
"""A windowed page: the monitor asks for a few thousand rows around its screen."""
MAX_OFFSET = 2**53
MAX_VIEW = 8_000
"""Characters of a view (its filter and the stuck run ids faults-only keeps): a
request line stays under uvicorn's 16 KB."""
MAX_ANCHOR = 4_000
DEFAULT_ROWS_PAGE = 50_000
"""Table rows per page: a row is ~100 bytes in ``rows/1``, a run a kilobyte or more."""
MAX_LOG_PAGE = 5_000
MAX_BODY = 16 * 1024
THREAD_ABOVE = 100
_BY_MAX = 120
MAX_ID = 256
"""Longest run id (or prefix) a request may name; a longer one is a 400."""
MAX_INT = (1 << 63) - 1
"""Largest revision or seq: SQLite's INTEGER; beyond it the store cannot even look."""


# -- documented shapes (OpenAPI only; answers are built by hand for speed) ----------


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_found, refused")
    message: str = Field(description="one readable line")


class RecordErrorBody(BaseModel):
    source: str
    id: str | None
    message: str


class RunsPage(BaseModel):
    runs: list[Run]
    revision: int | str = Field(description="pass back as `since` on the next poll")
    more: bool = Field(description="true: ask again right away, there is more")
    errors: list[RecordErrorBody]


class RowsPage(BaseModel):
    format: str = Field(description="rows/1")
    fields: list[str]
    count: int
    columns: list[Any] = Field(
        description="one per field: a list of values, or {d: distinct values, c: codes}"
    )
    revision: int | str = Field(description="pass back as `since` on the next poll")
    more: bool


class ActionBody(BaseModel):
    run: Run
    message: str


class LogPage(BaseModel):
    lines: list[LogLine]


class Bounds(BaseModel):
    first: int
    last: int


class SeqBody(BaseModel):
    seq: int | None


class Health(BaseModel):
    ok: bool
    version: str
    api: str
    read_only: bool
    source: str | None = Field(default=None, description="ok, or stale: its upstream fails")


class AbortRequest(BaseModel):
    by: str | None = Field(default=None, description="who asks, for the run's record")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "no such run"},
}


# Module level on purpose: with postponed annotations FastAPI resolves them in the
# module's globals, and would take a local one for a query parameter.
_BEARER = HTTPBearer(auto_error=False, description="the server's JOBWATCH_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
ViewParam = Annotated[str, Query(max_length=MAX_VIEW, description="a view (window_wire)")]
AnchorParam = Annotated[
    str | None, Query(max_length=MAX_ANCHOR, description="a row, as a one-row rows/1 body")
]
RunId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID, description="run id or a unique prefix")
]
Seq = Annotated[int, Query(ge=-MAX_INT, le=MAX_INT, description="a log line's seq")]


# -- plumbing ------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than 2xx, raised anywhere in a handler."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _raw(_dumps(data), status, headers)


def _raw(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": code, "message": clean(message)}, status, headers)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _dumps_big(data: Any) -> bytes:
    """A big answer (a rows page): orjson writes a 50k-row page in a sixth of
    ``json.dumps``' time (15 against 80-90 ms, measured); the same bytes."""
    return _dumps(data) if orjson is None else orjson.dumps(data)


class EncodedRuns:
    """Redacted JSON of runs, remembered by content.

    Redaction is the dear part of an answer (regexes over every string). Fifty
    monitors polling the same changes, or opening on the same big store, should
    pay for it once: the key is a digest of the run's full content, so a changed
    run is never served stale. Bounded (LRU) so memory stays flat.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()  # big pages are encoded in worker threads

    def encode(self, run: Run) -> bytes:
        key = hashlib.blake2b(run.model_dump_json().encode(), digest_size=16).digest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        body = _dumps(run_json(run))
        if self.size > 0:
            with self._lock:
                self._cache[key] = body
                if len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return body

    def encode_all(self, runs: list[Run]) -> bytes:
        return b",".join(self.encode(run) for run in runs)

    async def encode_page(self, runs: list[Run]) -> bytes:
        """A big page (a first sync) is encoded off the event loop, so the polls of
        other clients are still answered meanwhile."""
        if len(runs) <= THREAD_ABOVE:
            return self.encode_all(runs)
        return await asyncio.to_thread(self.encode_all, runs)


def _clean_row_text(text: str) -> str:
    return clean(text, keep_newlines=True)  # as run_json redacts every string


def _rows_body(delta: RowDelta | RowRecords) -> bytes:
    """A ``rows/1`` answer (encoded in a thread: a first sync page is big)."""
    if isinstance(delta, RowRecords):
        columns = row_codec.encode_records(delta.fields, delta.records, _clean_row_text, sanitize)
        count = len(delta.records)
    else:
        columns = row_codec.encode(delta.rows, _clean_row_text, sanitize)
        count = len(delta.rows)
    body = {
        "format": row_codec.FORMAT,
        "fields": list(row_codec.FIELDS),
        "count": count,
        "columns": columns,
        "revision": delta.cursor if delta.cursor is not None else 0,
        "more": delta.more,
    }
    return _dumps_big(body)


def _error_json(error: RecordError) -> dict[str, Any]:
    return {
        "source": clean(error.source),
        "id": clean(error.id) if error.id else None,
        "message": clean(error.message),
    }


def _line_json(line: LogLine) -> dict[str, Any]:
    return {
        "run_id": line.run_id,
        "seq": line.seq,
        "ts": line.ts.isoformat(),
        "stream": clean(line.stream),
        "level": clean(line.level),
        "text": clean(line.text),
    }


def _cursor(since: str | None) -> int | str | None:
    """Revisions are numbers for the local store (``<revision>[:<row>]``); other
    sources may use strings. Numbers past SQLite's range are refused here: the
    store would fail on them, not answer "nothing new"."""
    if since is None or since == "":
        return None
    numbers = since.split(":")
    if all(n.isascii() and n.isdigit() for n in numbers):
        if any(len(n) > 19 or int(n) > MAX_INT for n in numbers):
            raise ApiError(400, "bad_request", "since: not a revision this server gave out")
        return int(since) if len(numbers) == 1 else since
    return since


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _path_hider(source: Source) -> Callable[[str], str]:
    """Removes the server's own paths (the store file, its folder, the home folder)
    from a message: clients learn nothing about the machine from an error."""
    places: set[str] = set()
    where = getattr(source, "path", None)
    if isinstance(where, str | FilePath):
        for path in (FilePath(where).expanduser(), FilePath(where).expanduser().resolve()):
            places |= {str(path), str(path.parent)}
    with contextlib.suppress(RuntimeError):  # no home folder
        places.add(str(FilePath.home()))
    hidden = sorted((p for p in places if len(p) > 1), key=len, reverse=True)

    def hide(message: str) -> str:
        for place in hidden:
            if place in message:
                message = message.replace(place, "<server path>")
        return message

    return hide


def _install_error_handlers(app: FastAPI, hide: Callable[[str], str]) -> None:
    def error(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return _error(status, code, hide(message), headers)

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error(exc.status, exc.code, exc.message, exc.headers)

    async def known(request: Request, exc: Exception) -> Response:
        status, code, message = 500, "error", str(exc)
        if isinstance(exc, RunNotFound):
            # the store's words name its file; clients need not know
            status, code = 404, "not_found"
            ref = request.path_params.get("run_id")
            message = f"no run {ref!r} on this server" if ref is not None else "no such run"
        elif isinstance(exc, AmbiguousRunId):
            status, code = 400, "ambiguous"
        elif isinstance(exc, TransitionRefused):
            status, code = 409, "refused"
        elif isinstance(exc, SourceError):
            status, code = 502, "upstream"
        elif isinstance(exc, StoreError):
            log.error("store error answering %s: %s", request.url.path, exc)
            status, code = 500, "store_error"
            message = "the server's store failed (details are in the server log)"
        return error(status, code, message)

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error(400, "bad_request", "; ".join(problems) or "bad request")

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "no_route", 405: "method_not_allowed"}
        return error(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            dict(exc.headers) if exc.headers else None,
        )

    async def crash(_: Request, exc: Exception) -> Response:
        log.error("internal error answering a request", exc_info=exc)
        return _CRASH

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(JobwatchError, known)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)
    app.add_middleware(_Contained)


_CRASH_BODY = _dumps(
    {"error": "internal", "message": "internal server error (details are in the server log)"}
)
_CRASH = _raw(_CRASH_BODY, 500)


class _Contained:
    """A bug answers 500 and the connection stays usable.

    Starlette's outermost error middleware answers 500 too, but then re-raises,
    and uvicorn closes the connection: the client's next keep-alive request is
    reset. This sits inside it and ends the request normally instead (unless the
    answer had already begun, when closing is all that is left)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise
            log.error("internal error answering a request", exc_info=exc)
            await _raw(_CRASH_BODY, 500)(scope, receive, send)


# -- the app -------------------------------------------------------------------------


def create_app(
    source: Source,
    *,
    token: str | None = None,
    read_only: bool = False,
    label: str | None = None,
    cache_size: int = 50_000,
    poller: Poller | None = None,
    pages_ahead: int = 4,
) -> FastAPI:
    """The API for an already opened ``source`` (the caller opens and closes it).

    ``token`` set: every route but ``/health`` wants ``Authorization: Bearer``;
    ``read_only``: every write is refused with 403 whatever the source allows;
    ``pages_ahead``: how many ``/rows`` pages may be read ahead (0: none).
    """
    label = label or f"jobwatch serve on {procs.HOST}"
    encoded = EncodedRuns(cache_size)

    async def read_rows(cursor: int | str | None, limit: int) -> Page:
        delta: RowDelta | RowRecords | None = await source.row_records(cursor, limit)
        if delta is None:
            delta = await source.row_changes(cursor, limit)
        return Page(await asyncio.to_thread(_rows_body, delta), delta.cursor, delta.more)

    pages = PagesAhead(read_rows, size=pages_ahead)
    expected = _digest(token) if token else None

    def authorize(
        credentials: Credentials,
    ) -> None:
        if expected is None:
            return
        given = credentials.credentials if credentials is not None else ""
        # Digests first: equal length, so the comparison time says nothing at all.
        if not (credentials and hmac.compare_digest(_digest(given), expected)):
            raise ApiError(
                401,
                "unauthorized",
                "missing or wrong token: send the Authorization header, scheme 'Bearer'",
                {"WWW-Authenticate": "Bearer"},
            )

    app = FastAPI(
        title="jobwatch",
        version=__version__,
        summary="Watch, abort and archive job runs of one jobwatch source.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    _install_error_handlers(app, _path_hider(source))
    public = APIRouter(prefix=API)
    api = APIRouter(prefix=API, dependencies=[Depends(authorize)], responses=_ERRORS)

    @public.get("/health", responses={200: {"model": Health}})
    async def health() -> Response:
        """Liveness, without a token: says nothing about the runs, only whether the
        source behind the server is answering (``stale``) when a poller paces it."""
        body: dict[str, Any] = {"ok": True, "version": __version__, "api": "v1"}
        body["read_only"] = read_only
        if poller is not None:
            body["source"] = "stale" if any(h.stale for h in poller.health().values()) else "ok"
        return _json(body)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return _json(app.openapi())

    @api.get("/runs", responses={200: {"model": RunsPage}})
    async def runs(
        since: Annotated[
            str | None, Query(max_length=200, description="revision from the last answer")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Response:
        """Runs changed after ``since`` (all runs without it), oldest change first.

        The first sync and every later poll are the same call: keep passing back
        ``revision``, and ask again at once while ``more`` is true.
        """
        try:
            cursor = _cursor(since)
            changes = await source.changes(cursor, limit)
        except ValueError:
            message = "since: not a revision this server gave out"
            raise ApiError(400, "bad_request", message) from None
        errors = [_error_json(e) for e in changes.errors]
        revision = changes.cursor if changes.cursor is not None else 0
        return _raw(
            b'{"runs":['
            + await encoded.encode_page(changes.runs)
            + b'],"revision":'
            + _dumps(revision)
            + b',"more":'
            + _dumps(changes.more)
            + b',"errors":'
            + _dumps(errors)
            + b"}"
        )

    @api.get("/list", responses={200: {"model": RunsPage}})
    async def list_runs(
        status: Annotated[list[str], Query(max_length=40)] = [],  # noqa: B006 (FastAPI's way)
        job: Annotated[list[str], Query(max_length=1000)] = [],  # noqa: B006
        run_source: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
        archived: bool = False,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> Response:
        """``jobwatch list`` asked of the store behind the server (newest first,
        filtered there), instead of a client syncing every run to show fifty."""
        if not source.capabilities.query:
            raise ApiError(404, "no_query", "this server's source does not filter listings")
        if len(status) + len(job) + len(run_source) > 200:
            raise ApiError(400, "bad_request", "at most 200 statuses, jobs and sources")
        query = ListQuery(tuple(status), tuple(job), tuple(run_source), archived, limit)
        found, problems = await source.list_runs(query)
        return _raw(
            b'{"runs":['
            + await encoded.encode_page(found)
            + b'],"errors":'
            + _dumps([_error_json(e) for e in problems])
            + b"}"
        )

    @api.get("/rows", responses={200: {"model": RowsPage}})
    async def rows(
        since: Annotated[
            str | None, Query(max_length=200, description="revision from the last answer")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS_PAGE)] = DEFAULT_ROWS_PAGE,
        newest: Annotated[
            int | None, Query(ge=1, le=MAX_ROWS_PAGE, description="the newest N rows only")
        ] = None,
    ) -> Response:
        """What the runs table needs, compactly (format ``rows/1``, see
        :mod:`jobwatch.sources.http.rows`): rows changed after ``since``, paged like
        ``/runs``; or, with ``newest``, the newest rows for a first screen (no
        revision: sync with ``since`` afterwards). Whole runs: ``/runs/{id}``."""
        try:
            cursor = _cursor(since)
            if newest is not None:
                first = await source.first_rows(newest)
                body = await asyncio.to_thread(_rows_body, RowDelta(first or [], None))
                # a monitor paints these, then syncs from the start: begin its first page
                pages.prefetch(None, limit)
                return _raw(body)
            page = await pages.page(cursor, limit)
        except ValueError:
            message = "since: not a revision this server gave out"
            raise ApiError(400, "bad_request", message) from None
        return _raw(page.body)

    # -- windowed reads: a monitor holds a window of a big store over the network --

    def windowing() -> None:
        if not source.capabilities.window:
            raise ApiError(404, "no_window", "this server's source answers no windowed reads")

    def bad_input(exc: ValueError) -> ApiError:
        return ApiError(400, "bad_request", str(exc))

    async def anchor_of(text: str | None) -> RunRow | None:
        """The store's own row for the client's copy (exact times, raw text)."""
        if text is None:
            return None
        given = window_wire.parse_anchor(text)
        return await source.window_row(given.id) or given

    @api.get("/window/counts")
    async def window_counts() -> Response:
        """The whole history's counts by status (and archived): what a monitor asks
        first, to choose between holding a window and syncing everything; with the
        head revision, so its first poll needs no ``/window/head``."""
        windowing()
        revision = await source.head_cursor()  # first: a head older than the counts is safe
        return _json(
            {**window_wire.counts_json(await source.status_counts()), "revision": revision}
        )

    @api.get("/window/head")
    async def window_head() -> Response:
        """A revision after every change there now: poll ``/rows`` from it."""
        windowing()
        return _json({"revision": await source.head_cursor()})

    @api.get("/window/rows", responses={200: {"model": RowsPage}})
    async def window_rows(
        view: ViewParam,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_WINDOW_PAGE)] = 500,
        after: AnchorParam = None,
        before: AnchorParam = None,
        from_end: bool = False,
    ) -> Response:
        """A page of ``view`` in its order, as ``rows/1`` (see ``Source.window_rows``)."""
        windowing()
        try:
            shown = window_wire.parse_view(view)
            rows = await source.window_rows(
                shown,
                offset=offset,
                limit=limit,
                after=await anchor_of(after),
                before=await anchor_of(before),
                from_end=from_end,
            )
        except ValueError as exc:
            raise bad_input(exc) from None
        body = window_wire.rows_body(rows, _clean_row_text, sanitize)
        return _raw(await asyncio.to_thread(_dumps_big, body))

    @api.get("/window/count")
    async def window_count(view: ViewParam, before: AnchorParam = None) -> Response:
        """How many rows ``view`` shows, or how many come before ``before``'s place."""
        windowing()
        try:
            count = await source.window_count(
                window_wire.parse_view(view), before=await anchor_of(before)
            )
        except ValueError as exc:
            raise bad_input(exc) from None
        return _json({"count": count})

    @api.get("/window/triage")
    async def window_triage(
        per_job: Annotated[int, Query(ge=1, le=10_000)],
        since: Annotated[float, Query(ge=0, le=1e11)],
    ) -> Response:
        """The jobs view's start (``Source.triage_rows``): each job's newest runs, the
        active ones, the failures since ``since`` and the shapes seen before it."""
        windowing()
        fill = await source.triage_rows(per_job=per_job, since=since)
        if fill is None:
            raise ApiError(404, "no_triage", "this server's source has no triage fill")
        body = window_wire.triage_json(fill, _clean_row_text, sanitize)
        return _raw(await asyncio.to_thread(_dumps_big, body))

    @api.get("/runs/{run_id}", responses={200: {"model": Run}})
    async def get_run(run_id: RunId) -> Response:
        """One run by id or unique id prefix."""
        return _raw(encoded.encode(await source.get(run_id)))

    @api.get("/runs/{run_id}/logs", responses={200: {"model": LogPage}})
    async def logs(
        run_id: RunId,
        after: Annotated[int, Query(ge=0, le=MAX_INT, description="lines with seq > after")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 500,
        tail: Annotated[
            int | None, Query(ge=1, le=MAX_LOG_PAGE, description="the last N lines instead")
        ] = None,
    ) -> Response:
        """A page of a run's log by sequence number, or its last ``tail`` lines."""

        async def read(rid: str) -> list[LogLine]:
            if tail is not None:
                return await source.log_tail(rid, tail)
            return await source.log_lines(rid, after, limit)

        lines = await read(run_id)
        if not lines:
            run = await source.get(run_id)  # an unknown run is a 404, not an empty log
            if run.id != run_id:  # a prefix: the log is kept under the full id
                lines = await read(run.id)
        return _json({"lines": [_line_json(line) for line in lines]})

    @api.get("/runs/{run_id}/logs/bounds", responses={200: {"model": Bounds}})
    async def bounds(run_id: RunId) -> Response:
        """First and last seq of the log (0, 0 when empty)."""
        found = await source.log_bounds(run_id)
        if found.last == 0:
            run = await source.get(run_id)
            if run.id != run_id:
                found = await source.log_bounds(run.id)
        return _json({"first": found.first, "last": found.last})

    @api.get("/runs/{run_id}/logs/find", responses={200: {"model": SeqBody}})
    async def find(
        run_id: RunId,
        q: Annotated[str, Query(min_length=1, max_length=1000)],
        start: Seq = 0,
        backwards: bool = False,
    ) -> Response:
        """Seq of the next line after (or before) ``start`` containing ``q``."""
        seq = await source.log_find(run_id, q, start=start, backwards=backwards)
        if seq is None:
            run = await source.get(run_id)  # an unknown run is a 404, not "no match"
            if run.id != run_id:
                seq = await source.log_find(run.id, q, start=start, backwards=backwards)
        return _json({"seq": seq})

    @api.get("/runs/{run_id}/logs/first-error", responses={200: {"model": SeqBody}})
    async def first_error(run_id: RunId) -> Response:
        """Seq of the first line logged at level ``error``."""
        seq = await source.first_error(run_id)
        if seq is None:
            run = await source.get(run_id)  # an unknown run is a 404, not "none"
            if run.id != run_id:
                seq = await source.first_error(run.id)
        return _json({"seq": seq})

    async def act(action: Action, run_id: str, do: Any) -> Response:
        if read_only:
            raise ApiError(
                403, "read_only", f"cannot {action.value} {run_id}: this server is read-only"
            )
        run = await source.get(run_id)
        check(action, run)  # the same rules and words as locally
        result: ActionResult = await do(run.id)
        return _json({"run": run_json(result.run), "message": clean(result.message)})

    async def read_abort_body(request: Request) -> str | None:
        size = 0
        chunks: list[bytes] = []
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks).strip()
        if not raw:
            return None
        try:
            body = AbortRequest.model_validate_json(raw)
        except ValueError:
            raise ApiError(400, "bad_request", 'body must be JSON like {"by": "alice"}') from None
        return body.by

    abort_doc = {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AbortRequest.model_json_schema()}},
        }
    }
    _refused: dict[int | str, dict[str, Any]] = {
        200: {"model": ActionBody},
        403: {"model": ErrorBody, "description": "the server is read-only"},
        409: {"model": ErrorBody, "description": "refused by the transition rules"},
    }

    @api.post("/runs/{run_id}/abort", responses=_refused, openapi_extra=abort_doc)
    async def abort(run_id: RunId, request: Request) -> Response:
        """Abort a run that has not finished (its owner stops it if it has one)."""
        given = await read_abort_body(request)
        who = clean(given or "").strip()[:_BY_MAX] or "an API client"
        by = f"{who} via {label}"
        return await act(Action.ABORT, run_id, lambda rid: source.abort(rid, by))

    @api.post("/runs/{run_id}/archive", responses=_refused)
    async def archive(run_id: RunId) -> Response:
        """Hide a finished run from lists (undo with unarchive)."""
        return await act(Action.ARCHIVE, run_id, source.archive)

    @api.post("/runs/{run_id}/unarchive", responses=_refused)
    async def unarchive(run_id: RunId) -> Response:
        """Bring an archived run back."""
        return await act(Action.UNARCHIVE, run_id, source.unarchive)

    app.include_router(public)
    app.include_router(api)
    return app
