"""A plain, refreshing listing for terminals where the monitor is not available.

It polls the store by revision like the monitor does (only changed runs are read
after the first sync) and redraws a compact table of the newest runs.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from jobwatch import render
from jobwatch.models import Run
from jobwatch.store import SqliteStore

_CLEAR = "\x1b[H\x1b[2J"


async def live_listing(store_path: Path, *, refresh: float = 1.0) -> int:
    runs: dict[str, Run] = {}
    cursor: int | str | None = None
    async with SqliteStore(store_path, create=False) as store:
        while True:
            changes = await store.changes(cursor)
            cursor = changes.cursor
            for run in changes.runs:
                runs[run.id] = run
            size = shutil.get_terminal_size((100, 30))
            shown = sorted(
                (r for r in runs.values() if not r.archived),
                key=lambda r: (
                    not r.status.is_active,
                    -(r.created_at or r.started_at).timestamp()
                    if (r.created_at or r.started_at)
                    else 0,
                ),
            )[: max(1, size.lines - 3)]
            text = render.table(
                render.LIST_HEADERS,
                render.list_rows(shown, human=True),
                max_width=max(12, size.columns // 5),
            )
            head = f"jobwatch — {store_path} — {len(runs)} runs — Ctrl-C to quit"
            sys.stdout.write(_CLEAR + head[: size.columns] + "\n" + text + "\n")
            sys.stdout.flush()
            await asyncio.sleep(refresh)
