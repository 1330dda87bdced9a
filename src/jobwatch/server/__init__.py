"""``jobwatch serve``: the HTTP API over a store (optional extra ``jobwatch[server]``).

Nothing here is imported by the core: the CLI imports :mod:`jobwatch.server.main`
only for the ``serve`` verb, so jobwatch works without FastAPI and uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwatch.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``from jobwatch.server import create_app`` without importing FastAPI early."""
    if name == "create_app":
        from jobwatch.server.app import create_app

        return create_app
    raise AttributeError(name)
