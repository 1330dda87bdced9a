"""Local flags for runs kept elsewhere: a vendor run archived in jobwatch only."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from jobwatch.sources.local.db import Database


class FlagsMixin(Database):
    async def local_archived(self, source: str) -> set[str]:
        """Ids of ``source``'s runs archived locally (the system has no archive)."""
        if self.schema_version < 2:  # an older store read as it is: no flags yet
            return set()
        rows = await self._fetchall("SELECT run_id FROM remote_flags WHERE source = ?", (source,))
        return {row[0] for row in rows}

    async def set_local_archived(self, source: str, run_id: str, archived: bool) -> None:
        """Flag (or unflag) a remote run as archived; refused in read-only mode."""
        self._refuse_if_read_only("archive" if archived else "unarchive")

        async def body() -> None:
            if archived:
                await self._conn.execute(
                    "INSERT OR REPLACE INTO remote_flags (source, run_id, archived_at) "
                    "VALUES (?, ?, ?)",
                    (source, run_id, time.time()),
                )
            else:
                await self._conn.execute(
                    "DELETE FROM remote_flags WHERE source = ? AND run_id = ?", (source, run_id)
                )

        await self._transaction(body)
