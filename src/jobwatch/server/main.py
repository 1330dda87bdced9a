"""Running the API with uvicorn: safe binding, the token, and a clean shutdown.

The listening socket is bound here, before uvicorn starts, so that ``--port 0``
works (the real port is printed) and a bad address is one clear line instead of
a logged traceback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from jobwatch.config import TOKEN_ENV, read_token_file, readable_by_others
from jobwatch.core.errors import JobwatchError
from jobwatch.server.app import create_app
from jobwatch.sources.protocol import Source

MIN_TOKEN_LENGTH = 16


def addresses(host: str) -> list[str]:
    """Every address ``host`` stands for (a name may resolve to several)."""
    host = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise JobwatchError(f"cannot resolve --host {host!r}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def is_loopback(host: str) -> bool:
    """True only when every address of ``host`` is a loopback address."""
    found = addresses(host)
    return bool(found) and all(ipaddress.ip_address(a).is_loopback for a in found)


def load_token(token_file: Path | None) -> tuple[str | None, list[str]]:
    """The token from ``--token-file`` or ``$JOBWATCH_TOKEN`` (never argv), and
    warnings about how it is kept."""
    warnings: list[str] = []
    token: str | None
    if token_file is not None:
        token = read_token_file(token_file)
        if readable_by_others(token_file):
            warnings.append(
                f"token file {token_file} is readable by other users; chmod 600 {token_file}"
            )
    else:
        token = os.environ.get(TOKEN_ENV, "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        warnings.append(
            f"the token is short ({len(token)} characters); use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. `openssl rand -hex 32`"
        )
    return token, warnings


def check_bind(host: str, token: str | None, tls: bool) -> list[str]:
    """Refuse to expose runs beyond this machine without a token; warn about
    plain HTTP off loopback (the token would travel in clear)."""
    if is_loopback(host):
        return []
    if not token:
        raise JobwatchError(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            f"read and abort runs. Set {TOKEN_ENV} or pass --token-file FILE "
            "(or keep --host 127.0.0.1)"
        )
    if not tls:
        return [
            f"serving {host} over plain HTTP: the token and the runs travel unencrypted; "
            "use --tls-cert/--tls-key or put a TLS proxy in front"
        ]
    return []


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise JobwatchError(f"cannot resolve --host {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise JobwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def public_url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def build_server(
    source: Source,
    *,
    token: str | None,
    read_only: bool,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    access_log: bool = False,
    log_level: str = "warning",
) -> uvicorn.Server:
    """A uvicorn server for an opened ``source``; start it with ``serve(sockets=[…])``."""
    app = create_app(source, token=token, read_only=read_only)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    return uvicorn.Server(config)


class _Stop(Exception):
    """Raised from SIGTERM once uvicorn has shut down, so the store is closed."""


def _on_term(_sig: int, _frame: FrameType | None) -> None:
    raise _Stop()


async def serve(
    source: Source,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str | None = None,
    read_only: bool = False,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    access_log: bool = False,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Open ``source``, serve it until SIGINT/SIGTERM, close it. Returns 0."""
    if (tls_cert is None) != (tls_key is None):
        raise JobwatchError("give both --tls-cert and --tls-key, or neither")
    tls = tls_cert is not None
    warnings = check_bind(host, token, tls)
    sock = bind(host, port)
    try:
        await source.open()
        try:
            server = build_server(
                source,
                token=token,
                read_only=read_only,
                tls_cert=tls_cert,
                tls_key=tls_key,
                access_log=access_log,
            )
            say = announce or (lambda text: print(text, file=sys.stderr, flush=True))
            for warning in warnings:
                say(f"jobwatch serve: warning: {warning}")
            if token is None:
                say(
                    "jobwatch serve: no token: anyone on this machine can read and abort runs "
                    f"(set {TOKEN_ENV} or --token-file)"
                )
            mode = " read-only" if read_only else ""
            say(
                f"jobwatch serve: listening on {public_url(sock, tls)}/api/v1 "
                f"(source {source.name}{mode}{', token required' if token else ''})"
            )
            # uvicorn re-raises SIGTERM after its graceful shutdown: make that an
            # exception here so the store below is closed rather than the process killed.
            previous = signal.getsignal(signal.SIGTERM) if _main_thread() else None
            if previous is not None:
                signal.signal(signal.SIGTERM, _on_term)
            try:
                await server.serve(sockets=[sock])
            except _Stop:
                pass
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        finally:
            await asyncio.shield(source.close())
    finally:
        sock.close()
    return 0


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
