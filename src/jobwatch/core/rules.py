"""The one place that decides which action may run on which run from which source.

The monitor, the CLI, the HTTP server and the sources themselves all ask here, so
a refusal and a confirmation read the same everywhere:

* :func:`refusal` — may ``action`` be applied to this run, from this source, in
  this mode? (transitions, the source's declared :class:`Capabilities`, read-only);
* :func:`plan` — for a set of runs: which may go ahead, which are skipped and why,
  and the :class:`Confirmation` to show before acting (``None`` when the action is
  harmless and undoable: unarchive).

Sources *declare* what they can do (:class:`Capabilities`); nothing here probes
an object for methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from jobwatch.core.errors import TransitionRefused
from jobwatch.core.redact import clean
from jobwatch.core.status import ACTIVE, TERMINAL, Status


class HasState(Protocol):
    """What the rules look at: a full :class:`Run` or a table row both qualify."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> Status: ...

    @property
    def archived(self) -> bool: ...


class Action(StrEnum):
    ABORT = "abort"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    RERUN = "rerun"
    """Start the run's job again: a new run, linked to this one (``rerun_of``)."""


BASIC_ACTIONS = frozenset({Action.ABORT, Action.ARCHIVE, Action.UNARCHIVE})
"""What a source can do unless it declares otherwise: rerun is opt-in, since only a
source that can start its job again (the local store, two vendor APIs) has it."""
RERUNNABLE = TERMINAL | {Status.UNKNOWN}
"""What may be rerun: a run that is over (a second copy of a live one is a mistake
more often than not: abort it first)."""
RERUN_EFFECT = "A new run of the same job starts; this one stays as it is."
NO_RERUN = "it cannot start a run again"


ABORTABLE = ACTIVE
"""What may be aborted: anything that has not finished yet."""
ARCHIVABLE = TERMINAL | {Status.UNKNOWN}
"""Finished runs, plus ``unknown`` ones: a lost run can never finish by itself, so
refusing to archive it would leave it on screen forever."""

ARCHIVE_EFFECT = (
    "Archived runs keep their outcome and are hidden from lists (press . in the "
    "monitor, or pass --all, to show them); unarchive brings them back."
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a kind of source can do, declared by the source itself.

    The front ends read this instead of probing a source for methods: the monitor
    never opens a dialog for an action the source cannot carry out, and the
    confirmation says what the action really does *there*.
    """

    actions: frozenset[Action] = BASIC_ACTIONS
    """Actions the source can carry out at all."""
    abort_effect: str = "The run is stopped."
    """What an abort does in this system, one sentence for the confirmation."""
    archive_effect: str = ARCHIVE_EFFECT
    rerun_effect: str = RERUN_EFFECT
    """What a rerun does there, for the confirmation."""
    rerun_refusal: str = NO_RERUN
    """Why this source cannot rerun, when ``actions`` lacks it (named in the refusal)."""
    logs: bool = True
    """Whether runs have a log to read by sequence number."""
    logs_note: str | None = None
    """Shown where a log would be when the system keeps none for a run."""
    rows: bool = False
    """Reads table rows without building full runs (the store's fast path)."""
    first_rows: bool = False
    """Can hand out the newest rows first, for a first screen before the full load."""
    query: bool = False
    """Filters and limits a listing itself (``jobwatch list`` asks it, not a sync)."""
    window: bool = False
    """Answers windowed queries (a page of rows for a sort, filter and offset or
    keyset, counts by aggregate): the monitor then holds a bounded window of rows
    instead of the whole history (see :class:`~jobwatch.sources.protocol.WindowView`)."""
    pace: float = 0.0
    """Default seconds between polls; 0 follows the front end's refresh. Vendor APIs
    have request quotas that a monitor left open all night must not use up."""
    kinds: tuple[str, ...] = ()
    """The kinds of record this source watches, when it has several (Letta)."""
    push: bool = False
    """Tells of changes itself (``Source.wait_change``, PostgreSQL's LISTEN): the
    poller wakes on them and keeps its timer as a slow fallback."""

    def supports(self, action: Action) -> bool:
        return action in self.actions


class Acting(Protocol):
    """What the rules need to know of the source that owns a run."""

    @property
    def name(self) -> str: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def capabilities(self) -> Capabilities: ...


_ENDED_AS = {
    Status.SUCCEEDED: "it has already succeeded",
    Status.FAILED: "it has already failed",
    Status.ABORTED: "it has already been aborted",
    Status.TIMED_OUT: "it has already timed out",
    Status.UNKNOWN: "its state is unknown (it was lost or its source cannot tell)",
}
_STILL = {
    Status.NEW: "it has not started yet",
    Status.QUEUED: "it is still queued",
    Status.RUNNING: "it is still running",
    Status.PAUSED: "it is paused, not finished",
}


def refusal(
    action: Action,
    run: HasState,
    source: Acting | None = None,
    *,
    read_only: bool = False,
) -> str | None:
    """Why ``action`` may not be applied to ``run``, or None when it may.

    Checked in this order, so the first reason given is the one that matters
    most: read-only mode (the user's own choice), the source's read-only flag,
    what the source can do at all, then the run's state.
    """
    early = source_refusal(action, run.id, source, read_only=read_only)
    if early is not None:
        return early
    status = run.status
    if action is Action.ABORT:
        if status in ABORTABLE:
            return None
        return f"cannot abort {run.id}: {_ENDED_AS.get(status, f'it is {status}')}"
    if action is Action.ARCHIVE:
        if run.archived:
            return f"cannot archive {run.id}: it is already archived"
        if status in ARCHIVABLE:
            return None
        return f"cannot archive {run.id}: {_STILL.get(status, f'it is {status}')}"
    if action is Action.UNARCHIVE:
        return None if run.archived else f"cannot unarchive {run.id}: it is not archived"
    if action is Action.RERUN:
        if status in RERUNNABLE:
            return None
        return f"cannot rerun {run.id}: {_STILL.get(status, f'it is {status}')} (abort it first)"
    raise ValueError(f"unknown action {action!r}")


def no_command_kept(run_id: str) -> str:
    """The store's refusal for a run it cannot start again: only a run made by
    ``jobwatch run`` on this host, into this store, has its command line kept."""
    return (
        f"cannot rerun {run_id}: no command line kept for it (only runs made by "
        "`jobwatch run` into this local store can be rerun)"
    )


def source_refusal(
    action: Action, run_id: str, source: Acting | None, *, read_only: bool = False
) -> str | None:
    """The part of :func:`refusal` that needs no run state: read-only mode, the
    source's read-only flag and what it can do. A source that passes the run on
    to somewhere else (``jobwatch serve``'s client) checks this before sending."""
    verb = action.value
    if read_only:
        return f"cannot {verb} {run_id}: read-only mode (--read-only, or read_only in the config)"
    if source is not None:
        if source.read_only:
            return f"cannot {verb} {run_id}: source {source.name} is read-only"
        if not source.capabilities.supports(action):
            if action is Action.RERUN:
                why = source.capabilities.rerun_refusal
                return f"cannot rerun {run_id}: source {source.name}: {why}"
            return f"cannot {verb} {run_id}: source {source.name} cannot {verb} runs"
    return None


def check(
    action: Action, run: HasState, source: Acting | None = None, *, read_only: bool = False
) -> None:
    """Raise :class:`TransitionRefused` with the readable reason when not allowed."""
    message = refusal(action, run, source, read_only=read_only)
    if message is not None:
        raise TransitionRefused(message)


def allowed(
    action: Action, run: HasState, source: Acting | None = None, *, read_only: bool = False
) -> bool:
    return refusal(action, run, source, read_only=read_only) is None


# -- asking first ------------------------------------------------------------------

SHOWN_RUNS = 12
SHOWN_SKIPPED = 8


@dataclass(frozen=True, slots=True)
class Target:
    """One run an action was asked for, with what the confirmation shows of it."""

    run: HasState
    source: Acting | None
    name: str = ""
    """The job or label, already cleaned for display (the id is cleaned here)."""
    glyph: str = ""
    hidden: bool = False
    """Marked but not on screen (the monitor's filter hides it): the question names it."""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The question asked before an action, as lines both front ends show as they are
    (the monitor in its dialog, the CLI on stderr before ``[y/N]``)."""

    title: str
    runs: tuple[str, ...]
    effects: tuple[str, ...]
    skipped: tuple[str, ...]
    yes_label: str
    footer: str = "Default is No."
    hidden: tuple[str, ...] = ()
    """Runs going ahead that are not on screen (marked, then filtered out)."""

    def lines(self) -> list[str]:
        out = list(self.runs)
        if self.hidden:
            out += ["", f"Not on screen, hidden by the filter ({len(self.hidden)}):"]
            out += self.hidden[:SHOWN_SKIPPED]
            if len(self.hidden) > SHOWN_SKIPPED:
                out.append(f"  … and {len(self.hidden) - SHOWN_SKIPPED} more")
        out.append("")
        out += self.effects
        if self.skipped:
            out += ["", f"Skipped ({len(self.skipped)}):"]
            out += [f"  {reason}" for reason in self.skipped[:SHOWN_SKIPPED]]
            if len(self.skipped) > SHOWN_SKIPPED:
                out.append(f"  … and {len(self.skipped) - SHOWN_SKIPPED} more")
        return out

    def text(self) -> str:
        """The whole question as plain text, title first."""
        return "\n".join([self.title, "", *self.lines(), "", self.footer])


@dataclass(frozen=True, slots=True)
class Plan:
    """What asking for ``action`` on some runs comes to."""

    action: Action
    allowed: tuple[int, ...]
    """Indexes into the targets given to :func:`plan`, in their order."""
    refused: tuple[str, ...]
    confirmation: Confirmation | None
    """``None`` when nothing may go ahead, or the action needs no question."""


def plan(action: Action, targets: Sequence[Target], *, read_only: bool = False) -> Plan:
    """Which targets may go ahead, why the others may not, and the question to ask.

    Unarchive is harmless and undoable, so it is done without a question, unless
    some of its runs are not on screen (``Target.hidden``); abort and archive
    always ask (default No), naming what the action does in each system the runs
    come from and the runs the screen does not show."""
    ok: list[int] = []
    refused: list[str] = []
    for i, target in enumerate(targets):
        reason = refusal(action, target.run, target.source, read_only=read_only)
        if reason is None:
            ok.append(i)
        else:
            refused.append(reason)
    unseen = any(targets[i].hidden for i in ok)
    if not ok or (action is Action.UNARCHIVE and not unseen):
        return Plan(action, tuple(ok), tuple(refused), None)
    return Plan(action, tuple(ok), tuple(refused), _confirmation(action, targets, ok, refused))


def _confirmation(
    action: Action, targets: Sequence[Target], ok: list[int], refused: list[str]
) -> Confirmation:
    verb = action.value.capitalize()
    n = len(ok)

    def line(t: Target) -> str:
        glyph = f"{t.glyph} " if t.glyph else ""
        return f"  {glyph}{clean(t.run.id)}  {t.run.status.value}  {t.name}".rstrip()

    shown = [i for i in ok if not targets[i].hidden]  # each run is named once:
    hidden = tuple(line(targets[i]) for i in ok if targets[i].hidden)  # on screen or not
    runs = [line(targets[i]) for i in shown[:SHOWN_RUNS]]
    if len(shown) > SHOWN_RUNS:
        runs.append(f"  … and {len(shown) - SHOWN_RUNS} more")
    sources: list[Acting | None] = []  # in order of first use, by identity (a source
    for i in ok:  # need not be hashable)
        if not any(targets[i].source is seen for seen in sources):
            sources.append(targets[i].source)
    effects: list[str] = []
    for source in sources:
        caps = source.capabilities if source is not None else Capabilities()
        effect = caps.abort_effect if action is Action.ABORT else caps.archive_effect
        if action is Action.RERUN:
            effect = caps.rerun_effect
        prefix = f"{source.name}: " if len(sources) > 1 and source is not None else ""
        effects.append(prefix + effect)
    if action is Action.ABORT:
        effects.append("This cannot be undone.")
    elif action is Action.UNARCHIVE:
        effects = ["The runs are shown in lists again."]
    return Confirmation(
        title=f"{verb} {n} run{'s' if n != 1 else ''}?",
        runs=tuple(runs),
        effects=tuple(effects),
        skipped=tuple(clean(reason) for reason in refused),
        yes_label=f"{verb} {n}",
        hidden=hidden,
    )
