"""One careful HTTP client for every remote source: ``jobwatch serve`` and the vendors.

Every call has a timeout; connection failures are retried by httpx's transport,
and 429/5xx answers by our own loop (exponential back-off with full jitter,
honouring ``Retry-After`` up to a cap), a bounded number of times. Only requests
that are safe to repeat are repeated: a GET, or any request the server said it
did not process (429, 503). After that a call raises
:class:`~jobwatch.core.errors.SourceError` and nothing else, so the poller can mark the
source stale and keep the runs it knew. What a non-retryable answer means (a
refusal, a missing run) is for the caller to say: the client hands it back.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from jobwatch import __version__
from jobwatch.core.errors import SourceError
from jobwatch.core.redact import clean
from jobwatch.sources.health import Backoff

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_AFTER_ANY_METHOD = frozenset({429, 503})
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


def short(text: str, limit: int = 300) -> str:
    """Outside text made safe for one line of a status bar or an error message."""
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_message(response: httpx.Response) -> str:
    """The message a JSON error body carries, in the shapes APIs commonly use."""
    try:
        data = response.json()
    except ValueError:
        return short(response.text, 200) if response.text.strip() else ""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # a list of error objects: the first one speaks
    if isinstance(data, dict):
        for key in ("message", "detail", "error_description", "error", "title"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return short(value)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return short(value["message"])
    return ""


class ApiClient:
    """An ``httpx.AsyncClient`` with bounded, polite retries.

    ``headers`` is a callable so a token is read when the client opens (a rotated
    token file is picked up by the next reconnect, a missing variable only fails
    this source) and never stored in a ``repr``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        headers: Callable[[], Mapping[str, str]] | None = None,
        verify: bool | str = True,
        timeout: float = 10.0,
        attempts: int = 3,
        connect_retries: int = 1,
        retry_base: float = 0.25,
        retry_cap: float = 2.0,
        max_retry_after: float = 5.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.verify = verify
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.connect_retries = max(0, connect_retries)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_retry_after = max_retry_after
        self._headers = headers
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._loopback = is_loopback_host(urlsplit(self.base_url).hostname or "")
        self._client: httpx.AsyncClient | None = None
        self.calls = 0
        """Requests sent, retries included: what tests and benchmarks count."""

    def __repr__(self) -> str:  # never shows a token
        return f"ApiClient({self.name!r}, {self.base_url!r})"

    @property
    def is_open(self) -> bool:
        return self._client is not None

    async def open(self) -> None:
        """Build the client; no request yet, so a server that is down does not stop
        the monitor from starting (the first poll marks it stale)."""
        if self._client is not None:
            return
        headers = {"User-Agent": f"jobwatch/{__version__}", "Accept": "application/json"}
        if self._headers is not None:
            try:
                headers.update(self._headers())
            except SourceError:
                raise
            except Exception as exc:  # a config problem: missing env var, unreadable file
                raise SourceError(f"{self.name}: {exc}") from None
        verify: bool | ssl.SSLContext = self.verify if isinstance(self.verify, bool) else True
        if verify is True and urlsplit(self.base_url).scheme == "http":
            # Plain HTTP never uses it: loading the CA bundle cost the monitor's
            # first paint 20-30 ms (measured). Without CAs, TLS fails closed.
            verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        elif verify is True:
            verify = default_tls()
        if isinstance(self.verify, str):
            try:
                verify = ssl.create_default_context(cafile=self.verify)
            except (OSError, ssl.SSLError) as exc:
                message = f"{self.name}: cannot load CA file {self.verify}: {exc}"
                raise SourceError(message) from None
        transport = httpx.AsyncHTTPTransport(retries=self.connect_retries, verify=verify)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
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

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        describe: Callable[[httpx.Response], str] = error_message,
    ) -> httpx.Response:
        """Send one request, retrying what is safe to retry.

        Returns any answer below 300 and every answer that is not worth retrying
        (4xx, a 500 to a POST); raises :class:`SourceError` when the server could
        not be reached or kept failing. ``url`` may be absolute (a next-page link).
        """
        if self._client is None:
            await self.open()
        assert self._client is not None
        idempotent = method.upper() in ("GET", "HEAD")
        backoff = Backoff(base=self.retry_base, cap=self.retry_cap, jitter="full", rng=self._rng)
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            self.calls += 1
            try:
                response = await self._client.request(
                    method, url, params=params, json=json, headers=headers
                )
            except httpx.ConnectError as exc:
                problem = f"cannot connect to {self.base_url}: {exc or type(exc).__name__}"
            except httpx.TimeoutException as exc:
                problem = (
                    f"{self.base_url} did not answer within {self.timeout:g}s "
                    f"({type(exc).__name__})"
                )
                if not idempotent and not isinstance(exc, httpx.ConnectTimeout):
                    raise SourceError(
                        f"{self.name}: {short(problem)}; the request may or may not "
                        "have been applied"
                    ) from None
            except httpx.InvalidURL as exc:
                raise SourceError(f"{self.name}: invalid URL: {exc}") from None
            except httpx.RequestError as exc:
                problem = f"connection to {self.base_url} failed: {exc or type(exc).__name__}"
                if not idempotent:
                    raise SourceError(f"{self.name}: {short(problem)}") from None
            else:
                status = response.status_code
                if status < 300 or status not in RETRY_STATUSES:
                    return response
                if not idempotent and status not in SAFE_AFTER_ANY_METHOD:
                    return response
                problem = f"{self.base_url} answered {status}"
                message = describe(response)
                if message:
                    problem += f": {message}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise RemoteUnavailable(
                        f"{self.name}: {short(problem)} (asked to retry in {retry_after:.0f}s)",
                        retry_after,
                    )
            if attempt < self.attempts:
                # Retry-After is at most max_retry_after here (checked above).
                await self._sleep(max(backoff.next(), retry_after or 0.0))
        raise RemoteUnavailable(f"{self.name}: {short(problem)}", None)

    async def json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """:meth:`request` for APIs that answer JSON: 2xx decoded (204 → ``None``),
        anything else a :class:`SourceError` carrying the server's message."""
        response = await self.request(method, url, params=params, json=json, headers=headers)
        if response.status_code >= 300:
            raise SourceError(
                f"{self.name}: {self.base_url} answered {response.status_code}"
                + (f": {m}" if (m := error_message(response)) else "")
            )
        return decode_json(response, self.name)


def decode_json(response: httpx.Response, name: str) -> Any:
    """The JSON body of a 2xx answer; ``None`` for an empty one."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise SourceError(
            f"{name}: {response.request.url.host} sent a response that is not JSON "
            f"({short(kind, 60)})"
        ) from None
