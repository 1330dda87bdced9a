"""Serve any ASGI app on 127.0.0.1 in a thread, for tests that need a real server,
and record what the stand-ins were asked."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


@dataclass
class Seen:
    """One request as a stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    """Every query parameter in order, repeated ones included."""

    @classmethod
    def of(cls, request: Any, body: Any = None) -> Seen:
        """What a Starlette ``request`` asked (``body``: its decoded body, if kept)."""
        return cls(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            list(request.query_params.multi_items()),
        )

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        return next((v for k, v in self.pairs if k == name), None)


class AsgiServer:
    """uvicorn on a loopback port (a free one unless ``port`` is given), started and
    stopped by the test; after :meth:`stop` it starts again on the same port."""

    def __init__(
        self,
        app: Any = None,
        *,
        port: int = 0,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
    ) -> None:
        self.app = app
        self.port = port
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def serving_app(self) -> AsyncIterator[Any]:
        """The app to serve, opened and closed in the server's own event loop;
        override to open what the app needs there."""
        yield self.app

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(sock),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while self._server is None or not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.01)
        return self

    async def _serve(self, sock: socket.socket) -> None:
        import uvicorn

        async with self.serving_app() as app:
            config = uvicorn.Config(
                app,
                lifespan="off",
                log_level="error",
                access_log=False,
                ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile,
            )
            self._server = uvicorn.Server(config)
            await self._server.serve([sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "stand-in server did not stop"
        self._server = self._thread = None


@contextmanager
def serving(app: Any) -> Iterator[AsgiServer]:
    server = AsgiServer(app).start()
    try:
        yield server
    finally:
        server.stop()
