"""The far-jump probe of ``bench_store.py --jump`` and ``bench_postgres.py --jump``:
what a window read costs at a far position of a big store, by start and by status.

Each jump is timed key first (``window_sql.read_rows``: the key of the row before
the page from the sort's index, then the page by keyset) and, in the same process
on the same store, by plain ``LIMIT ? OFFSET ?`` (``JUMP_FROM`` set out of reach),
so the two can be told apart from what the schema's indexes do. Every pair is also
checked to return the same rows (printed, never asserted). Code without the key
first path (no ``JUMP_FROM``) is timed by offset only, so the same script measures
the code as it was before.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from jobwatch.sources import window_sql
from jobwatch.sources.protocol import WindowView

Say = Callable[[str, float, str], None]
SORTS = ("started", "status", "changed", "duration")
"""The sorts with an index for far jumps (``window_sql.KEYED``)."""
PAGE = 3000
"""Rows the monitor's window reads at a jump (``WindowedRunSet.cap``)."""


async def _best(op: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = await op()
        best = min(best, (time.perf_counter() - began) * 1e3)
    return best, result


async def jump_probe(
    store: Any,
    total: int,
    say: Say,
    *,
    repeats: int = 3,
    label: str = "",
    sorts: tuple[str, ...] = SORTS,
) -> None:
    """Jumps to the middle (forwards and counted from the end) and the last page, by
    each of ``sorts``: best of ``repeats`` each, key first and by offset;
    ``label`` goes after each figure's sort."""
    shown = await store.window_count(WindowView())  # not archived
    middle, far = total // 2, shown * 9 // 10
    probes: list[tuple[str, dict[str, Any]]] = [
        (f"offset {middle:,}, {PAGE:,} rows", {"offset": middle, "limit": PAGE}),
        (f"offset {middle:,}, 1 row", {"offset": middle, "limit": 1}),
        (
            f"offset {middle:,} from the end, {PAGE:,} rows",
            {"offset": middle, "limit": PAGE, "from_end": True},
        ),
        (f"the last {PAGE:,} rows", {"limit": PAGE, "from_end": True}),
        # a jump to 90 %: what the monitor read before it counted from the nearer end,
        # and what it reads now
        (f"offset {far:,} (90 % of {shown:,}), {PAGE:,} rows", {"offset": far, "limit": PAGE}),
        (
            f"the same rows, offset {shown - far - PAGE:,} from the end",
            {"offset": shown - far - PAGE, "limit": PAGE, "from_end": True},
        ),
    ]
    keyed = hasattr(window_sql, "JUMP_FROM")
    for sort in sorts:
        view = WindowView(sort=sort)
        head = f"jump sort={sort}{label}"
        for name, kw in probes:

            async def read(kw: dict[str, Any] = kw, view: WindowView = view) -> list[Any]:
                return list(await store.window_rows(view, **kw))

            plain_rows = None
            if keyed:
                elapsed, rows = await _best(read, repeats)
                say(f"{head}: {name}, key first", elapsed, f"ms (best of {repeats})")
                saved = window_sql.JUMP_FROM
                window_sql.JUMP_FROM = 1 << 62
                try:
                    elapsed, plain_rows = await _best(read, repeats)
                finally:
                    window_sql.JUMP_FROM = saved
                same = [r.key for r in rows] == [r.key for r in plain_rows]
                say(
                    f"{head}: {name}, by OFFSET",
                    elapsed,
                    f"ms (best of {repeats}; same rows as key first: {same})",
                )
            else:
                elapsed, _ = await _best(read, repeats)
                say(f"{head}: {name}, by OFFSET", elapsed, f"ms (best of {repeats})")
