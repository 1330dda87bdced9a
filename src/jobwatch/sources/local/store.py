"""The embedded store: runs and their log lines in one SQLite file (WAL mode).

Split by concern: :mod:`.db` (connection, schema, locking), :mod:`.runs` (reading,
writing and acting on runs), :mod:`.logs`, :mod:`.reaper` (lost runs) and
:mod:`.flags` (local archive flags for vendor runs).
"""

from __future__ import annotations

from typing import ClassVar

from jobwatch.core.rules import BASIC_ACTIONS, Action, Capabilities
from jobwatch.sources.local.commands import CommandsMixin
from jobwatch.sources.local.db import LOST_AFTER_S, exposure_warning, parse_cursor
from jobwatch.sources.local.flags import FlagsMixin
from jobwatch.sources.local.live import LiveMixin
from jobwatch.sources.local.logs import LogsMixin
from jobwatch.sources.local.reaper import ReaperMixin
from jobwatch.sources.local.triage import TriageMixin
from jobwatch.sources.local.window import WindowMixin

__all__ = ["LOST_AFTER_S", "SqliteStore", "parse_cursor"]


class SqliteStore(
    CommandsMixin, ReaperMixin, WindowMixin, TriageMixin, LogsMixin, FlagsMixin, LiveMixin
):
    """A :class:`~jobwatch.sources.protocol.Source` over a local SQLite file."""

    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "A run started by `jobwatch run` gets SIGTERM on its whole process group, "
            "then SIGKILL after its grace period; a run nobody owns any more is "
            "marked aborted."
        ),
        rows=True,
        first_rows=True,
        query=True,
        window=True,
        actions=BASIC_ACTIONS | {Action.RERUN},
        rerun_effect=(
            "`jobwatch run` starts the same command line again in the same working "
            "directory (with this environment), detached: it goes on if you quit. "
            "The new run is linked to this one (rerun_of)."
        ),
    )

    def notices(self) -> list[str]:
        warning = exposure_warning(self.path)
        return [warning] if warning else []
