"""Letta: agent runs, jobs and message batches of a Letta server (v1 REST API).

Letta keeps three kinds of record with distinct ids (``vendor-apis.md`` §2):
runs (``run-…``, one agent processing session, the main live object), jobs
(``job-…``, data-loading tasks) and batches (``BatchJob``, ``job_type="batch"``,
a fan-out of agent runs through ``/v1/messages/batches``). One adapter watches
any of them; they share one cache because their ids never collide.

Polling has no change cursor to lean on: a run carries no ``updated_at``. Each
poll asks for one small newest-first page (what is new), and for every record
Letta still calls active in one list (``statuses=created&statuses=running``, or
``active=true``); only a cached active record missing from that list (it has
finished, or was deleted) is asked for by id. So a quiet poll costs one or two
requests per kind, whatever the number of active runs. Servers read the list
cursors differently (see the polling section): nothing relies on one reading.
Everything Letta-specific (enums, stop reasons, the ``false`` a job cancel
answers, the batch list that hides finished batches) stays in here.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import quote

import httpx
from pydantic import Field

from jobwatch.config.schema import register_kind
from jobwatch.core import Callback, LogLine, Reason, RecordError, Run, RunError, Status
from jobwatch.core.errors import SourceError, TransitionRefused
from jobwatch.core.levels import LogLevel
from jobwatch.core.redact import clean, mask_email, mask_url, redact
from jobwatch.core.rules import Capabilities
from jobwatch.core.text import cap_text
from jobwatch.sources.http.transport import ApiClient, decode_json, error_message, short
from jobwatch.sources.vendors.base import (
    LOCAL_ARCHIVE,
    POLL_EVERY_S,
    MappingError,
    VendorConfig,
    VendorSource,
)
from jobwatch.sources.vendors.common import Reader, parse_datetime

# -- the vocabulary ----------------------------------------------------------------


class Kind(StrEnum):
    """Which Letta record a run came from; it decides every endpoint used for it."""

    RUN = "run"
    JOB = "job"
    BATCH = "batch"


STATUS_MAP: dict[str, Status] = {
    # JobStatus (jobs and batches) and RunStatus (runs) share these values.
    "created": Status.QUEUED,
    "pending": Status.QUEUED,  # JobStatus only; Letta's own code calls its meaning unclear
    "running": Status.RUNNING,
    "completed": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "cancelled": Status.ABORTED,
    "expired": Status.TIMED_OUT,  # JobStatus only; meaning unconfirmed
}
"""Raw ``status`` → normalized status (``vendor-apis.md`` §7.2); anything else is unknown."""

STOP_REASON_STATUS: dict[str, Status] = {
    "end_turn": Status.SUCCEEDED,
    "max_steps": Status.SUCCEEDED,
    "tool_rule": Status.SUCCEEDED,
    "requires_approval": Status.SUCCEEDED,
    "error": Status.FAILED,
    "invalid_tool_call": Status.FAILED,
    "no_tool_call": Status.FAILED,
    "invalid_llm_response": Status.FAILED,
    "llm_api_error": Status.FAILED,
    "max_tokens_exceeded": Status.FAILED,
    "context_window_overflow_in_system_prompt": Status.FAILED,
    "insufficient_credits": Status.FAILED,
    "cancelled": Status.ABORTED,
}
"""``StopReasonType`` and the run status Letta says each implies (§2.4)."""

STOP_REASON_TEXT: dict[str, str] = {
    "end_turn": "The agent finished its turn.",
    "max_steps": "Warning: the agent stopped at its step limit (max_steps) before finishing.",
    "tool_rule": "A tool rule ended the run.",
    "requires_approval": "Needs attention: the agent is waiting for a tool call to be approved.",
    "error": "The run stopped on an error.",
    "invalid_tool_call": "The model called a tool that does not exist or with bad arguments.",
    "no_tool_call": "The model answered without the tool call the agent required.",
    "invalid_llm_response": "The model sent a response Letta could not read.",
    "llm_api_error": "The model provider's API returned an error.",
    "max_tokens_exceeded": "The model ran out of output tokens.",
    "context_window_overflow_in_system_prompt": "The system prompt overflows the context window.",
    "insufficient_credits": "The account has no credits left.",
    "cancelled": "The run was cancelled.",
}

ERROR_CATEGORY: dict[str, str] = {
    "invalid_tool_call": "tool",
    "no_tool_call": "tool",
    "invalid_llm_response": "llm",
    "llm_api_error": "llm",
    "max_tokens_exceeded": "llm",
    "context_window_overflow_in_system_prompt": "context",
    "insufficient_credits": "billing",
}

JOB_LOG_NOTE = (
    "Letta keeps no messages or log for jobs (data-loading tasks): the status and stop "
    "reason shown here are all it reports; the loaded files are listed under the job's "
    "data source in Letta."
)
"""Shown in the log pane of a job, the one Letta record kind without messages."""

KIND_OF_SETTING: dict[str, Kind] = {"runs": Kind.RUN, "jobs": Kind.JOB, "batches": Kind.BATCH}
MAX_LOG_PAGES = 100


# -- reading list pages (whatever the server's cursor reading) ---------------------

PROBE = 10
"""Records a poll asks for to see what is new: a quiet poll costs one small page."""
ACTIVE_LIMIT = 1000
"""Letta's largest page: every active record in one request."""
ACTIVE_STATUSES = ("created", "running")
CHRONO_WALK_PAGES = 500
SWEEP_EVERY_S = 600.0
"""How often the whole window is listed again to find deleted older runs."""
FLOOR = datetime.min.replace(tzinfo=UTC)

Toward = Literal["older", "newer"]
OLDER: Toward = "older"
NEWER: Toward = "newer"
OTHER = {"after": "before", "before": "after"}


class Mark(NamedTuple):
    """A record a cursor names: its id, and when it was created."""

    id: str
    when: datetime | None


def rid_of(raw: Any) -> str | None:
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, str) else None


def when_of(raw: Any) -> datetime | None:
    try:
        return parse_time(raw.get("created_at")) if isinstance(raw, dict) else None
    except MappingError:
        return None


def _marks(page: list[Any]) -> list[Mark]:
    return [Mark(rid, when_of(r)) for r in page if (rid := rid_of(r)) is not None]


def oldest(page: list[Any]) -> Mark | None:
    """The oldest record of a page (the last one, without creation times)."""
    marks = [m for m in _marks(page) if m.when is not None]
    if not marks:
        return next(reversed(_marks(page)), None)
    return min(marks, key=lambda m: m.when or FLOOR)


def newest(page: list[Any]) -> Mark | None:
    marks = [m for m in _marks(page) if m.when is not None]
    return max(marks, key=lambda m: m.when or FLOOR) if marks else None


def direction(page: list[Any]) -> Literal["asc", "desc"] | None:
    """Which way a page runs, by its ``created_at``: what the server did, not what
    it was asked."""
    times = [t for t in (when_of(r) for r in page) if t is not None]
    ups = sum(a < b for a, b in itertools.pairwise(times))
    downs = sum(a > b for a, b in itertools.pairwise(times))
    if ups == downs:
        return None
    return "asc" if ups > downs else "desc"


def relative(page: list[Any], cursor: Mark) -> Toward | None:
    """Whether a page after ``cursor`` holds older or newer records than it; ``None``
    when it cannot tell (empty, or only records created at the same time)."""
    if cursor.when is None:
        return None
    times = [t for r in page if rid_of(r) != cursor.id and (t := when_of(r)) is not None]
    older = sum(t < cursor.when for t in times)
    newer = sum(t > cursor.when for t in times)
    if older and not newer:
        return OLDER
    if newer and not older:
        return NEWER
    return None


# -- the mapper (pure: a function of the payload only) ------------------------------


def parse_time(value: Any) -> datetime | None:
    """An ISO date-time, or a number of seconds since the epoch (the schema's
    descriptions say "unix timestamp" while its type says date-time: accept both)."""
    try:
        return parse_datetime(value)
    except ValueError:
        raise MappingError(f"not a date: {short(repr(value), 60)}") from None


def kind_of(raw: Mapping[str, Any]) -> Kind:
    """Run, job or batch: ``job_type`` when the record has one, else the id prefix."""
    job_type = raw.get("job_type")
    rid = raw.get("id")
    rid = rid if isinstance(rid, str) else ""
    meta = raw.get("metadata")
    meta_type = meta.get("job_type") if isinstance(meta, dict) else None
    if job_type == "batch" or rid.startswith("batch-") or meta_type == "batch_messages":
        return Kind.BATCH
    if job_type == "run" or rid.startswith("run-"):
        return Kind.RUN
    if job_type == "job" or rid.startswith("job-"):
        return Kind.JOB
    return Kind.RUN if "agent_id" in raw else Kind.JOB


def kind_of_id(run_id: str) -> Kind | None:
    for kind in (Kind.RUN, Kind.JOB, Kind.BATCH):
        if run_id.startswith(f"{kind.value}-"):
            return kind
    return None


def error_text(said: Any) -> str | None:
    """What ``metadata.error`` says, for people: a string as it is; an object by its
    ``message`` and ``type`` (the rest stays in the run's metadata). Redacted, with
    e-mail addresses masked (provider errors echo account addresses and key ends)."""
    if isinstance(said, dict):
        words = [said.get(key) for key in ("type", "message")]
        parts = [w for w in words if isinstance(w, str) and w.strip()]
        said = ": ".join(parts) if parts else json.dumps(redact(said), default=str)
    elif isinstance(said, list):
        said = json.dumps(redact(said), default=str)
    if not isinstance(said, str) or not said.strip():
        return None
    text = mask_email(clean(said, keep_newlines=True)).strip()
    return cap_text(text)


def _outcome(
    stop: str | None, status: Status, metadata: Mapping[str, Any] | None
) -> tuple[Reason | None, RunError | None]:
    reason = None
    if stop:
        reason = Reason(type=stop, message=STOP_REASON_TEXT.get(stop))
    failing = stop is not None and STOP_REASON_STATUS.get(stop) is Status.FAILED
    if not failing and status is not Status.FAILED:
        return reason, None
    said = metadata.get("error") if metadata else None  # where background runs leave it
    message = error_text(said)
    code = stop if failing else None
    message = message or (STOP_REASON_TEXT.get(stop or "") if failing else None)
    if code is None and message is None:
        return reason, None
    return reason, RunError(code=code, message=message, category=ERROR_CATEGORY.get(stop or ""))


def parse_record(raw: Any, source: str) -> Run:
    """One Letta ``Run``, ``Job`` or ``BatchJob`` as a normalized run.

    Raises :class:`MappingError` (or any error) on a record it cannot read; the
    caller turns that into an error row. Secret-bearing fields are masked here:
    the callback URL loses its userinfo and query, ``callback_error``, metadata and
    the request config are redacted.
    """
    read = Reader.of(raw, "Letta record")  # strict: an odd field spoils the record
    run_id = (read.text("id") or "").strip()
    if not run_id:
        raise MappingError("record has no id")
    if len(run_id) > 200 or clean(run_id) != run_id:
        raise MappingError("id is not a plain Letta id")
    kind = kind_of(read.raw)
    status_raw = read.text("status", keep_blank=True)
    status = (
        STATUS_MAP.get(status_raw.strip().lower(), Status.UNKNOWN) if status_raw else Status.UNKNOWN
    )
    stop = read.text("stop_reason")
    implied = STOP_REASON_STATUS.get(stop) if stop else None
    if status is Status.SUCCEEDED and implied in (Status.FAILED, Status.ABORTED):
        # A background run that hit an error is stored as completed with a failing
        # stop reason; Letta's own StopReasonType.run_status says what it means.
        status = implied
    metadata = read.obj("metadata")
    reason, error = _outcome(stop, status, metadata)

    agent_id = read.text("agent_id")
    meta_type = metadata.get("job_type") if metadata else None
    meta_type = meta_type if isinstance(meta_type, str) else None
    owner = read.text("created_by_id")

    config: dict[str, Any] = {
        "background": read.flag("background"),
        "request_config": read.obj("request_config"),
        "conversation_id": read.raw.get("conversation_id"),
        "base_template_id": read.raw.get("base_template_id"),
    }
    config = {key: value for key, value in config.items() if value is not None}

    callback = None
    url = read.text("callback_url")
    sent_at = read.time("callback_sent_at")
    code = read.number("callback_status_code")
    cb_error = read.text("callback_error")
    if url or sent_at or code is not None or cb_error:
        callback = Callback(
            url=mask_url(url) if url else None,
            sent_at=sent_at,
            status_code=int(code) if code is not None else None,
            error=cap_text(clean(cb_error)) if cb_error else None,
        )

    ttft = read.number("ttft_ns")
    total = read.number("total_duration_ns")
    return Run(
        id=run_id,
        source=source,
        # A run's agent is what abort needs, so for runs `job` is the agent alone.
        job=agent_id if kind is Kind.RUN else agent_id or meta_type,
        label=agent_id or meta_type,
        type=kind.value,
        status=status,
        status_raw=status_raw,
        created_at=read.time("created_at"),
        ended_at=read.time("completed_at"),
        updated_at=read.time("updated_at"),
        error=error,
        reason=reason,
        owner=mask_email(clean(owner)) if owner else None,  # an id; an e-mail, its domain
        config=redact(config) or None,
        metadata=redact(metadata, emails=True) if metadata is not None else None,
        callback=callback,
        ttft_ms=ttft / 1e6 if ttft is not None else None,
        duration_ms=total / 1e6 if total is not None else None,
    )


# -- messages as log lines ---------------------------------------------------------

STREAM_OF_TYPE: dict[str, str] = {
    "system_message": "system",
    "user_message": "user",
    "assistant_message": "assistant",
    "reasoning_message": "reasoning",
    "hidden_reasoning_message": "reasoning",
    "tool_call_message": "tool",
    "tool_return_message": "tool",
    "approval_request_message": "approval",
    "approval_response_message": "approval",
    "summary_message": "system",
    "event_message": "event",
}


def _content_text(content: Any) -> str:
    """Message content: a string, or a list of parts (text, images, tool calls…)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if not isinstance(text, str):
                    text = part.get("reasoning") or part.get("content")
                if isinstance(text, str):
                    parts.append(text)
                elif isinstance(part.get("type"), str):
                    parts.append(f"[{part['type']}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, default=str)


def _call_text(calls: Any) -> str:
    """``name(arguments)`` of a tool call, or of each in a list."""
    items = calls if isinstance(calls, list) else [calls]
    out = []
    for call in items:
        if not isinstance(call, dict):
            continue
        inner = call.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else call
        name = fn.get("name") if isinstance(fn.get("name"), str) else "?"
        args = fn.get("arguments")
        out.append(f"{name}({args if isinstance(args, str) else json.dumps(args, default=str)})")
    return "\n".join(out)


def message_lines(msg: Any) -> list[tuple[str, str, datetime | None, str]]:
    """``(stream, level, time, text)`` for one message; never raises.

    Reads both shapes Letta sends: a ``LettaMessage`` (``message_type``, run
    messages) and the stored ``Message`` (``role``, batch messages).
    """
    try:
        return _message_lines(msg)
    except Exception as exc:  # one odd message must not hide the rest of the log
        return [("letta", "error", None, f"unreadable Letta message: {short(str(exc), 200)}")]


def _message_lines(msg: Any) -> list[tuple[str, str, datetime | None, str]]:
    if not isinstance(msg, dict):
        raise MappingError(f"expected an object, got {type(msg).__name__}")
    try:
        when = parse_time(msg.get("date") or msg.get("created_at"))
    except MappingError:
        when = None
    level = "error" if msg.get("is_err") is True else "info"
    extra: list[tuple[str, str]] = []  # (stream, text) after the main text
    mtype = msg.get("message_type")
    if isinstance(mtype, str):
        stream = STREAM_OF_TYPE.get(mtype, short(mtype, 40))
        if mtype in ("tool_call_message", "approval_request_message"):
            text = _call_text(msg.get("tool_calls") or msg.get("tool_call"))
            if mtype == "approval_request_message":
                text = f"approval needed: {text}"
                level = "warning" if level == "info" else level
            else:
                text = f"call {text}"
        elif mtype == "tool_return_message":
            state = msg.get("status")
            text = f"{state or 'return'}: {_content_text(msg.get('tool_return'))}"
            if state == "error":
                level = "error"
            for name in ("stdout", "stderr"):
                lines = msg.get(name)
                if isinstance(lines, list):
                    extra += [(name, line) for line in lines if isinstance(line, str)]
        elif mtype == "reasoning_message":
            text = _content_text(msg.get("reasoning"))
        elif mtype == "hidden_reasoning_message":
            text = f"(reasoning {msg.get('state') or 'hidden'})"
        elif mtype == "approval_response_message":
            verdict = msg.get("approve")
            word = "answered"
            if isinstance(verdict, bool):
                word = "approved" if verdict else "denied"
            why = msg.get("reason")
            text = f"{word}" + (f": {why}" if isinstance(why, str) and why else "")
        elif mtype == "summary_message":
            text = _content_text(msg.get("summary"))
        elif mtype == "event_message":
            text = f"event {msg.get('event_type') or '?'}"
        else:
            text = _content_text(msg.get("content"))
    else:
        role = msg.get("role")
        stream = short(role, 40) if isinstance(role, str) and role else "letta"
        text = _content_text(msg.get("content"))
        calls = _call_text(msg.get("tool_calls"))
        if calls:
            text = f"{text}\ncall {calls}" if text else f"call {calls}"
    out = [(stream, level, when, line) for line in (text.splitlines() or [""])]
    out += [(name, level, when, line) for name, chunk in extra for line in chunk.splitlines()]
    return out


# -- config ------------------------------------------------------------------------

WatchKind = Literal["runs", "jobs", "batches"]
WATCH_KINDS: tuple[WatchKind, ...] = ("runs", "jobs", "batches")


@register_kind
class LettaConfig(VendorConfig):
    """A Letta server (Letta Cloud or self-hosted) and which of its records to watch."""

    KIND: ClassVar[str] = "letta"

    watch: list[WatchKind] = Field(default_factory=lambda: list(WATCH_KINDS), min_length=1)
    """Record kinds to list: agent runs, jobs (data loading) and message batches."""
    agent_id: str | None = None
    """Only this agent's runs (the runs list's ``agent_id`` filter)."""
    project_id: str | None = None
    """Sent as ``X-Project-Id`` (Letta Cloud projects)."""
    user_id: str | None = None
    """Sent as ``user_id``: the acting user on a self-hosted server."""
    auth: Literal["bearer", "password"] = "bearer"
    """``bearer`` sends ``Authorization: Bearer``; ``password`` sends a self-hosted
    server's ``X-BARE-PASSWORD: password <token>``."""

    def build(self, name: str, *, read_only: bool = False) -> LettaSource:
        extra: dict[str, str] = {}
        if self.project_id:
            extra["X-Project-Id"] = self.project_id
        if self.user_id:
            extra["user_id"] = self.user_id
        scheme = self.auth

        def auth(token: str) -> dict[str, str]:
            if scheme == "password":
                return {"X-BARE-PASSWORD": f"password {token}", **extra}
            return {"Authorization": f"Bearer {token}", **extra}

        # Every route is under /v1; a URL that already ends in /v1 is taken as given.
        prefix = "" if self.url.rstrip("/").endswith("/v1") else "/v1"
        return LettaSource(
            name,
            self.api(name, auth=auth),
            flags_path=self.flags_path(),
            max_runs=self.max_runs,
            read_only=read_only or self.read_only,
            page_size=self.page_size,
            watch=[KIND_OF_SETTING[w] for w in dict.fromkeys(self.watch)],
            agent_id=self.agent_id,
            prefix=prefix,
        )


# -- the adapter -------------------------------------------------------------------


class LettaSource(VendorSource):
    """Letta runs, jobs and batches as one jobwatch source."""

    KIND: ClassVar[str] = "letta"
    SYSTEM: ClassVar[str] = "Letta"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        abort_effect=(
            "jobwatch asks Letta to cancel it: a run through its agent's "
            "messages/cancel endpoint, a job or a batch through its own cancel endpoint."
        ),
        archive_effect=LOCAL_ARCHIVE.format(system="Letta"),
        logs_note=JOB_LOG_NOTE,
        pace=POLL_EVERY_S,
        kinds=("runs", "jobs", "batches"),
        rerun_refusal=(
            "Letta has no call to start a run, job or batch again (a new one is a new "
            "message to the agent, which jobwatch does not send)"
        ),
    )

    def __init__(
        self,
        name: str,
        api: ApiClient,
        *,
        watch: Iterable[Kind] = (Kind.RUN, Kind.JOB, Kind.BATCH),
        agent_id: str | None = None,
        prefix: str = "/v1",
        **kwargs: Any,
    ) -> None:
        super().__init__(name, api, **kwargs)
        self.watch = tuple(watch)
        self.agent_id = agent_id
        self.prefix = prefix
        self._newest: dict[Kind, Mark] = {}
        """Per kind, the newest record seen: where "new" starts."""
        self._older: dict[Kind, str] = {}
        self._newer: dict[Kind, str] = {}
        """Per kind, the cursor parameter (``after``/``before``) that pages older or
        newer records on this server, as learned from its pages."""
        self._chrono: dict[Kind, bool] = {}
        """Kinds this server lists oldest first whatever ``order`` asks."""
        self._swept: dict[Kind, float] = {}
        """Per kind, when the whole window was last listed (monotonic seconds)."""
        self.sweep_every_s = SWEEP_EVERY_S
        self._suspects: set[str] = set()
        """Finished runs a list should have shown and did not: asked for by id."""
        self._vouched: set[str] = set()
        """Suspects Letta still had when asked by id: not asked again."""
        self._log_pos: dict[str, tuple[int, str]] = {}
        """Per run, the last log seq handed out and the message id it ended on."""
        self._missing: set[Kind] = set()
        """Kinds whose list this server does not serve (it answered 404)."""

    def parse(self, raw: Any) -> Run:
        return parse_record(raw, self.name)

    # -- paths ----------------------------------------------------------------------

    def _list_path(self, kind: Kind) -> str:
        return {
            Kind.RUN: f"{self.prefix}/runs/",
            Kind.JOB: f"{self.prefix}/jobs/",
            Kind.BATCH: f"{self.prefix}/messages/batches",
        }[kind]

    def _one_path(self, kind: Kind, run_id: str) -> str:
        rid = quote(run_id, safe="")
        return {
            Kind.RUN: f"{self.prefix}/runs/{rid}",
            Kind.JOB: f"{self.prefix}/jobs/{rid}",
            Kind.BATCH: f"{self.prefix}/messages/batches/{rid}",
        }[kind]

    @staticmethod
    def _kind(run: Run) -> Kind:
        try:
            return Kind(run.type or "")
        except ValueError:
            return kind_of_id(run.id) or Kind.RUN

    # -- polling --------------------------------------------------------------------
    #
    # Servers disagree on what a list cursor means: the docs and the SDK read
    # ``after``/``before`` "in the specified sort order", the open-source server reads
    # them the other way round for runs and lists jobs oldest first whatever
    # ``order`` says. So nothing here trusts one reading: the direction of each page
    # is read from the ``created_at`` of what came back, and the parameter that
    # pages older (or newer) is learned from the first page after a cursor, and
    # learned again whenever a page contradicts it.

    async def _page(
        self, kind: Kind, params: dict[str, Any], errors: list[RecordError]
    ) -> list[Any] | None:
        """One list page; ``None`` when the cursor record is gone (404)."""
        if kind is Kind.RUN and self.agent_id:
            params["agent_id"] = self.agent_id
        path = self._list_path(kind)
        response = await self.api.request("GET", path, params=params)
        if response.status_code == 404 and ("after" in params or "before" in params):
            return None  # the cursor record itself was deleted
        if response.status_code == 404:
            # Not every Letta serves every list (the v1 server was retired; Cloud
            # may drop jobs or batches): say so once and stop asking, keep the rest.
            self._missing.add(kind)
            errors.append(
                RecordError(
                    source=self.name,
                    id=f"{kind.value}s",
                    message=f"this Letta server has no {path} endpoint (404); "
                    f'{kind.value}s are not watched (remove "{kind.value}s" from watch)',
                )
            )
            return []
        self.raise_for(response, doing=f"listing {kind.value}s")
        body = decode_json(response, self.name)
        if body is None:
            return []
        if not isinstance(body, list):  # Letta lists are bare arrays
            errors += [e for e in self.parse_all(body, kind.value) if isinstance(e, RecordError)]
            return []
        return body

    @staticmethod
    def _ids(page: list[Any]) -> list[str]:
        return [r["id"] for r in page if isinstance(r, dict) and isinstance(r.get("id"), str)]

    def _max_pages(self) -> int:
        return math.ceil(self.max_runs / self.page_size) + 1

    async def _step(
        self, kind: Kind, cursor: Mark, want: Toward, limit: int, errors: list[RecordError]
    ) -> list[Any] | None:
        """The page of records ``want`` (older or newer) than ``cursor``, whichever
        cursor parameter gives them on this server; ``None`` if the cursor is gone."""
        table = self._older if want == OLDER else self._newer
        other = self._newer if want == OLDER else self._older

        def learn(param: str) -> None:
            table[kind], other[kind] = param, OTHER[param]

        known = table.get(kind)
        if cursor.when is None:  # nothing to tell the readings apart by: the learned one,
            param = known or "after"  # else the documented one
            return await self._page(
                kind, {"order": "desc", "limit": limit, param: cursor.id}, errors
            )
        for param in [known, OTHER[known]] if known else ["after", "before"]:
            params: dict[str, Any] = {"order": "desc", "limit": limit, param: cursor.id}
            page = await self._page(kind, params, errors)
            if page is None:
                return None
            verdict = relative(page, cursor)
            if verdict == want:
                learn(param)
                return page
            if verdict is None:
                if table.get(kind) == param:
                    return page  # nothing that way, in the reading already learned
                continue  # cannot tell yet: the other parameter decides
            learn(OTHER[param])  # this one pages the other way
        return []

    async def _recent(self, kind: Kind, errors: list[RecordError]) -> list[Any]:
        """The newest ``max_runs`` records of one kind."""
        limit = min(self.page_size, self.max_runs)
        got: dict[str, Any] = {}

        def add(page: list[Any]) -> list[Any]:
            fresh = [r for r in page if rid_of(r) not in got]
            for raw in fresh:
                got[rid_of(raw) or f"#{len(got)}"] = raw
            return fresh

        page = await self._page(kind, {"order": "desc", "limit": limit}, errors) or []
        add(page)
        chrono = direction(page) == "asc"  # oldest first, though newest was asked
        self._chrono[kind] = chrono
        if len(page) >= limit and not chrono:
            cursor = oldest(page)
            for _ in range(self._max_pages()):
                want = min(self.page_size, self.max_runs - len(got))
                if want <= 0 or cursor is None:
                    break
                nxt = await self._step(kind, cursor, OLDER, want, errors)
                fresh = add(nxt or [])
                if not fresh or len(nxt or []) < want:
                    break
                cursor = oldest(fresh)
        elif len(page) >= limit:
            # Oldest first whatever was asked: walk forward to the newest, keeping
            # the last max_runs (one walk, on the first poll only).
            cursor = newest(page)
            for _ in range(CHRONO_WALK_PAGES):
                if cursor is None:
                    break
                nxt = await self._step(kind, cursor, NEWER, self.page_size, errors)
                fresh = add(nxt or [])
                if len(got) > self.max_runs:
                    keep = sorted(got.items(), key=lambda kv: when_of(kv[1]) or FLOOR)
                    got = dict(keep[-self.max_runs :])
                if not fresh or len(nxt or []) < self.page_size:
                    break
                cursor = newest(fresh)
            else:
                errors.append(
                    RecordError(
                        source=self.name,
                        id=f"{kind.value}s",
                        message=f"Letta lists {kind.value}s oldest first; jobwatch stopped "
                        f"after {CHRONO_WALK_PAGES} pages, so the newest may be missing",
                    )
                )
        out = list(got.values())
        if (top := newest(out)) is not None:
            self._newest[kind] = top
        self._swept[kind] = time.monotonic()
        return out

    async def _new_since(self, kind: Kind, errors: list[RecordError]) -> list[Any]:
        """Records created since the newest one seen: one small page when nothing is new."""
        mark = self._newest.get(kind)
        if mark is None:
            return await self._recent(kind, errors)
        if time.monotonic() - self._swept.get(kind, 0.0) >= self.sweep_every_s:
            # Now and then the whole window again: the only way to see that an
            # older finished run was deleted (Letta lists have no total to compare).
            window = await self._recent(kind, errors)
            self._check_gone(kind, window, complete=len(window) < self.max_runs)
            return window
        if not self._chrono.get(kind):
            limit = min(PROBE, self.max_runs)
            probe = await self._page(kind, {"order": "desc", "limit": limit}, errors) or []
            if direction(probe) == "asc" and len(probe) >= limit:
                self._chrono[kind] = True  # the server changed its mind: walk forward
            else:
                self._check_gone(kind, probe, complete=len(probe) < limit)
                out = [r for r in probe if rid_of(r) not in self._runs]
                page, fresh, cursor = probe, out, oldest(probe)
                for _ in range(self._max_pages()):
                    # A page holding a record already known reached what was seen.
                    if len(page) < limit or len(fresh) < len(self._ids(page)) or cursor is None:
                        break
                    limit = self.page_size
                    page = await self._step(kind, cursor, OLDER, limit, errors) or []
                    fresh = [r for r in page if rid_of(r) not in self._runs and r not in out]
                    out = [*out, *fresh]
                    if not fresh:
                        break
                    cursor = oldest(fresh)
                self._newest[kind] = newest([*out, *probe]) or mark
                return out
        out = []
        # One record of overlap: a page that holds the newest record seen tells which
        # way the cursor parameter pages, even when nothing is new.
        cursor = self._before(kind, mark) or mark
        for _ in range(self._max_pages()):
            step = await self._step(kind, cursor, NEWER, self.page_size, errors)
            if step is None:  # the newest record was deleted: list afresh next time
                self._newest.pop(kind, None)
                break
            page = step
            if cursor.when is not None and len(page) < self.page_size:
                self._check_gone(kind, page, complete=True, after=cursor.when)
            fresh = [r for r in page if rid_of(r) not in self._runs and r not in out]
            out += fresh
            if (top := newest(fresh)) is not None and (
                mark.when is None or top.when is None or top.when >= mark.when
            ):
                self._newest[kind] = mark = top
            if not fresh or len(page) < self.page_size:
                break
            cursor = newest(page) or cursor
        return out

    def _before(self, kind: Kind, mark: Mark) -> Mark | None:
        """The newest known record of ``kind`` created before ``mark``."""
        if mark.when is None:
            return None
        older = [
            r
            for r in self._runs.values()
            if r.created_at is not None
            and r.created_at < mark.when
            and not r.deleted
            and self._kind(r) is kind
        ]
        best = max(older, key=lambda r: r.created_at or FLOOR, default=None)
        return Mark(best.id, best.created_at) if best else None

    def _check_gone(
        self, kind: Kind, page: list[Any], *, complete: bool, after: datetime | None = None
    ) -> None:
        """Finished runs a page should hold but does not: they are asked for by id (a
        404 there marks them deleted). A full newest-first page vouches only for the
        span it covers; a short one for everything (created ``after``, if given)."""
        floor = oldest(page)
        listed = set(self._ids(page))
        for run in self._runs.values():
            if run.deleted or run.status.is_active or run.id in listed or self._kind(run) != kind:
                continue
            if run.id in self._vouched:
                continue
            if after is not None and (run.created_at is None or run.created_at <= after):
                continue
            if complete or (
                floor is not None
                and floor.when is not None
                and run.created_at is not None
                and run.created_at > floor.when
            ):
                self._suspects.add(run.id)

    async def _active(self, kind: Kind, errors: list[RecordError]) -> list[Any]:
        """Every record of ``kind`` Letta still calls active, in one request: what
        changed among them comes back here; one that is missing has finished."""
        params: dict[str, Any] = {"order": "desc", "limit": ACTIVE_LIMIT}
        if kind is Kind.RUN:
            params["statuses"] = list(ACTIVE_STATUSES)
        if kind is not Kind.BATCH:  # the batch list is active-only already
            params["active"] = "true"
        return await self._page(kind, params, errors) or []

    async def poll(self, first: bool) -> list[Run | RecordError]:
        errors: list[RecordError] = []
        raws: list[tuple[Kind, Any]] = []
        for kind in self.watch:
            if kind in self._missing:
                continue
            if kind is Kind.BATCH:
                got = await self._active(kind, errors)  # Letta lists only active batches
            elif first or kind not in self._newest:
                got = await self._recent(kind, errors)
            else:
                got = await self._new_since(kind, errors)
                if any(self._kind(r) is kind for r in self.active_runs()):
                    got += await self._active(kind, errors)
            raws += [(kind, raw) for raw in got]
        items: list[Run | RecordError] = [self.parse_safely(raw, k.value) for k, raw in raws]
        runs = [r for r in items if isinstance(r, Run)]
        if first and len(runs) > self.max_runs:
            runs.sort(key=lambda r: r.created_at or FLOOR, reverse=True)
            runs = runs[: self.max_runs]
        seen = {r.id for r in runs}
        watched = [k for k in self.watch if k not in self._missing]
        stale = [r for r in self.active_runs() if r.id not in seen and self._kind(r) in watched]
        suspects = [self._runs[i] for i in sorted(self._suspects) if i in self._runs]
        self._suspects.clear()
        refreshed = await self.reread([*stale, *suspects], self._reread_one)
        self._vouched.update(r.id for r in refreshed if isinstance(r, Run) and not r.deleted)
        bad = [e for e in items if isinstance(e, RecordError)]
        # Error rows first: they get the lower revisions, so even a change set cut
        # short by a limit carries them.
        out = [*errors, *bad, *runs, *refreshed]
        return sorted(out, key=lambda item: isinstance(item, Run))

    async def _reread_one(self, run: Run) -> Run | RecordError:
        """One record that was active, as Letta has it now (a run has no
        ``updated_at`` to list changes by)."""
        kind = self._kind(run)
        return self.parse_safely(await self._get_raw(kind, run.id), kind.value)

    async def _get_raw(self, kind: Kind, run_id: str) -> Any:
        response = await self.api.request("GET", self._one_path(kind, run_id))
        what = f"{kind.value} {short(run_id, 80)}"
        self.raise_for(response, doing=f"reading {what}", not_found=f"Letta has no {what}")
        return decode_json(response, self.name)

    async def fetch(self, run: Run | None, run_id: str) -> Run:
        kind = self._kind(run) if run else kind_of_id(run_id)
        raw = await self._get_raw(kind or Kind.RUN, run_id)
        parsed = self.parse_safely(raw, (kind or Kind.RUN).value)
        if isinstance(parsed, RecordError):
            raise SourceError(f"{self.name}: {parsed.message}")
        return parsed

    # -- abort ----------------------------------------------------------------------

    def _refused(self, response: httpx.Response, run: Run) -> None:
        """Letta's own refusal as :class:`TransitionRefused`; outages as errors."""
        if response.status_code == 501:  # "Batch job cancellation is not enabled"
            said = error_message(response) or "HTTP 501"
            raise TransitionRefused(
                f"Letta could not cancel {run.id}: {said} (Letta may still mark it cancelled)"
            )
        self.raise_for(
            response,
            doing=f"cancelling {run.id}",
            not_found=f"Letta has no {self._kind(run).value} {run.id}",
            refusal=f"Letta refused to cancel {run.id}",
        )

    async def remote_abort(self, run: Run, by: str) -> str:
        kind = self._kind(run)
        rid = quote(run.id, safe="")
        if kind is Kind.RUN:
            agent = run.job  # the run's agent_id (see parse_record)
            if not agent:
                raise TransitionRefused(
                    f"cannot abort {run.id}: Letta cancels a run through its agent, "
                    "and this run names no agent_id"
                )
            path = f"{self.prefix}/agents/{quote(agent, safe='')}/messages/cancel"
            response = await self.api.request("POST", path, json={"run_ids": [run.id]})
            self._refused(response, run)
            body = decode_json(response, self.name)
            said = body.get(run.id) if isinstance(body, dict) else None
            if said == "failed":
                raise TransitionRefused(f"Letta could not cancel {run.id}: it answered 'failed'")
            return (
                f"Letta cancelled {run.id}"
                if said == "cancelled"
                else f"asked Letta to cancel {run.id}"
            )
        if kind is Kind.JOB:
            path = f"{self.prefix}/jobs/{rid}/cancel"
        else:
            path = f"{self.prefix}/messages/batches/{rid}/cancel"
        response = await self.api.request("PATCH", path)
        self._refused(response, run)
        if decode_json(response, self.name) is False:  # Letta's answer for a finished job
            raise TransitionRefused(
                f"Letta refused to cancel {run.id}: it answered false (already finished)"
            )
        return f"Letta cancelled {run.id}"

    # -- logs -----------------------------------------------------------------------

    async def fetch_logs(self, run: Run, after: int) -> list[LogLine] | None:
        kind = self._kind(run)
        fallback = run.created_at or datetime.now(UTC)
        if kind is Kind.JOB:
            if after >= 1:
                return []
            return [
                LogLine(run_id=run.id, seq=1, ts=fallback, stream="jobwatch", text=JOB_LOG_NOTE)
            ]
        rid = quote(run.id, safe="")
        if kind is Kind.RUN:
            path, envelope = f"{self.prefix}/runs/{rid}/messages", None
        else:
            path, envelope = f"{self.prefix}/messages/batches/{rid}/messages", "messages"
        pos = self._log_pos.get(run.id)
        cursor, seq = (pos[1], pos[0]) if pos and after > 0 and pos[0] == after else (None, 0)
        lines: list[LogLine] = []

        def emit(stream: str, level: str, ts: datetime | None, text: str) -> None:
            nonlocal seq
            seq += 1
            if seq > after:
                lines.append(
                    LogLine(
                        run_id=run.id,
                        seq=seq,
                        ts=ts or fallback,
                        stream=stream,
                        level=LogLevel.of(level),
                        # Messages are conversations: people's addresses are masked.
                        text=mask_email(cap_text(clean(text))) if text else "",
                    )
                )

        for _ in range(MAX_LOG_PAGES):
            params: dict[str, Any] = {"order": "asc", "limit": self.page_size}
            if cursor:
                params["after"] = cursor
            response = await self.api.request("GET", path, params=params)
            self.raise_for(response, doing=f"reading the messages of {run.id}")
            body = decode_json(response, self.name)
            page = body.get(envelope) if envelope and isinstance(body, dict) else body
            if page is None:
                break
            if not isinstance(page, list):
                emit("letta", "error", None, f"Letta sent {type(page).__name__}, not messages")
                break
            ids: list[str] = []
            for msg in page:
                for line in message_lines(msg):
                    emit(*line)
                if isinstance(msg, dict) and isinstance(msg.get("id"), str):
                    ids.append(msg["id"])
            if ids:
                cursor = ids[-1]
            # A page holds up to `limit` stored messages; one may show as several.
            if not ids or len(set(ids)) < self.page_size:
                break
        if cursor:
            self._log_pos[run.id] = (seq, cursor)
        return lines
