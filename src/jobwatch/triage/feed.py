"""Filling the triage index from the poller's sources, for every front end.

A store (``capabilities.window``) hands over its jobs' recent history and the
window's failures itself (:meth:`Source.triage_rows`: one query each), so the
monitor never loads the history for it. Any other source's rows reach the index
through the poller's sink, which the front end points at :meth:`TriageIndex.apply`
(the monitor's sink and the CLI's poll both do); for those, "seen before the
window" is what the index has seen so far.

The fill runs after the poller's first poll of a windowed feed (which starts at
the store's head): whatever changes in between is read by both, and applying a
row twice is harmless, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from jobwatch.core.row import RunRow
from jobwatch.sources.poller import Feed
from jobwatch.sources.protocol import Source, relabel
from jobwatch.triage.index import Touched, TriageIndex

CHUNK = 2000
"""Rows applied between two yields to the event loop: a fill of 100k rows takes
about a second, which a monitor must not spend frozen."""


def source_kind(source: Source) -> str:
    """A vendor's ``KIND``, else the class (``SqliteStore`` -> ``sqlite``)."""
    kind = getattr(source, "KIND", "") or type(source).__name__
    return str(kind).lower().removesuffix("store").removesuffix("source") or "source"


def kinds_of(feeds: Iterable[Feed]) -> dict[str, str]:
    """Row source -> source kind, for the signatures: rows of several sources carry
    their configured name; one source's rows carry what the runs say."""
    return {feed.label: source_kind(feed.source) for feed in feeds if feed.label}


def know_kinds(index: TriageIndex, feeds: list[Feed]) -> None:
    """Tell ``index`` each row's source kind: several sources stamp their rows with
    their names; one source's rows are all of its kind, whatever they say."""
    index.kinds.update(kinds_of(feeds))
    if len(feeds) == 1:
        index.default_kind = source_kind(feeds[0].source)


def fills_itself(feed: Feed) -> bool:
    return bool(feed.source.capabilities.window)


async def fill(index: TriageIndex, feed: Feed, since: float) -> bool:
    """Fill ``index`` from ``feed``'s store; ``False`` if it cannot (then the rows
    the poller reads feed the index)."""
    got = await feed.source.triage_rows(per_job=index.history, since=since)
    if got is None:
        return False
    if feed.label is not None:
        relabel(got.rows, feed.label)
    await apply_chunked(index, got.rows)
    name = feed.label
    for at in range(0, len(got.before), CHUNK):
        index.seen_before(
            (index.signature_of_parts(name or source, problem, message), first)
            for source, problem, message, first in got.before[at : at + CHUNK]
        )
        await asyncio.sleep(0)
    return True


async def apply_chunked(index: TriageIndex, rows: list[RunRow]) -> Touched:
    """:meth:`TriageIndex.apply` in chunks, yielding to the event loop between them."""
    touched = Touched()
    for at in range(0, len(rows), CHUNK):
        touched.update(index.apply(rows[at : at + CHUNK]))
        if at + CHUNK < len(rows):
            await asyncio.sleep(0)
    return touched
