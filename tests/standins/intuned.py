"""A stand-in of the Intuned job-runs API, built from the documented payloads.

Routes (under ``/api/v1/workspace/{workspaceId}/projects/{projectName}``):

* ``GET  /jobs/{jobId}/runs?pageSize=&pageNumber=&sortBy=`` → ``{"jobRuns", "totalCount"}``
  (0-based pages, ``sortBy`` as ``field,dir`` pairs joined by ``/``; no filters);
* ``GET  /jobs/{jobId}/runs/{jobRunId}`` → ``{"jobRun", "results"?}``;
* ``POST /jobs/{jobId}/runs/{jobRunId}/terminate`` → ``{"message": "JobRun terminated
  successfully."}``.

Errors use Intuned's error body ``{code, category, message, retirable, correlationId}``.
The ``x-api-key`` header is checked (401 otherwise). Records are snake_case with
camelCase inside the snapshot, as on the wire. State is plain mutable data so tests
can change runs between polls; requests are recorded and faults injected by
:class:`~standins.base.StandIn`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobwatch.core import Status
from jobwatch.sources.vendors.intuned import IntunedConfig
from standins.base import StandIn
from standins.contract import Seeded, VendorUpstream

WORKSPACE = "5b6a1e0c-2f41-4c1e-9a57-0d3f3c1b9e11"
PROJECT = "shop-scraper"
PROJECT_ID = "8c3f5a2e-7d14-4b0a-a2f6-5e9d1c7b3a20"
API_KEY = "in-test-key-3f9a7c21d8e4"

# Credentials planted in the snapshots and results: none may reach a Run.
S3_ACCESS_KEY_ID = "AKIAJOBWATCHTEST0001"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYjobwatchS3"
WEBHOOK_BEARER = "whk-live-9d8c7b6a5f4e"
WEBHOOK_QUERY_TOKEN = "hooktok-1a2b3c4d5e"
PROXY_PASSWORD = "proxy-pass-77e1"
SIGNATURE = "sig-0f1e2d3c4b5a69788796"
SECRETS = (
    API_KEY,
    S3_ACCESS_KEY_ID,
    S3_SECRET,
    WEBHOOK_BEARER,
    WEBHOOK_QUERY_TOKEN,
    PROXY_PASSWORD,
    SIGNATURE,
)

ACTIVE = frozenset({"PENDING", "PAUSED", "PAUSING", "RESUMING"})
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_sink() -> dict[str, Any]:
    return {
        "type": "s3",
        "bucket": "my-s3-bucket",
        "accessKeyId": S3_ACCESS_KEY_ID,
        "secretAccessKey": S3_SECRET,
        "region": "us-west-2",
        "prefix": "runs/",
        "skipOnFail": False,
        "endpoint": f"https://s3.example.com/?X-Amz-Signature={SIGNATURE}",
    }


def webhook_sink() -> dict[str, Any]:
    return {
        "type": "webhook",
        "url": f"https://hooks.example.com/intuned?token={WEBHOOK_QUERY_TOKEN}",
        "headers": {"Authorization": f"Bearer {WEBHOOK_BEARER}"},
        "skipOnFail": False,
    }


def job_run(
    run_id: str,
    *,
    job_id: str = "job-nightly",
    status: str = "SUCCESS",
    start: datetime | None = None,
    minutes: int | None = 30,
    run_type: str = "SCHEDULED",
    payloads: int | None = 100,
    successful: int | None = 100,
    failed: int | None = 0,
    error: dict[str, Any] | None = None,
    reason: dict[str, Any] | None = None,
    sink: str | None = "webhook",
    proxy: bool = False,
) -> dict[str, Any]:
    """A job run as the API sends it (the API reference example's shape)."""
    start = start or BASE_TIME
    end = start + timedelta(minutes=minutes) if minutes is not None else None
    snapshot: dict[str, Any] = {
        "configuration": {
            "retry": {"maximumAttempts": 3},
            "maxConcurrentRequests": 13,
            "requestTimeout": 600,
        },
        "sink": s3_sink() if sink == "s3" else webhook_sink() if sink == "webhook" else None,
        "auth_session": {"id": "auth-session-123", "checkAttempts": 3, "createAttempts": 3},
        "proxy": (
            {"version": "v1", "url": f"http://scraper:{PROXY_PASSWORD}@proxy.example.com:8080"}
            if proxy
            else None
        ),
    }
    record: dict[str, Any] = {
        "id": run_id,
        "start_time": iso(start),
        "end_time": iso(end) if end is not None else None,
        "workspace_id": WORKSPACE,
        "project_id": PROJECT_ID,
        "job_id": job_id,
        "created_at": iso(start - timedelta(seconds=5)),
        "updated_at": iso(end or start),
        "type": run_type,
        "status": status,
        "payloads": payloads,
        "successful_runs": successful,
        "failed_runs": failed,
        "job_configuration_snapshot": snapshot,
    }
    if error is not None:
        record["error"] = error
    if reason is not None:
        record["reason"] = reason
    return record


PAUSED_BY = "ops.lead@shop.example"
"""Who paused a run, as Intuned puts it in ``reason.details.pausedBy``."""


def paused_run(run_id: str, *, job_id: str = "job-nightly", by: str = PAUSED_BY) -> dict[str, Any]:
    """A job run paused by a person: Intuned names them by e-mail address."""
    return job_run(
        run_id,
        job_id=job_id,
        status="PAUSED",
        minutes=None,
        reason={
            "type": "user-request",
            "message": f"Paused by {by}",
            "details": {"pausedBy": by, "pausedAt": iso(BASE_TIME)},
        },
    )


def huge_error(characters: int = 204_800) -> dict[str, Any]:
    """An error whose message is a whole page dump (Intuned sends it as it is)."""
    text = ("<html><body>" + "lorem ipsum " * (characters // 12))[:characters]
    return {"code": "browser-crash", "message": text, "category": "user"}


def malformed(count: int, *, job_id: str = "job-nightly") -> list[Any]:
    """``count`` different records without an id (one readable, one not an object,
    and so on): each must be an error row of its own."""
    shapes: list[Any] = [
        {"status": "SUCCESS", "job_id": job_id, "start_time": "2024-01-01T00:00:00Z"},
        "not a record",
        {"status": "FAILURE", "job_id": job_id, "error": {"message": "no id here"}},
        42,
        {"status": "PENDING", "job_id": job_id, "payloads": 3},
    ]
    return [shapes[n % len(shapes)] for n in range(count)]


def api_error(status: int, code: str, message: str, category: str = "user") -> JSONResponse:
    """Intuned's error body (``docs/models/errors/*responsebody.md`` in the TS SDK)."""
    body = {
        "code": code,
        "category": category,
        "message": message,
        "retirable": False,
        "correlationId": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)


ERROR_CODES = {
    400: "invalid-input",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    409: "invalid-input",
    429: "rate-limited",
}


@dataclass(eq=False)
class IntunedStandIn(StandIn):
    """The server's state; ``app`` serves it."""

    UNAUTHORIZED = "The request requires user authentication"

    workspace_id: str = WORKSPACE
    project: str = PROJECT
    api_key: str = API_KEY
    jobs: dict[str, list[Any]] = field(default_factory=dict)
    """job id → its run records (anything JSON, so tests can plant broken ones)."""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, *records: dict[str, Any]) -> None:
        for record in records:
            self.jobs.setdefault(record["job_id"], []).append(record)
            if record["status"] not in ACTIVE:
                self.results[record["id"]] = {
                    "signed_url": (
                        f"https://my-s3-bucket.s3.amazonaws.com/results/{record['id']}.json"
                        f"?X-Amz-Expires=3600&X-Amz-Signature={SIGNATURE}"
                    ),
                    "signed_url_expiration": iso(BASE_TIME + timedelta(days=1)),
                    "size": 2048,
                    "key": f"results/{record['id']}.json",
                    "format": "json",
                }

    def find(self, job_id: str, run_id: str) -> dict[str, Any] | None:
        for record in self.jobs.get(job_id, []):
            if isinstance(record, dict) and record.get("id") == run_id:
                return record
        return None

    def update(self, run_id: str, **changes: Any) -> None:
        for records in self.jobs.values():
            for record in records:
                if isinstance(record, dict) and record.get("id") == run_id:
                    record.update(changes)
                    return
        raise KeyError(run_id)

    def paths(self, method: str = "GET") -> list[str]:
        return [seen.path for seen in self.requests if seen.method == method]

    # -- the app ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        prefix = "/api/v1/workspace/{workspace}/projects/{project}/jobs/{job}/runs"
        return [
            self.route(prefix, self._list),
            self.route(prefix + "/{run}", self._get),
            self.route(prefix + "/{run}/terminate", self._terminate, ["POST"]),
            self.route(
                "/api/v1/workspace/{workspace}/projects/{project}/jobs/{job}/trigger",
                self._trigger,
                ["POST"],
            ),
        ]

    def error(self, request: Request, status: int, message: str) -> Response:
        code = ERROR_CODES.get(status, "internal-server-error")
        category = "infrastructure" if status == 429 or status >= 500 else "user"
        return api_error(status, code, message, category)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    def gate(self, request: Request) -> Response | None:
        """Authenticate, then scope: an unknown workspace, project or job is a 404."""
        if (refused := super().gate(request)) is not None:
            return refused
        params = request.path_params
        if params["workspace"] != self.workspace_id or params["project"] != self.project:
            return api_error(404, "not-found", "The requested resource was not found")
        if params["job"] not in self.jobs:
            return api_error(404, "not-found", f"Job {params['job']} not found")
        return None

    async def _list(self, request: Request) -> Response:
        query = request.query_params
        try:
            size = int(query.get("pageSize", "10"))
            number = int(query.get("pageNumber", "0"))
        except ValueError:
            return api_error(400, "invalid-input", "pageSize and pageNumber must be numbers")
        if size < 1 or number < 0:
            return api_error(400, "invalid-input", "pageSize must be ≥ 1, pageNumber ≥ 0")
        records = list(self.jobs[request.path_params["job"]])
        for pair in reversed(query.get("sortBy", "start_time,desc").split("/")):
            name, _, direction = pair.partition(",")
            records.sort(
                key=lambda r, name=name: str(r.get(name) or "") if isinstance(r, dict) else "",
                reverse=direction.strip().lower() == "desc",
            )
        page = records[number * size : (number + 1) * size]
        return JSONResponse({"jobRuns": page, "totalCount": len(records)})

    async def _get(self, request: Request) -> Response:
        record = self.find(request.path_params["job"], request.path_params["run"])
        if record is None:
            return api_error(404, "not-found", "Job run not found")
        body: dict[str, Any] = {"jobRun": record}
        if record["id"] in self.results and record.get("status") not in ACTIVE:
            body["results"] = self.results[record["id"]]
        return JSONResponse(body)

    async def _trigger(self, request: Request) -> Response:
        """``POST …/jobs/{jobId}/trigger``: a new run of the job, ``{jobRunId, message}``."""
        job = request.path_params["job"]
        run_id = f"{job}-triggered-{len(self.jobs[job]) + 1}"
        self.add(job_run(run_id, job_id=job, status="PENDING", minutes=None, start=BASE_TIME))
        return JSONResponse({"jobRunId": run_id, "message": "Job triggered successfully."})

    async def _terminate(self, request: Request) -> Response:
        record = self.find(request.path_params["job"], request.path_params["run"])
        if record is None:
            return api_error(404, "not-found", "Job run not found")
        if record["status"] not in ACTIVE:
            return api_error(400, "invalid-input", f"Job run is {record['status']}, not active")
        now = iso(datetime.now(UTC))
        record.update(
            status="TERMINATED",
            end_time=now,
            updated_at=now,
            reason={"type": "terminated", "message": "The job run was terminated by the user."},
        )
        return JSONResponse({"message": "JobRun terminated successfully."})


# -- the contract suite's factory ------------------------------------------------------

CONTRACT_JOB = "job-contract"


class Contract(VendorUpstream):
    """Intuned job runs of one job, for ``tests/integration/test_source_contract.py``."""

    kind = "intuned"
    has_logs = False
    standin: IntunedStandIn

    def make_standin(self) -> IntunedStandIn:
        return IntunedStandIn(jobs={CONTRACT_JOB: []})

    def config(self, **common: Any) -> IntunedConfig:
        return IntunedConfig(
            kind="intuned",
            workspace_id=WORKSPACE,
            project=PROJECT,
            jobs=[CONTRACT_JOB],
            token=API_KEY,
            **common,
        )

    async def seed(self, status: Status) -> Seeded:
        n = len(self.standin.jobs[CONTRACT_JOB]) + 1
        raw, failed = self.word(status), status is Status.FAILED
        record = job_run(
            f"ir-{n:03d}",
            job_id=CONTRACT_JOB,
            status=raw,
            start=BASE_TIME + timedelta(minutes=n),
            minutes=30 if status.is_terminal else None,
            error={"code": "browser-crash", "message": "crashed"} if failed else None,
        )
        self.standin.add(record)
        return Seeded(record["id"], status, raw)

    async def change(self, run: Seeded) -> Seeded:
        now = iso(datetime.now(UTC))
        self.standin.update(run.id, status="SUCCESS", end_time=now, updated_at=now)
        return Seeded(run.id, Status.SUCCEEDED, "SUCCESS")

    async def malform(self) -> None:
        self.standin.jobs[CONTRACT_JOB].append({"status": "SUCCESS", "start_time": iso(BASE_TIME)})

    async def aborted(self, run: Seeded) -> bool:
        record = self.standin.find(CONTRACT_JOB, run.id)
        return record is not None and record["status"] == "TERMINATED"

    def abort_call(self, run: Seeded) -> tuple[str, str]:
        base = f"/api/v1/workspace/{WORKSPACE}/projects/{PROJECT}/jobs/{CONTRACT_JOB}"
        return ("POST", f"{base}/runs/{run.id}/terminate")
