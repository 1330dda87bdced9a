"""A stand-in for the Letta v1 REST API: runs, jobs, message batches.

Built from the documented payloads (``vendor-apis.md`` §2, the ``BatchJob`` seed
and letta-ai/letta's routers): bare JSON arrays for lists, ``before``/``after`` id
cursors "in the specified sort order", ``order`` (runs and jobs default ``desc``,
run messages ``asc``), ``statuses``/``active`` filters, errors as
``{"detail": ...}``, and the quirks: the batch list shows only created/running
batches, a job cancel on a finished job answers ``false``, a batch cancel answers
``null`` (or 501 after marking it cancelled when provider cancellation is off).

State is plain and mutable so a test can change runs between polls; requests are
recorded and faults injected by :class:`~standins.base.StandIn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobwatch.core import Status
from jobwatch.sources.vendors.letta import LettaConfig
from standins.base import Handler, StandIn
from standins.contract import Seeded, VendorUpstream

TOKEN = "letta-sk-test-0123456789abcdef"
EPOCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE = ("created", "running")
TERMINAL = ("completed", "failed", "cancelled", "expired")


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass(eq=False)
class LettaStandIn(StandIn):
    UNAUTHORIZED = "Unauthorized"
    THROTTLED = "Rate limit exceeded"

    token: str = TOKEN
    runs: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    """Jobs and batches: Letta keeps both in its jobs table (``job_type``)."""
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Run id → its ``LettaMessage`` objects, oldest first."""
    batch_messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Batch id → stored ``Message`` objects, oldest first."""
    track_agent_run: bool = True
    """Letta's ``track_agent_run`` setting: off, every cancel answers 400."""
    provider_batch_cancel: bool = True
    """Off: a batch cancel marks the batch cancelled, then answers 501 (as Letta does)."""
    gone: set[str] = field(default_factory=set)
    """Paths this server does not serve: they answer 404 like FastAPI's router."""
    strict_cursors: bool = False
    """On: an ``after`` cursor naming no record answers 404 (unconfirmed for Letta;
    by default an unknown cursor is ignored)."""
    oss_paging: bool = False
    """On: page as the open-source Letta server does, not as the docs and the SDK say.
    ``/v1/runs/`` reads ``after``/``before`` the other way round (``after=X`` gives
    the records *before* X in the sort order, from the start of the list, and
    ``before=X`` those after it); ``/v1/jobs/`` lists oldest first whatever
    ``order`` asks, ``after=X`` giving the jobs created after X."""
    _serial: int = 0

    # -- building records --------------------------------------------------------------

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def new_id(self, prefix: str) -> str:
        n = self._next()
        return f"{prefix}-{n:08x}-0000-4000-8000-{n:012x}"

    def add_run(self, status: str = "running", **fields: Any) -> dict[str, Any]:
        """A ``Run`` with every field the schema has (``letta/schemas/run.py``)."""
        n = self._serial + 1
        created = EPOCH + timedelta(minutes=n)
        done = status in TERMINAL
        record: dict[str, Any] = {
            "id": self.new_id("run"),
            "agent_id": "agent-7f3c2a10-1111-4000-8000-000000000001",
            "background": True,
            "base_template_id": None,
            "callback_error": None,
            "callback_sent_at": None,
            "callback_status_code": None,
            "callback_url": None,
            "completed_at": iso(created + timedelta(seconds=42)) if done else None,
            "conversation_id": None,
            "created_at": iso(created),
            "metadata": {"run_type": "send_message_async", "lettuce": False},
            "request_config": {
                "use_assistant_message": True,
                "assistant_message_tool_name": "send_message",
                "assistant_message_tool_kwarg": "message",
                "include_return_message_types": None,
            },
            "status": status,
            "stop_reason": "end_turn" if status == "completed" else None,
            "total_duration_ns": 42_000_000_000 if done else None,
            "ttft_ns": 850_000_000,
        }
        record.update(fields)
        self.runs.append(record)
        return record

    def add_job(self, status: str = "running", job_type: str = "job", **fields: Any) -> dict:
        """A ``Job``/``BatchJob`` with exactly the seed schema's fields."""
        n = self._serial + 1
        created = EPOCH + timedelta(minutes=n)
        done = status in TERMINAL
        record: dict[str, Any] = {
            "created_by_id": "user-00000000-0000-4000-8000-000000000000",
            "last_updated_by_id": "user-00000000-0000-4000-8000-000000000000",
            "created_at": iso(created),
            "updated_at": iso(created + timedelta(seconds=5)),
            "status": status,
            "completed_at": iso(created + timedelta(seconds=30)) if done else None,
            "stop_reason": None,
            "metadata": {"job_type": "batch_messages"} if job_type == "batch" else {},
            "job_type": job_type,
            "background": None,
            "agent_id": None,
            "callback_url": None,
            "callback_sent_at": None,
            "callback_status_code": None,
            "callback_error": None,
            "ttft_ns": None,
            "total_duration_ns": None,
            "id": self.new_id("job"),
        }
        record.update(fields)
        self.jobs.append(record)
        return record

    def find(self, rows: list[Any], rid: str) -> dict[str, Any] | None:
        return next((r for r in rows if isinstance(r, dict) and r.get("id") == rid), None)

    # -- the app -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        p, on = "/v1", self._cursors
        return [
            self.route(f"{p}/runs/", on(self.list_runs)),
            self.route(f"{p}/runs/{{rid}}", self.get_run),
            self.route(f"{p}/runs/{{rid}}/messages", self.run_messages),
            self.route(f"{p}/agents/{{aid}}/messages/cancel", self.cancel_runs, ["POST"]),
            self.route(f"{p}/jobs/", on(self.list_jobs)),
            self.route(f"{p}/jobs/{{rid}}", self.get_job),
            self.route(f"{p}/jobs/{{rid}}/cancel", self.cancel_job, ["PATCH"]),
            self.route(f"{p}/messages/batches", on(self.list_batches)),
            self.route(f"{p}/messages/batches/{{rid}}", self.get_batch),
            self.route(f"{p}/messages/batches/{{rid}}/messages", self.batch_msgs),
            self.route(f"{p}/messages/batches/{{rid}}/cancel", self.cancel_batch, ["PATCH"]),
        ]

    def error(self, request: Request, status: int, message: str) -> Response:
        return JSONResponse({"detail": message}, status)  # FastAPI's HTTPException body

    def authorized(self, request: Request) -> bool:
        """Letta Cloud's bearer token, or a self-hosted server's password header."""
        bearer = request.headers.get("authorization", "")
        bare = request.headers.get("x-bare-password", "")
        return bearer == f"Bearer {self.token}" or bare == f"password {self.token}"

    def gate(self, request: Request) -> Response | None:
        if request.url.path in self.gone:  # FastAPI's router answers before any auth
            return self.error(request, 404, "Not Found")
        return super().gate(request)

    def _cursors(self, handler: Handler) -> Handler:
        """A list whose ``after`` cursor names no record (strict servers) is a 404."""

        async def listing(request: Request) -> Response:
            try:
                return await handler(request)
            except LookupError as gone:
                return self.error(request, 404, f"Cursor {gone} not found")

        return listing

    def _window(
        self, rows: list[Any], request: Request, default_order: str = "desc", which: str = ""
    ) -> list:
        """Sort by creation, then the ``after``/``before`` cursors and ``limit``."""
        q = request.query_params
        order = q.get("order", default_order)
        if self.oss_paging and which == "jobs":
            order = "asc"  # chronological, whatever was asked
        ordered = sorted(
            rows,
            key=lambda r: (
                (str(r.get("created_at", "")), str(r.get("id", "")))
                if isinstance(r, dict)
                else ("", "")
            ),
            reverse=order == "desc",
        )
        ids = [r.get("id") if isinstance(r, dict) else None for r in ordered]
        swapped = self.oss_paging and which == "runs"
        after, before = q.get("after"), q.get("before")
        if swapped:
            after, before = before, after
        if after is not None and after in ids:
            ordered = ordered[ids.index(after) + 1 :]
        elif after is not None and self.strict_cursors:
            raise LookupError(after)
        if before is not None and before in ids:
            ordered = ordered[: ids.index(before)]
        elif before is not None and self.strict_cursors:
            raise LookupError(before)
        return ordered

    def delete(self, rid: str) -> None:
        """Delete a run, job or batch (``DELETE /v1/runs/{id}`` and the like)."""
        self.runs[:] = [r for r in self.runs if not (isinstance(r, dict) and r.get("id") == rid)]
        self.jobs[:] = [j for j in self.jobs if not (isinstance(j, dict) and j.get("id") == rid)]

    @staticmethod
    def _limit(request: Request, default: int = 100) -> int:
        return int(request.query_params.get("limit", default))

    @staticmethod
    def _status_filter(rows: list[Any], statuses: list[str]) -> list[Any]:
        if not statuses:
            return rows
        return [r for r in rows if not isinstance(r, dict) or r.get("status") in statuses]

    async def list_runs(self, request: Request) -> Response:
        q = request.query_params
        statuses = q.getlist("statuses")
        if not statuses and q.get("active") == "true":
            statuses = list(ACTIVE)
        rows = self._window(self.runs, request, which="runs")
        rows = self._status_filter(rows, statuses)
        if agent := q.get("agent_id"):
            rows = [r for r in rows if not isinstance(r, dict) or r.get("agent_id") == agent]
        return JSONResponse(rows[: self._limit(request)])

    async def get_run(self, request: Request) -> Response:
        run = self.find(self.runs, request.path_params["rid"])
        if run is None:
            return JSONResponse({"detail": "Run not found"}, 404)
        return JSONResponse(run)

    async def run_messages(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        if self.find(self.runs, rid) is None:
            return JSONResponse({"detail": f"Run with id={rid} not found"}, 404)
        return JSONResponse(self._messages(self.messages.get(rid, []), request, "asc"))

    def _messages(self, msgs: list[dict[str, Any]], request: Request, order: str) -> list:
        """Message cursors; ``limit`` counts stored messages, and one stored message
        can show as several LettaMessages sharing its id."""
        q = request.query_params
        rows = list(msgs) if q.get("order", order) == "asc" else list(reversed(msgs))
        if (after := q.get("after")) is not None:
            last = max((i for i, m in enumerate(rows) if m.get("id") == after), default=-1)
            rows = rows[last + 1 :]
        out: list[dict[str, Any]] = []
        kept: list[str] = []
        for m in rows:
            if m["id"] not in kept:
                if len(kept) == self._limit(request):
                    break
                kept.append(m["id"])
            out.append(m)
        return out

    async def cancel_runs(self, request: Request) -> Response:
        if not self.track_agent_run:
            return JSONResponse({"detail": "Agent run tracking is disabled"}, 400)
        agent = request.path_params["aid"]
        raw = await request.body()
        body = json.loads(raw) if raw else None
        run_ids = (body or {}).get("run_ids") or [
            r["id"] for r in self.runs if r.get("agent_id") == agent and r["status"] in ACTIVE
        ]
        if not run_ids:
            return JSONResponse({"detail": f"No active runs found for agent {agent}"}, 409)
        results: dict[str, str] = {}
        for rid in run_ids:
            run = self.find(self.runs, rid)
            if run is None or run.get("agent_id") != agent or run["status"] not in ACTIVE:
                results[rid] = "failed"
                continue
            run.update(
                status="cancelled", stop_reason="cancelled", completed_at=iso(datetime.now(UTC))
            )
            results[rid] = "cancelled"
        return JSONResponse(results)

    def _jobs(self, job_type: str) -> list[Any]:
        return [j for j in self.jobs if not isinstance(j, dict) or j.get("job_type") == job_type]

    async def list_jobs(self, request: Request) -> Response:
        rows = self._window(self._jobs("job"), request, which="jobs")
        if request.query_params.get("active") == "true":
            rows = self._status_filter(rows, list(ACTIVE))
        return JSONResponse(rows[: self._limit(request)])

    async def get_job(self, request: Request) -> Response:
        job = self.find(self.jobs, request.path_params["rid"])
        if job is None:
            return JSONResponse({"detail": "Job not found"}, 404)
        return JSONResponse(job)

    async def cancel_job(self, request: Request) -> Response:
        if not self.track_agent_run:
            return JSONResponse({"detail": "Agent run tracking is disabled"}, 400)
        job = self.find(self.jobs, request.path_params["rid"])
        if job is None:
            return JSONResponse({"detail": "Job not found"}, 404)
        if job["status"] in TERMINAL:
            return JSONResponse(False)
        now = iso(datetime.now(UTC))
        job.update(status="cancelled", completed_at=now, updated_at=now)
        return JSONResponse(job)

    async def list_batches(self, request: Request) -> Response:
        # Quirk: Letta always filters this list to created/running batches.
        rows = self._status_filter(self._window(self._jobs("batch"), request), list(ACTIVE))
        return JSONResponse(rows[: self._limit(request)])

    async def get_batch(self, request: Request) -> Response:
        batch = self.find(self._jobs("batch"), request.path_params["rid"])
        if batch is None:
            return JSONResponse({"detail": "Job not found"}, 404)
        return JSONResponse(batch)

    async def batch_msgs(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        if self.find(self._jobs("batch"), rid) is None:
            return JSONResponse({"detail": "Job not found"}, 404)
        msgs = self._messages(self.batch_messages.get(rid, []), request, "desc")
        return JSONResponse({"messages": msgs})

    async def cancel_batch(self, request: Request) -> Response:
        batch = self.find(self._jobs("batch"), request.path_params["rid"])
        if batch is None:
            return JSONResponse({"detail": "Job not found"}, 404)
        now = iso(datetime.now(UTC))
        batch.update(status="cancelled", completed_at=now, updated_at=now)
        if not self.provider_batch_cancel:
            return JSONResponse({"detail": "Batch job cancellation is not enabled"}, 501)
        return JSONResponse(None)


# -- documented message shapes ---------------------------------------------------------


def letta_messages(run_id: str, agent_id: str) -> list[dict[str, Any]]:
    """A short agent turn as ``GET /v1/runs/{id}/messages`` returns it."""
    t = EPOCH + timedelta(minutes=30)
    base = {"run_id": run_id, "otid": None, "sender_id": None, "step_id": "step-1", "name": None}

    def at(s: int) -> str:
        return iso(t + timedelta(seconds=s))

    return [
        {
            **base,
            "id": "message-00000001",
            "date": at(0),
            "message_type": "user_message",
            "content": "What is the weather in Paris?\nPlease be brief.",
        },
        {
            **base,
            "id": "message-00000002",
            "date": at(1),
            "message_type": "reasoning_message",
            "reasoning": "The user wants the weather; call the tool.",
            "source": "reasoner_model",
        },
        {
            **base,
            "id": "message-00000002",
            "date": at(1),
            "message_type": "tool_call_message",
            "tool_call": {
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
                "tool_call_id": "call-1",
            },
        },
        {
            **base,
            "id": "message-00000003",
            "date": at(2),
            "message_type": "tool_return_message",
            "status": "error",
            "tool_call_id": "call-1",
            "tool_return": "weather API answered 401: Bearer abcdEFGH1234secret rejected",
            "stdout": ["fetching https://api.weather.example/v1?key=WEATHERKEY123"],
            "stderr": ["HTTP 401"],
        },
        {
            **base,
            "id": "message-00000004",
            "date": at(3),
            "message_type": "assistant_message",
            "content": [{"type": "text", "text": "I could not reach the weather service."}],
        },
    ]


def batch_messages(agent_id: str) -> list[dict[str, Any]]:
    """Stored ``Message`` objects, as ``GET /v1/messages/batches/{id}/messages`` has them."""
    t = EPOCH + timedelta(minutes=40)
    return [
        {
            "id": f"message-b000000{i}",
            "role": role,
            "content": [{"type": "text", "text": text}],
            "agent_id": agent_id,
            "created_at": iso(t + timedelta(seconds=i)),
            "tool_calls": None,
        }
        for i, (role, text) in enumerate(
            [("user", "Summarize the report."), ("assistant", "The report says revenue grew.")],
            start=1,
        )
    ]


# -- the contract suite's factory ------------------------------------------------------

AGENT = "agent-7f3c2a10-1111-4000-8000-000000000001"


class Contract(VendorUpstream):
    """Letta agent runs, for ``tests/integration/test_source_contract.py``."""

    kind = "letta"
    standin: LettaStandIn

    def make_standin(self) -> LettaStandIn:
        return LettaStandIn()

    def config(self, **common: Any) -> LettaConfig:
        return LettaConfig(kind="letta", token=TOKEN, **common)

    async def seed(self, status: Status) -> Seeded:
        raw = self.word(status)
        record = self.standin.add_run(raw)
        return Seeded(record["id"], status, raw)

    async def change(self, run: Seeded) -> Seeded:
        record = self.standin.find(self.standin.runs, run.id)
        assert record is not None
        done = iso(datetime.now(UTC))
        record.update(status="completed", stop_reason="end_turn", completed_at=done)
        return Seeded(run.id, Status.SUCCEEDED, "completed")

    async def malform(self) -> str:
        self.standin.runs.append({"id": "run-0badda7e", "created_at": "yesterday-ish"})
        return "run-0badda7e"

    async def seed_log(self, run: Seeded) -> str:
        self.standin.messages[run.id] = letta_messages(run.id, AGENT)
        return "weather"

    async def aborted(self, run: Seeded) -> bool:
        record = self.standin.find(self.standin.runs, run.id)
        return record is not None and record["status"] == "cancelled"

    def abort_call(self, run: Seeded) -> tuple[str, str]:
        return ("POST", f"/v1/agents/{AGENT}/messages/cancel")
