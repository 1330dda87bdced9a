"""A stand-in of the Modzy jobs API, built from the documented payloads.

Routes (under ``/api``): ``GET jobs/history`` (bare JSON array, ``Link: <…>;
rel="next"``, ``page``/``per-page``/``sort-by``/``direction``/``startDate``/
``endDate``/``status``), ``GET`` and ``DELETE jobs/{id}`` and
``GET results/{id}``. Errors use Modzy's body ``{statusCode, status, message,
reportErrorUrl}`` (sdk-go ``ModzyHTTPError``). The state is plain data so a test
can change a job between polls; requests are recorded and faults injected by
:class:`~standins.base.StandIn`.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobwatch.core import Status
from jobwatch.sources.vendors.modzy import ModzyConfig
from standins.base import StandIn
from standins.contract import Seeded, VendorUpstream
from standins.server import Seen

API_KEY = "mdz-test.0123456789abcdefABCDEF"
"""The key the stand-in accepts (``Authorization: ApiKey <key>``)."""

PENDING = {"SUBMITTED", "PENDING", "IN_PROGRESS", "OPEN"}
TERMINATED = {"COMPLETED", "CANCELED", "TIMEDOUT", "ERROR"}
CANCELABLE = {"SUBMITTED", "PENDING", "IN_PROGRESS"}


def stamp(when: datetime) -> str:
    """Modzy's own time format: ``2021-07-20T01:40:11.187+0000``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def read_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def error(status: int, title: str, message: str, **headers: str) -> JSONResponse:
    body = {
        "statusCode": status,
        "status": title,
        "message": message,
        "reportErrorUrl": "https://example.invalid/report",
    }
    return JSONResponse(body, status_code=status, headers=headers or None)


@dataclass(eq=False)
class ModzyStandIn(StandIn):
    """The mutable state of one Modzy instance and its Starlette ``app``."""

    UNAUTHORIZED = "The API key is missing or misspelled"
    THROTTLED = "rate limit exceeded"

    api_key: str = API_KEY
    page_base: int = 1
    """Whether ``page`` counts from 0 or 1 (unconfirmed: both are served)."""
    link_header: bool = True
    team_id: str | None = None
    link_base: str | None = None
    """Another origin to put in next-page links (a hostile or misconfigured proxy)."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw_history: list[Any] = field(default_factory=list)
    """Extra items appended to every history answer (malformed records)."""
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2))

    # -- state helpers for tests -----------------------------------------------------

    def tick(self, seconds: float = 120.0) -> datetime:
        """Each event two minutes after the last, so polls can tell them apart."""
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def add_job(self, status: str = "IN_PROGRESS", **fields: Any) -> dict[str, Any]:
        """A job in the documented shape (seed + sdk JobDetails), newest so far."""
        created = self.tick()
        total = fields.pop("total", 3)
        done = status in TERMINATED
        job: dict[str, Any] = {
            "jobIdentifier": str(uuid.uuid4()),
            "submittedBy": "jU7q896uSReJcXXDOS6P",
            "accountIdentifier": "acc-7d1e",
            "model": {"identifier": "ed542963de", "version": "1.0.1", "name": "Sentiment"},
            "status": status,
            "createdAt": stamp(created),
            "updatedAt": stamp(created),
            "submittedAt": stamp(created),
            "total": total,
            "pending": 0 if done else total,
            "completed": total if done else 0,
            "failed": 0,
            "elapsedTime": 4200 if done else 0,
            "queueTime": 800,
            "timeout": 600000,
            "explain": False,
            "user": {
                "identifier": "usr-55aa",
                "externalIdentifier": "ext-1",
                "firstName": "Sarah",
                "lastName": "Connor",
                "email": "sarah.connor@example.com",
                "accessKeys": [{"prefix": "jU7q896uSReJcXXDOS6P", "isDefault": True}],
                "status": "ACTIVE",
                "title": "Analyst",
            },
            "team": {"identifier": "team-9"},
            "jobInputs": [{"identifier": f"input-{i}"} for i in range(total)],
            "inputByteAmount": 12345,
            "imageClassificationModel": False,
            "hoursDeleteInput": 24,
        }
        job.update(fields)
        self.jobs[job["jobIdentifier"]] = job
        return job

    def commit_late(self, status: str = "COMPLETED", *, back: float = 90.0) -> dict[str, Any]:
        """A job that shows up only now, created and updated ``back`` seconds before
        the newest change already listed (its transaction committed late)."""
        job = self.add_job(status)
        self.clock -= timedelta(seconds=120)  # add_job moved the clock: undo that
        when = stamp(self.clock - timedelta(seconds=back))
        job["createdAt"] = job["updatedAt"] = job["submittedAt"] = when
        return job

    def update(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Change a job as Modzy would, moving its ``updatedAt`` on."""
        job = self.jobs[job_id]
        job.update(fields)
        job["updatedAt"] = stamp(self.tick())
        return job

    def history_calls(self) -> list[Seen]:
        return [s for s in self.requests if s.path == "/api/jobs/history"]

    # -- the app ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            self.route("/api/jobs/history", self.history),
            self.route("/api/jobs/{job_id}", self.job, ["GET", "DELETE"]),
            self.route("/api/results/{job_id}", self.result),
        ]

    def error(self, request: Request, status: int, message: str) -> Response:
        return error(status, HTTPStatus(status).phrase, message)

    def authorized(self, request: Request) -> bool:
        """``ApiKey <key>``, or a team token as ``Bearer`` with ``Modzy-Team-Id``."""
        auth = request.headers.get("authorization", "")
        if self.team_id is not None:
            team = request.headers.get("modzy-team-id")
            return auth == f"Bearer {self.api_key}" and team == self.team_id
        return auth == f"ApiKey {self.api_key}"

    # -- routes ---------------------------------------------------------------------

    async def history(self, request: Request) -> Response:
        q = request.query_params
        if "startDate" not in q:
            return error(400, "Bad Request", "startDate is required")
        try:
            start = read_time(q["startDate"])
            end = read_time(q["endDate"]) if "endDate" in q else None
            page = int(q.get("page", self.page_base))
            per_page = int(q.get("per-page", 10))
        except ValueError as exc:
            return error(400, "Bad Request", f"invalid parameter: {exc}")
        jobs = [j for j in self.jobs.values() if read_time(j["createdAt"]) >= start]
        if end is not None:
            jobs = [j for j in jobs if read_time(j["createdAt"]) <= end]
        wanted = q.get("status", "ALL").upper()
        if wanted == "PENDING":
            jobs = [j for j in jobs if j["status"] in PENDING]
        elif wanted == "TERMINATED":
            jobs = [j for j in jobs if j["status"] in TERMINATED]
        elif wanted != "ALL":
            jobs = [j for j in jobs if j["status"] == wanted]
        sort = q.get("sort-by", "createdAt").split(",")[0]
        jobs.sort(key=lambda j: (str(j.get(sort, "")), j["jobIdentifier"]))
        if q.get("direction", "ASC").upper() == "DESC":
            jobs.reverse()
        jobs += self.raw_history
        index = max(0, page - self.page_base)
        chunk = jobs[index * per_page : (index + 1) * per_page]
        headers = {}
        if self.link_header and (index + 1) * per_page < len(jobs):
            url = request.url.include_query_params(page=page + 1)
            if self.link_base is not None:
                url = url.replace(netloc=self.link_base)
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse(copy.deepcopy(chunk), headers=headers)

    async def job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return error(404, "Not Found", "The job was not found")
        if request.method == "DELETE":
            if job["status"] not in CANCELABLE:
                return error(
                    400, "Bad Request", f"The job can't be canceled: it is {job['status']}"
                )
            self.update(job["jobIdentifier"], status="CANCELED")
        return JSONResponse(copy.deepcopy(job))

    async def result(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return error(404, "Not Found", "The job was not found")
        result = self.results.get(job_id)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(copy.deepcopy(result))

    def set_results(
        self,
        job_id: str,
        results: dict[str, Any],
        failures: dict[str, Any] | None = None,
        *,
        finished: bool = False,
    ) -> dict[str, Any]:
        """A ``/api/results`` answer in the sdk-go ``JobResults`` shape."""
        job = self.jobs[job_id]
        body = {
            "jobIdentifier": job_id,
            "accountIdentifier": job["accountIdentifier"],
            "team": job["team"],
            "total": job["total"],
            "completed": len(results),
            "failed": len(failures or {}),
            "finished": finished,
            "submittedByKey": job["submittedBy"],
            "explained": False,
            "submittedAt": job["submittedAt"],
            "initialQueueTime": 800,
            "totalQueueTime": 800,
            "averageModelLatency": 120.5,
            "totalModelLatency": 361.5,
            "elapsedTime": 4200,
            "startingResultSummarizing": job["submittedAt"],
            "resultSummarizing": 3,
            "inputSize": 120,
            "results": results,
            "failures": failures or {},
        }
        self.results[job_id] = body
        return body


def input_result(
    at: datetime, *, engine: str = "model-batch-ed542963de-1-0-1-0", elapsed: int = 120
) -> dict[str, Any]:
    """One input's result (sdk-go ``JobResult``; outputs sit beside the fields)."""
    return {
        "status": "SUCCESSFUL",
        "engine": engine,
        "inputFetching": 10,
        "outputUploading": None,
        "modelLatency": 100.0,
        "queueTime": 5,
        "startTime": stamp(at),
        "updateTime": stamp(at + timedelta(milliseconds=elapsed)),
        "endTime": stamp(at + timedelta(milliseconds=elapsed)),
        "elapsedTime": elapsed,
        "results.json": {"data": {"result": {"classPredictions": []}}},
        "voting": {"up": 0, "down": 0},
    }


def input_failure(at: datetime, message: str) -> dict[str, Any]:
    return {
        "status": "FAILED",
        "engine": "model-batch-ed542963de-1-0-1-0",
        "error": message,
        "startTime": stamp(at),
        "updateTime": stamp(at),
        "endTime": stamp(at),
        "elapsedTime": 3,
    }


# -- the contract suite's factory ------------------------------------------------------


class Contract(VendorUpstream):
    """Modzy's job history, for ``tests/integration/test_source_contract.py``."""

    kind = "modzy"
    standin: ModzyStandIn

    def make_standin(self) -> ModzyStandIn:
        return ModzyStandIn()

    def config(self, **common: Any) -> ModzyConfig:
        return ModzyConfig(kind="modzy", token=API_KEY, **common)

    async def seed(self, status: Status) -> Seeded:
        raw = self.word(status)
        return Seeded(self.standin.add_job(raw)["jobIdentifier"], status, raw)

    async def change(self, run: Seeded) -> Seeded:
        self.standin.update(run.id, status="COMPLETED", completed=3, pending=0, elapsedTime=4200)
        return Seeded(run.id, Status.SUCCEEDED, "COMPLETED")

    async def malform(self) -> str:
        shape = ModzyStandIn().add_job("COMPLETED")
        self.standin.raw_history.append(
            {**shape, "jobIdentifier": "bad-time", "createdAt": "yesterday-ish"}
        )
        return "bad-time"

    async def seed_log(self, run: Seeded) -> str:
        at = read_time(self.standin.jobs[run.id]["submittedAt"])
        self.standin.set_results(
            run.id,
            {"input-0": input_result(at + timedelta(seconds=1))},
            {"input-1": input_failure(at + timedelta(seconds=2), "Input text is empty")},
            finished=True,
        )
        return "input"

    async def aborted(self, run: Seeded) -> bool:
        return bool(self.standin.jobs[run.id]["status"] == "CANCELED")

    def abort_call(self, run: Seeded) -> tuple[str, str]:
        return ("DELETE", f"/api/jobs/{run.id}")
