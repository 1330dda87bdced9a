"""Lost runs, for both stores (SQLite and PostgreSQL): the verdict on a managed run
whose owner died or went silent, and what a store that writes nothing shows
instead of writing it.

Each store decides *whether* a run is lost its own way (a dead pid on this host;
a host silent for ``lost_after`` on the server's clock); what the verdict looks
like, and how a read-only store shows it without storing it, is said once here,
so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobwatch import core as models
from jobwatch.core import RunRow, Status
from jobwatch.sources.protocol import StatusCounts
from jobwatch.sources.table_rows import REVISION_AT, row_record

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run

LOST = "lost"
"""Reason type of a run marked (or shown) lost; its status is ``unknown``."""
KNOWN_AFTER_S = 1.0
"""A lost run whose last heartbeat is closer than this to its start never reported
after starting: its duration is unknown, not zero."""
_CREATED_AT = 6
"""Where ``created_at`` is in a table-row record (``ROW_COLUMNS``)."""


def is_lost(run: Run) -> bool:
    """Whether ``run`` carries the lost verdict (so a live owner may take it back)."""
    return run.status is Status.UNKNOWN and run.reason is not None and run.reason.type == LOST


def lost_verdict(run: Run, beat: float, why: str) -> Run:
    """``run`` marked lost; it ended, as far as anyone knows, at its last heartbeat
    (``beat``, epoch seconds). ``why`` says what was noticed."""
    reason = models.Reason(type=LOST, message=f"lost: {why}")
    started = run.started_at.timestamp() if run.started_at else None
    if started is not None and beat - started < KNOWN_AFTER_S:
        # No sign of life after the start: how long it ran is unknown, not zero.
        return run.evolve(status=Status.UNKNOWN, ended_at=None, reason=reason)
    ended = datetime.fromtimestamp(beat, UTC)
    return run.evolve(status=Status.UNKNOWN, ended_at=ended, reason=reason)


class ShownLost:
    """The lost verdicts a store shows but does not write (a read-only open, a
    role that may not write): run id -> (the revision the verdict was made on, the
    run as shown). A verdict holds only while the stored run keeps that revision:
    any write since (a heartbeat taking it back, its end) is the truth again.

    A shown state changes without a new revision, so the poller would never learn
    of it: the ids whose shown state changed are kept as *unsent*, and the next
    poll reads and sends them once (:meth:`take_unsent`)."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[int, Run]] = {}
        self.unsent: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.runs)

    @property
    def ids(self) -> list[str]:
        return list(self.runs)

    def by_status(self) -> dict[str, list[str]]:
        """The ids shown, by the status word shown (for a windowed filter's SQL)."""
        out: dict[str, list[str]] = {}
        for run_id, (_, run) in self.runs.items():
            out.setdefault(run.status.value, []).append(run_id)
        return out

    def replace(self, shown: dict[str, tuple[int, Run]]) -> None:
        """What is shown from now on; a run whose shown state changed (newly lost,
        or back to running) is sent once by the next poll."""
        old = self.runs
        self.unsent |= {k for k in old.keys() | shown.keys() if old.get(k) != shown.get(k)}
        self.runs = shown

    def forget(self) -> None:
        """Stop showing (the store writes its verdicts from now on); what was shown
        is sent again so the poller sees the stored state."""
        self.unsent |= set(self.runs)
        self.runs = {}

    def clear(self) -> None:
        self.runs = {}
        self.unsent.clear()

    def run(self, parsed: Run | RecordError, revision: int) -> Run | RecordError:
        """``parsed`` as shown: lost when a verdict was made on this very revision."""
        shown = self.runs.get(parsed.id) if self.runs and parsed.id else None
        return shown[1] if shown is not None and shown[0] == revision else parsed

    def records(self, rows: list[Any]) -> list[Any]:
        """Table-row records (``ROW_COLUMNS``, aborting, revision; tuples of either
        driver) as shown, replaced in place."""
        if self.runs:
            for i, r in enumerate(rows):
                shown = self.runs.get(r[1])
                if shown is not None and shown[0] == r[REVISION_AT]:
                    row = RunRow.from_run(shown[1])
                    row.created_at = r[_CREATED_AT]
                    rows[i] = row_record(row, r[REVISION_AT])
        return rows

    def recount(self, counts: StatusCounts, stored: Sequence[Sequence[Any]]) -> StatusCounts:
        """``counts`` (by stored status) with each run shown lost counted as shown;
        ``stored``: ``(id, status, revision, archived)`` of the runs shown."""
        by_status = dict(counts.by_status)
        for run_id, status, revision, archived in stored:
            shown = self.runs.get(run_id)
            if archived or shown is None or shown[0] != revision:
                continue
            if by_status.get(status, 0) > 0:
                by_status[status] -= 1
                if not by_status[status]:
                    del by_status[status]
            word = shown[1].status.value
            by_status[word] = by_status.get(word, 0) + 1
        return StatusCounts(by_status, counts.archived)

    def take_unsent(self, already: set[str]) -> list[str]:
        """The runs the next poll must send although their revision did not move
        (those in ``already`` are in the poll's page anyway)."""
        ids = [i for i in self.unsent if i not in already]
        self.unsent.clear()
        return ids
