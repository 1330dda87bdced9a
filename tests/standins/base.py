"""What every stand-in server shares: its state, the request log, and faults.

A stand-in is a :class:`StandIn` subclass holding the system's records as plain
mutable data (a test changes them between polls) and declaring its routes. Every
request goes the same way through :meth:`StandIn.app`:

1. it is recorded (:class:`~standins.server.Seen`: method, path, query, headers,
   decoded body);
2. the first armed :class:`Fault` that matches answers instead of the system: a
   status in the system's own error body (with ``Retry-After`` if asked), a
   malformed body, or a slow answer;
3. :meth:`StandIn.gate` checks what the system checks before routing (the token,
   the workspace in the path…);
4. the handler answers, with the documented payload.

So throttling, outages and garbage are switched on the same way for every
system (``standin.throttle()``, ``standin.fault(500)``, ``standin.garble()``,
``standin.slow(2.0)``), while each subclass keeps its own quirks and variants.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from standins.server import Seen

Handler = Callable[[Request], Awaitable[Response]]

GARBAGE = {
    "html": ("text/html", b"<html><body>Service temporarily unavailable</body></html>"),
    "truncated": ("application/json", b'{"records": [{"id": "cut-off'),
    "shape": ("application/json", b'{"unexpected": 5}'),
}
"""Bodies a broken proxy or a half-deployed server sends with a 200."""


@dataclass
class Fault:
    """One way the server misbehaves, for the next ``times`` matching requests
    (``None``: until :meth:`StandIn.clear_faults`)."""

    status: int | None = None
    """Answer this status, in the system's own error body."""
    message: str = "injected fault"
    retry_after: str | None = None
    garbage: str | None = None
    """Answer 200 with one of :data:`GARBAGE` (``html``, ``truncated``, ``shape``)."""
    delay: float = 0.0
    """Answer this many seconds late (the server being slow, not the test waiting)."""
    times: int | None = 1
    method: str | None = None
    path: str | None = None
    """Only requests whose path contains this."""
    query: str | None = None
    """Only requests whose decoded query string contains this (one SOQL object)."""
    hits: int = 0

    def matches(self, request: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and request.method != self.method:
            return False
        if self.query is not None and self.query not in str(request.query_params):
            return False
        return self.path is None or self.path in request.url.path


@dataclass(eq=False)
class StandIn:
    """Base of the stand-ins; subclasses declare :meth:`routes` and :meth:`error`."""

    requests: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    UNAUTHORIZED = "Unauthorized"
    """What the system says to a wrong token (subclasses use their own words)."""
    THROTTLED = "Too many requests"
    """What it says with a 429."""

    # -- what a subclass declares ------------------------------------------------------

    def routes(self) -> Sequence[Route]:
        raise NotImplementedError

    def error(self, request: Request, status: int, message: str) -> Response:
        """The system's own error body for ``status``."""
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def gate(self, request: Request) -> Response | None:
        """What the system checks before any route answers; the token by default."""
        if self.authorized(request):
            return None
        return self.error(request, 401, self.UNAUTHORIZED)

    def route(self, path: str, handler: Handler, methods: Sequence[str] = ("GET",)) -> Route:
        """A route whose requests go through the log, the faults and the gate."""
        return Route(path, self._guarded(handler), methods=list(methods))

    # -- the app ---------------------------------------------------------------------

    @cached_property
    def app(self) -> Starlette:
        return Starlette(routes=list(self.routes()))

    def _guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()  # kept by Starlette: the handler reads it again
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            self.requests.append(Seen.of(request, body))
            answer = await self._fault(request)
            if answer is None:
                answer = self.gate(request)
            return answer if answer is not None else await handler(request)

        return endpoint

    async def _fault(self, request: Request) -> Response | None:
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is None:
            return None
        fault.hits += 1
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.garbage is not None:
            kind, content = GARBAGE[fault.garbage]
            return Response(content, 200, media_type=kind)
        if fault.status is None:
            return None  # only slow: the system still answers
        response = self.error(request, fault.status, fault.message)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    # -- switches for tests --------------------------------------------------------------

    def fault(self, status: int | None = None, message: str | None = None, **how: Any) -> Fault:
        """Arm a fault (see :class:`Fault`); returns it, so a test can read ``hits``."""
        fault = Fault(status=status, **how)
        if message is not None:
            fault.message = message
        elif status is not None:
            fault.message = HTTPStatus(status).phrase
        self.faults.append(fault)
        return fault

    def throttle(self, times: int | None = 1, retry_after: str = "0", **how: Any) -> Fault:
        """Answer 429 "too many requests" with ``Retry-After``."""
        return self.fault(429, self.THROTTLED, times=times, retry_after=retry_after, **how)

    def garble(self, garbage: str = "html", **how: Any) -> Fault:
        return self.fault(garbage=garbage, **how)

    def slow(self, seconds: float, **how: Any) -> Fault:
        return self.fault(delay=seconds, **how)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- what the stand-in saw -----------------------------------------------------------

    def seen(self, path: str, method: str = "GET") -> list[Seen]:
        """Requests for exactly ``path``."""
        return [s for s in self.requests if s.path == path and s.method == method]

    def calls(self, method: str = "GET", contains: str = "") -> list[Seen]:
        """Requests with ``method`` whose path contains ``contains``."""
        return [s for s in self.requests if s.method == method and contains in s.path]

    def writes(self) -> list[Seen]:
        """Every request that may change something (anything but a read)."""
        return [s for s in self.requests if s.method not in ("GET", "HEAD")]
