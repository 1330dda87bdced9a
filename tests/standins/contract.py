"""What each kind of source gives the shared contract suite: a small factory.

``tests/integration/test_source_contract.py`` runs one set of checks against every
source: the local store, ``jobwatch serve`` and each vendor adapter against its
stand-in. It knows nothing of any system: an :class:`Upstream` seeds runs in the
system's own words, changes one upstream, plants a malformed record, gives a run
a log, builds the source the way a config file does, and says what the system
saw. A vendor's factory lives next to its stand-in (``Contract`` in
``standins/<kind>.py``, on :class:`VendorUpstream`); the suite names it in one
line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from jobwatch.core import Status
from jobwatch.sources.protocol import Source
from jobwatch.sources.vendors import adapter
from jobwatch.sources.vendors.base import VendorConfig
from standins.base import StandIn
from standins.server import AsgiServer, serving


@dataclass(frozen=True)
class Seeded:
    """A run as the factory put it upstream."""

    id: str
    status: Status
    raw: str
    """Its raw status, as the system wrote it."""


def word(kind: str, status: Status) -> str:
    """A vendor's own raw word for ``status`` (the first its adapter lists)."""
    return next(raw for raw, mapped in adapter(kind).STATUS_MAP.items() if mapped is status)


class Upstream:
    """One kind of source and the system behind it, for the contract suite.

    Use as ``async with Factory(tmp_path) as up``; every method is async so a
    factory may write a store file as well as edit a stand-in's records.
    """

    name: ClassVar[str] = ""
    """The source's name in the config."""
    active: ClassVar[Status] = Status.RUNNING
    """The status of the active runs it seeds: one the system can stop."""
    has_logs: ClassVar[bool] = True
    """Whether its runs have logs (else the source shows its declared note)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def seed(self, status: Status) -> Seeded:
        """One run of ``status``, created after every run seeded before."""
        raise NotImplementedError

    async def change(self, run: Seeded) -> Seeded:
        """Finish the active ``run`` upstream (it succeeds); the run as it is now."""
        raise NotImplementedError

    async def malform(self) -> str | None:
        """Plant a record the source cannot read; its id, if it has a readable one."""
        raise NotImplementedError

    async def seed_log(self, run: Seeded) -> str:
        """Give the finished ``run`` a log of a few lines, one of them an error and
        at least one holding the word returned (for search)."""
        raise NotImplementedError

    async def aborted(self, run: Seeded) -> bool:
        """Whether the system itself has ``run`` stopped now."""
        raise NotImplementedError

    def build(self, *, read_only: bool = False, **settings: Any) -> Source:
        """The source, not opened, built as its config file would build it."""
        raise NotImplementedError

    def requests(self) -> int | None:
        """How many requests the system has received (``None``: it cannot tell)."""
        return None

    def writes(self) -> list[tuple[str, str]] | None:
        """Every request that may have changed something, as (method, path)."""
        return None

    def abort_call(self, run: Seeded) -> tuple[str, str] | None:
        """The request that stops ``run`` in this system."""
        return None

    def archive_calls(self, run: Seeded) -> list[tuple[str, str]] | None:
        """The requests archiving ``run`` makes (none where the flag is local)."""
        return None


class VendorUpstream(Upstream):
    """A vendor adapter against its stand-in, served on 127.0.0.1 for the test."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.kind  # the source is named after its kind

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.standin = self.make_standin()
        self._serving = contextlib.ExitStack()
        self.server: AsgiServer | None = None

    async def __aenter__(self) -> Self:
        self.server = self._serving.enter_context(serving(self.standin.app))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._serving.close()

    @property
    def url(self) -> str:
        assert self.server is not None, "use the factory as `async with`"
        return self.server.url

    def make_standin(self) -> StandIn:
        raise NotImplementedError

    def config(self, **common: Any) -> VendorConfig:
        """The vendor's config; ``common`` holds url, token, flags_store and more."""
        raise NotImplementedError

    def build(self, *, read_only: bool = False, **settings: Any) -> Source:
        common = {"url": self.url, "flags_store": self.tmp / "flags.db", **settings}
        return self.config(**common).build(self.name, read_only=read_only)

    def word(self, status: Status) -> str:
        return word(self.kind, status)

    def requests(self) -> int:
        return len(self.standin.requests)

    def writes(self) -> list[tuple[str, str]]:
        return [(seen.method, seen.path) for seen in self.standin.writes()]

    def archive_calls(self, run: Seeded) -> list[tuple[str, str]]:
        return []  # jobwatch keeps the flag: the system is not asked
