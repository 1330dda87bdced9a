"""A stand-in for the Matatika jobs API, built from its documented payloads.

Shapes follow ``vendor-apis.md`` §5 and Matatika's docs: HAL collections
(``_embedded`` / ``_links`` / ``page``, 0-based, ``page``/``size``/``sort``), jobs
with ``created``/``startTime``/``endTime`` without a zone, ``_embedded.pipeline`` and
``_embedded.profile``, logs as text or NDJSON from ``?sequence=N`` with 204 when
there is nothing, ``PUT /api/jobs/{id}/stopped`` answering 202 for ``RUNNING`` jobs
only, and Spring's error body (``timestamp``, ``status``, ``error``, ``message``,
``path``). State is plain dicts, so tests change runs between polls; requests
are recorded and faults injected by :class:`~standins.base.StandIn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from jobwatch.core import Status
from jobwatch.sources.vendors.matatika import MatatikaConfig
from standins.base import StandIn
from standins.contract import Seeded, VendorUpstream

TOKEN = "mtk-test-token-5b1f0c9e2d7a4f6b"
WORKSPACE = "2b9c54c8-6c4e-4a8a-9d2d-0f7a7b1a3e11"
PIPELINE = "da46d020-7a3c-4f27-9a4a-8d4b4b0d8f10"
SECRET_PASSWORD = "pg-pass-Sup3rS3cret!"
PROFILE_EMAIL = "jane.doe@example.com"
LINK_TOKEN = "linktok-9f8e7d6c5b4a"
ARG_SECRET = "cli-secret-1234abcd"
HAL = "application/hal+json"
TASK_DETAIL_FIELDS = ("taskName", "exitMessage", "arguments", "errorMessage")


@dataclass(eq=False)
class MatatikaStandIn(StandIn):
    """What the stand-in serves and what it saw."""

    UNAUTHORIZED = "Full authentication is required"
    THROTTLED = "Rate limit exceeded"

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[Any]] = field(default_factory=dict)
    """Per job: text lines, or (for NDJSON) any JSON values."""
    workspace_id: str = WORKSPACE
    pipeline_id: str = PIPELINE
    token: str = TOKEN
    embedded_key: str = "jobs"
    singular_pipeline_path: bool = False
    """Serve only the 2021 doc's ``/api/pipeline/{id}/jobs``."""
    log_format: str = "text"  # or "ndjson"
    task_details_header: bool = True
    """Matatika fills ``taskName``, ``exitMessage``, ``arguments`` and ``errorMessage``
    only for a request with ``enable-task-details: true``; null otherwise."""

    def shown(self, request: Request, job: dict[str, Any]) -> dict[str, Any]:
        """A job as this request gets it: the task details only when asked for."""
        asked = request.headers.get("enable-task-details", "").lower() == "true"
        if asked or not self.task_details_header:
            return job
        return {**job, **{k: None for k in TASK_DETAIL_FIELDS if k in job}}

    def delete(self, job_id: str) -> None:
        """``DELETE /api/jobs/{id}``: "deletes and stops the execution of the job"."""
        del self.jobs[job_id]

    def add(self, job: dict[str, Any]) -> dict[str, Any]:
        key = job.get("id")
        self.jobs[key if isinstance(key, str) else f"<no id {len(self.jobs)}>"] = job
        return job

    # -- the app ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            self.route("/api/workspaces/{ws}/jobs", self.workspace_jobs),
            self.route("/api/pipelines/{pid}/jobs", self.pipeline_jobs),
            self.route("/api/pipelines/{pid}/jobs", self.run_pipeline, ["POST"]),
            self.route("/api/pipeline/{pid}/jobs", self.pipeline_jobs),
            self.route("/api/jobs/{id}", self.job, ["GET", "DELETE"]),
            self.route("/api/jobs/{id}/logs", self.job_logs),
            self.route("/api/jobs/{id}/stopped", self.stop, ["PUT"]),
        ]

    def error(self, request: Request, status: int, message: str) -> Response:
        return spring_error(request, status, HTTPStatus(status).phrase, message)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def _collection(self, request: Request, jobs: list[dict[str, Any]]) -> JSONResponse:
        try:
            page = max(0, int(request.query_params.get("page", "0")))
            size = max(1, int(request.query_params.get("size", "20")))
        except ValueError:
            return spring_error(request, 400, "Bad Request", "page and size must be numbers")
        sort = request.query_params.get("sort", "")
        if sort.startswith("created"):
            jobs = sorted(
                jobs,
                key=lambda j: str(j.get("created") or ""),
                reverse=sort.endswith(",desc"),
            )
        total = len(jobs)
        pages = (total + size - 1) // size
        chunk = [self.shown(request, j) for j in jobs[page * size : (page + 1) * size]]
        base = str(request.url.replace(query=""))
        links: dict[str, Any] = {"self": {"href": f"{base}?page={page}&size={size}"}}
        if page + 1 < pages:
            links["next"] = {"href": f"{base}?page={page + 1}&size={size}"}
        body: dict[str, Any] = {
            "_links": links,
            "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page},
        }
        if chunk:  # Spring HAL leaves _embedded out of an empty collection
            body["_embedded"] = {self.embedded_key: chunk}
        return JSONResponse(body, media_type=HAL)

    async def workspace_jobs(self, request: Request) -> Response:
        if request.path_params["ws"] != self.workspace_id:
            return spring_error(request, 404, "Not Found", "Workspace not found")
        return self._collection(request, list(self.jobs.values()))

    async def pipeline_jobs(self, request: Request) -> Response:
        singular = request.url.path.startswith("/api/pipeline/")
        if singular != self.singular_pipeline_path:
            return spring_error(request, 404, "Not Found", "No handler")
        if request.path_params["pid"] != self.pipeline_id:
            return spring_error(request, 404, "Not Found", "Pipeline not found")
        jobs = [
            j
            for j in self.jobs.values()
            if j.get("_embedded", {}).get("pipeline", {}).get("id") == self.pipeline_id
        ]
        return self._collection(request, jobs)

    async def run_pipeline(self, request: Request) -> Response:
        """``POST /api/pipelines/{id}/jobs``: 201 with the new job. The pipeline must
        exist and "not already be running" (one job per pipeline at a time)."""
        pid = request.path_params["pid"]
        if pid != self.pipeline_id:
            return spring_error(request, 404, "Not Found", "Pipeline not found")
        for job in self.jobs.values():
            on = job.get("_embedded", {}).get("pipeline", {}).get("id")
            if on == pid and job.get("status") in ("QUEUED", "RUNNING"):
                return spring_error(request, 409, "Conflict", f"Pipeline {pid} is already running")
        n = len(self.jobs) + 1
        base = str(request.base_url).rstrip("/")
        job = make_job(
            f"mt-started-{n:03d}",
            "QUEUED",
            created="2024-04-10T16:00:00",
            start=None,
            base_url=base,
        )
        self.add(job)
        return JSONResponse(self.shown(request, job), status_code=201, media_type=HAL)

    async def job(self, request: Request) -> Response:
        found = self.jobs.get(request.path_params["id"])
        if found is None:
            return spring_error(request, 404, "Not Found", "Job not found")
        if request.method == "DELETE":
            del self.jobs[found["id"]]
            return Response(status_code=204)
        return JSONResponse(self.shown(request, found), media_type=HAL)

    async def job_logs(self, request: Request) -> Response:
        if request.path_params["id"] not in self.jobs:
            return spring_error(request, 404, "Not Found", "Job not found")
        start = int(request.query_params.get("sequence", "0"))
        lines = self.logs.get(request.path_params["id"], [])[start:]
        if not lines:
            return Response(status_code=204)
        if self.log_format == "ndjson":
            body = "".join(json.dumps(line) + "\n" for line in lines)
            return Response(body, media_type="application/x-ndjson")
        return PlainTextResponse("".join(f"{line}\n" for line in lines))

    async def stop(self, request: Request) -> Response:
        found = self.jobs.get(request.path_params["id"])
        if found is None:
            return spring_error(request, 404, "Not Found", "Job not found")
        if found["status"] != "RUNNING":
            return spring_error(
                request, 409, "Conflict", f"Job {found['id']} is not running ({found['status']})"
            )
        found["status"] = "STOPPED"
        found["endTime"] = "2024-04-10T14:30:00.5"
        return JSONResponse({"message": "Job stop accepted"}, status_code=202)


def make_job(
    job_id: str,
    status: str,
    *,
    created: str = "2024-04-10T14:16:10.93044",
    start: str | None = "2024-04-10T14:16:37.404",
    end: str | None = None,
    exit_code: int | None = None,
    job_type: str = "PIPELINE_RUN",
    base_url: str = "https://app.matatika.com",
    seed_era: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A job as ``GET /api/jobs/{id}`` returns it (abridged from the 2024 example),
    or, with ``seed_era``, the 2021 shape with the task-details fields."""
    if seed_era:
        job: dict[str, Any] = {
            "id": job_id,
            "exitCode": exit_code,
            "startTime": start,
            "endTime": end,
            "status": status,
            "taskName": "tap-postgres target-postgres",
            "exitMessage": None,
            "arguments": ["elt", "tap-postgres", "target-postgres", "--password", ARG_SECRET],
            "errorMessage": None,
        }
        job.update(extra)
        return job
    job = {
        "id": job_id,
        "created": created,
        "type": job_type,
        "maxAttempts": 0,
        "attempt": 0,
        "commitId": "6263726e7690d522f8e89a7107dda4cffa1d4bfc",
        "exitCode": exit_code,
        "status": status,
        "startTime": start,
        "endTime": end,
        "_embedded": {
            "pipeline": {
                "id": PIPELINE,
                "status": "READY",
                "name": "SIT-Generated Pipeline [postgres]",
                "timeout": 0,
                "maxRetries": 0,
                "created": "2024-04-10T14:15:58.12",
                "lastModified": "2024-04-10T14:15:58.12",
                "properties": {
                    "tap-postgres.host": "db.internal",
                    "tap-postgres.password": SECRET_PASSWORD,
                    "tap-postgres.filter_schemas": "public",
                },
                "dataComponents": [{"id": "c1", "name": "tap-postgres"}, "target-postgres"],
                "actions": [],
                "triggeredBy": None,
                "repositoryPath": None,
            },
            "profile": {
                "id": "auth0|5eb0327cbfd7490bff55feeb",
                "name": "Jane Doe",
                "handle": "@sit+prod",
                "email": PROFILE_EMAIL,
            },
        },
        "_links": {
            "self": {"href": f"{base_url}/api/jobs/{job_id}"},
            "delete job": {"href": f"{base_url}/api/jobs/{job_id}", "type": "DELETE"},
            "logs": {
                "href": f"{base_url}/api/jobs/{job_id}/logs?sequence=0&access_token={LINK_TOKEN}"
            },
        },
    }
    job.update(extra)
    return job


def spring_error(request: Request, status: int, error: str, message: str) -> JSONResponse:
    """Matatika's "standard templated error response"."""
    return JSONResponse(
        {
            "timestamp": "2024-04-10T14:20:00.000+00:00",
            "status": status,
            "error": error,
            "message": message,
            "path": request.url.path,
        },
        status_code=status,
    )


# -- the contract suite's factory ------------------------------------------------------


class Contract(VendorUpstream):
    """Matatika workspace jobs, for ``tests/integration/test_source_contract.py``."""

    kind = "matatika"
    standin: MatatikaStandIn

    def make_standin(self) -> MatatikaStandIn:
        return MatatikaStandIn()

    def config(self, **common: Any) -> MatatikaConfig:
        return MatatikaConfig(kind="matatika", workspace_id=WORKSPACE, token=TOKEN, **common)

    async def seed(self, status: Status) -> Seeded:
        n = len(self.standin.jobs) + 1
        raw = self.word(status)
        job = make_job(
            f"mt-{n:03d}",
            raw,
            created=f"2024-04-10T14:{n:02}:10",
            end=f"2024-04-10T15:{n:02}:00" if status.is_terminal else None,
            exit_code=1 if status is Status.FAILED else None,
        )
        self.standin.add(job)
        return Seeded(job["id"], status, raw)

    async def change(self, run: Seeded) -> Seeded:
        self.standin.jobs[run.id].update(status="COMPLETE", endTime="2024-04-10T16:00:00")
        return Seeded(run.id, Status.SUCCEEDED, "COMPLETE")

    async def malform(self) -> str:
        self.standin.add({"id": "mt-bad-time", "status": "COMPLETE", "created": "yesterday-ish"})
        return "mt-bad-time"

    async def seed_log(self, run: Seeded) -> str:
        self.standin.logs[run.id] = [
            "2024-04-10T14:16:37 | INFO | meltano | Running extract & load...",
            "2024-04-10T14:16:39 | ERROR | tap-postgres | connection refused",
            "2024-04-10T14:16:40 | INFO | meltano | extract & load stopped",
        ]
        return "extract"

    async def aborted(self, run: Seeded) -> bool:
        return bool(self.standin.jobs[run.id]["status"] == "STOPPED")

    def abort_call(self, run: Seeded) -> tuple[str, str]:
        return ("PUT", f"/api/jobs/{run.id}/stopped")
