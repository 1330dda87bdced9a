"""A :class:`~jobwatch.store.source.Source` that speaks to ``jobwatch serve``.

Every call has a timeout, connection failures are retried by the transport, and
429/5xx answers by our own loop (exponential back-off with full jitter, honouring
``Retry-After`` up to a cap), a bounded number of times. After that the call raises
:class:`~jobwatch.errors.SourceError` and nothing else: the poller turns it into
"stale" and keeps the last runs it knew. Refusals keep their meaning
(409 → :class:`TransitionRefused`, 404 → :class:`RunNotFound`) with the server's
own message, so a refusal reads the same locally and remotely.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import random
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from jobwatch import __version__
from jobwatch.errors import (
    AmbiguousRunId,
    JobwatchError,
    RunNotFound,
    SourceError,
    TransitionRefused,
)
from jobwatch.models import LogLine, RecordError, Run
from jobwatch.redact import clean
from jobwatch.store.health import Backoff
from jobwatch.store.source import ActionResult, ChangeSet, LogBounds

API = "/api/v1"
DEFAULT_PAGE = 1000
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SAFE_AFTER_ANY_METHOD = frozenset({429, 503})
"""Answers that say the request was not processed, so even a POST may be retried."""


class RemoteUnavailable(SourceError):
    """The server asked us to come back later than one call may wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@functools.cache
def default_tls() -> ssl.SSLContext:
    """One verifying TLS context for the process: loading the CA bundle takes tens
    of milliseconds, too long to repeat for every source and reconnect."""
    return httpx.create_ssl_context()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    base = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    return max(0.0, (when - base).total_seconds())


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _short(text: str, limit: int = 300) -> str:
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"bad response: {what} is not a number")
    return value


class HttpSource:
    """A remote jobwatch store, read incrementally by revision."""

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
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.name = name or (parts.netloc or self.url)
        self.read_only = read_only
        self.timeout = timeout
        self.verify = verify
        self.attempts = max(1, attempts)
        self.connect_retries = max(0, connect_retries)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_retry_after = max_retry_after
        self.page = page
        self._token = token
        self._token_loader = token_loader
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._loopback = is_loopback_host(parts.hostname or "")
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"HttpSource({self.name!r}, {self.url!r})"

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Build the client; no request yet, so a server that is down does not
        stop the monitor from starting (the first poll marks it stale)."""
        if self._client is not None:
            return
        token = self._token
        if token is None and self._token_loader is not None:
            try:
                token = self._token_loader()
            except JobwatchError as exc:
                raise SourceError(f"{self.name}: {exc}") from None
        headers = {"User-Agent": f"jobwatch/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: bool | ssl.SSLContext = self.verify if isinstance(self.verify, bool) else True
        if verify is True:
            verify = default_tls()
        if isinstance(self.verify, str):
            try:
                verify = ssl.create_default_context(cafile=self.verify)
            except (OSError, ssl.SSLError) as exc:
                message = f"{self.name}: cannot load CA file {self.verify}: {exc}"
                raise SourceError(message) from None
        transport = httpx.AsyncHTTPTransport(retries=self.connect_retries, verify=verify)
        self._client = httpx.AsyncClient(
            base_url=self.url + API,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
            # Proxies from the environment are for the outside world, never loopback.
            trust_env=not self._loopback,
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> HttpSource:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing ----------------------------------------------------------------

    def _refuse_if_read_only(self, verb: str) -> None:
        if self.read_only:
            raise TransitionRefused(f"cannot {verb}: source {self.name} is read-only")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One API call with bounded retries; returns the decoded JSON body."""
        if self._client is None:
            await self.open()
        assert self._client is not None
        idempotent = method == "GET"
        backoff = Backoff(base=self.retry_base, cap=self.retry_cap, jitter="full", rng=self._rng)
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._client.request(method, path, params=params, json=body)
            except httpx.ConnectError as exc:
                problem = f"cannot connect to {self.url}: {exc or type(exc).__name__}"
            except httpx.TimeoutException as exc:
                problem = (
                    f"{self.url} did not answer within {self.timeout:g}s ({type(exc).__name__})"
                )
                if not idempotent and not isinstance(exc, httpx.ConnectTimeout):
                    raise SourceError(
                        f"{self.name}: {_short(problem)}; the {path} request "
                        "may or may not have been applied"
                    ) from None
            except httpx.RequestError as exc:
                problem = f"connection to {self.url} failed: {exc or type(exc).__name__}"
                if not idempotent:
                    raise SourceError(f"{self.name}: {_short(problem)}") from None
            except httpx.InvalidURL as exc:
                raise SourceError(f"{self.name}: invalid URL: {exc}") from None
            else:
                if response.status_code < 300:
                    return self._decode(response)
                if response.status_code not in _RETRY_STATUSES or (
                    not idempotent and response.status_code not in _SAFE_AFTER_ANY_METHOD
                ):
                    self._raise_for(response)
                problem = f"{self.url} answered {response.status_code}"
                message = self._message(response)
                if message:
                    problem += f": {message}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise RemoteUnavailable(
                        f"{self.name}: {_short(problem)} (asked to retry in {retry_after:.0f}s)",
                        retry_after,
                    )
            if attempt < self.attempts:
                # Retry-After is at most max_retry_after here (checked above).
                await self._sleep(max(backoff.next(), retry_after or 0.0))
        raise RemoteUnavailable(f"{self.name}: {_short(problem)}", None)

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise SourceError(
                f"{self.name}: {self.url} sent a response that is not JSON ({_short(kind, 60)}); "
                "is it a jobwatch server?"
            ) from None

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
        try:
            return Run.model_validate(data)
        except ValidationError as exc:
            raise SourceError(
                f"{self.name}: unreadable run from {self.url}: "
                f"{_short(str(exc.errors()[0].get('msg')))}"
            ) from None

    def _lines(self, data: Any) -> list[LogLine]:
        body = self._shape(data, "lines")
        lines = body["lines"]
        if not isinstance(lines, list):
            raise SourceError(f"{self.name}: unexpected log response from {self.url}")
        try:
            return [LogLine.model_validate(line) for line in lines]
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
        raw_runs, revision = body["runs"], body["revision"]
        if (
            not isinstance(raw_runs, list)
            or isinstance(revision, bool)
            or not isinstance(revision, int | str)
        ):
            raise SourceError(f"{self.name}: unexpected runs page from {self.url}")
        runs: list[Run] = []
        errors: list[RecordError] = []
        for item in raw_runs:
            try:
                runs.append(Run.model_validate(item))
            except ValidationError as exc:
                run_id = item.get("id") if isinstance(item, dict) else None
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "record"
                errors.append(
                    RecordError(
                        source=self.name,
                        id=str(run_id) if run_id is not None else None,
                        message=_short(f"unreadable record: {where}: {first.get('msg')}"),
                        raw=_short(str(item), 500),
                    )
                )
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                errors.append(
                    RecordError(
                        source=_short(str(item.get("source") or self.name), 100),
                        id=_short(str(item["id"]), 200) if item.get("id") is not None else None,
                        message=_short(str(item.get("message") or "unreadable record")),
                    )
                )
        return ChangeSet(runs=runs, cursor=revision, errors=errors, more=bool(body["more"]))

    async def get(self, run_id: str) -> Run:
        return self._run(await self._request("GET", self._path(run_id)))

    async def log_bounds(self, run_id: str) -> LogBounds:
        body = self._shape(
            await self._request("GET", self._path(run_id, "logs", "bounds")), "first", "last"
        )
        return LogBounds(_int(body["first"], "first"), _int(body["last"], "last"))

    async def log_lines(self, run_id: str, after: int = 0, limit: int = 500) -> list[LogLine]:
        params = {"after": after, "limit": limit}
        return self._lines(await self._request("GET", self._path(run_id, "logs"), params=params))

    async def log_tail(self, run_id: str, count: int) -> list[LogLine]:
        if count <= 0:
            return []
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

    async def _act(self, verb: str, run_id: str, body: dict[str, Any] | None) -> ActionResult:
        self._refuse_if_read_only(verb)
        data = self._shape(
            await self._request("POST", self._path(run_id, verb), body=body), "run", "message"
        )
        return ActionResult(self._run(data["run"]), _short(str(data["message"])))

    async def abort(self, run_id: str, by: str) -> ActionResult:
        return await self._act("abort", run_id, {"by": by})

    async def archive(self, run_id: str) -> ActionResult:
        return await self._act("archive", run_id, None)

    async def unarchive(self, run_id: str) -> ActionResult:
        return await self._act("unarchive", run_id, None)

    async def health(self) -> dict[str, Any]:
        """The server's own health answer (no token needed)."""
        return self._shape(await self._request("GET", "/health"), "ok")
