"""``jobwatch demo``: a store full of realistic runs that keeps changing.

Runs are written in the vocabularies of the five seed systems (raw statuses, error
codes, reason types, counters, configuration snapshots with fake credentials that
must come out redacted) so every screen can be tried without a real account. Live
runs are owned by the demo process: they heartbeat, honour abort requests like a
``jobwatch run`` wrapper does, and turn *lost* if the demo is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import string
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobwatch.core import (
    Progress,
    Reason,
    Run,
    Status,
    utcnow,
)
from jobwatch.sources.local import SqliteStore

if TYPE_CHECKING:
    from jobwatch.tui.app import JobwatchApp

TICK_S = 0.5
HEARTBEAT_EVERY_S = 5.0
LIVE_TARGET = 12

S = Status


@dataclass(frozen=True)
class Flavour:
    """How one seed system names things; ``raw`` is its status for each outcome.

    The status words are never written here: :meth:`of` reads them from the
    adapter's own ``STATUS_MAP``, so the demo cannot drift from what the adapter
    reads."""

    key: str
    source: str
    raw: dict[Status, str]
    id_maker: Callable[[random.Random], str]
    decorate: Callable[[random.Random, dict[str, Any]], None]
    errors: tuple[tuple[str, str], ...]
    abort_raw: str
    archived_raw: str | None = None
    """The raw status of an archived run, for a system that archives by status."""

    @classmethod
    def of(
        cls,
        key: str,
        id_maker: Callable[[random.Random], str],
        decorate: Callable[[random.Random, dict[str, Any]], None],
        errors: tuple[tuple[str, str], ...],
    ) -> Flavour:
        """The flavour of vendor kind ``key``, in its adapter's words."""
        raw, archived = vocabulary(key)
        return cls(key, f"{key}-demo", raw, id_maker, decorate, errors, raw[S.ABORTED], archived)


def vocabulary(kind: str) -> tuple[dict[Status, str], str | None]:
    """The raw word for each status a vendor's adapter reads (the first one its
    ``STATUS_MAP`` lists for it: the documented, current spelling), and the word
    that marks a run archived where the map has one (it maps to ``None``)."""
    from jobwatch.sources.vendors import adapter

    words: dict[Status, str] = {}
    archived = None
    for raw, status in adapter(kind).STATUS_MAP.items():
        if status is None:
            archived = archived or raw
        else:
            words.setdefault(status, raw)
    return words, archived


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _sf_id(rng: random.Random) -> str:
    return "0Xj" + "".join(rng.choices(string.ascii_letters + string.digits, k=15))


# -- per-system decoration: the fields each system really has ------------------------


def _salesforce(rng: random.Random, run: dict[str, Any]) -> None:
    target = rng.choice(["Case_Summary_Template", "Lead_Enrichment", "Reply_Draft_v2"])
    run.update(job=target, label=f"{target} batch {rng.randint(1, 400)}", type="PromptTemplate")
    run["owner"] = "005" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=12))
    total = rng.choice([25, 100, 250, 1000])
    run["progress"] = {"total": total, "succeeded": 0, "failed": 0, "pending": total}
    run["config"] = {
        "Target": target,
        "JobType": "PromptTemplate",
        "instance_url": "https://acme.my.salesforce.com",
        "session": {"access_token": "00D5g000004Xyz1!AQ0AQFakeSessionTokenForDemo123"},
        "items_query": "SELECT Id FROM AiJobRunItem WHERE AiJobRunId = '…'",
    }


def _letta(rng: random.Random, run: dict[str, Any]) -> None:
    agent = "agent-" + _uuid(rng)
    run.update(job=agent, label=rng.choice(["support-bot", "research-agent", "triage"]))
    run["type"] = rng.choice(["run", "run", "batch"])
    run["callback"] = {
        "url": "https://hooks.example.com/letta/done?token=demo-cb-Z2l2ZW4tdG9rZW4",
    }
    run["config"] = {
        "request_config": {
            "use_assistant_message": True,
            "assistant_message_tool_name": "send_message",
            "include_return_message_types": ["assistant_message", "tool_call_message"],
        },
        "background": True,
        "max_tokens": 4096,
    }
    run["metadata"] = {"job_type": "batch_messages" if run["type"] == "batch" else "run"}
    run["ttft_ms"] = round(rng.uniform(180, 2400), 1)


def _intuned(rng: random.Random, run: dict[str, Any]) -> None:
    job = rng.choice(["nightly-price-scrape", "competitor-catalog", "invoice-portal-sync"])
    run.update(job=job, label=f"{job} ({rng.choice(['SCHEDULED', 'MANUAL'])})")
    run["type"] = "SCHEDULED" if "SCHEDULED" in run["label"] else "MANUAL"
    payloads = rng.choice([10, 40, 120, 500])
    run["progress"] = {"total": payloads, "succeeded": 0, "failed": 0, "pending": payloads}
    run["config"] = {
        "configuration": {
            "retry": {"maximumAttempts": 3},
            "maxConcurrentRequests": 8,
            "requestTimeout": 600,
        },
        "sink": {
            "type": "s3",
            "bucket": "acme-scrapes",
            "region": "eu-west-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "skipOnFail": False,
        },
        "auth_session": {"id": "auth-session-" + _uuid(rng)[:8]},
        "proxy": {"version": "v1", "url": "http://scraper:hunter2@proxy.example.com:8080"},
    }
    run["metadata"] = {"workspace_id": "ws-demo", "project_id": "prj-acme"}


def _modzy(rng: random.Random, run: dict[str, Any]) -> None:
    model = rng.choice(
        [
            ("ed542963de", "1.0.1", "Sentiment Analysis"),
            ("c60c8dbd79", "0.0.2", "Named Entity Recognition"),
            ("m8z2mwe3pt", "0.3.1", "Image Classification"),
        ]
    )
    run.update(job=f"{model[0]}@{model[1]}", label=model[2])
    total = rng.choice([1, 5, 20, 64])
    run["progress"] = {"total": total, "succeeded": 0, "failed": 0, "pending": total}
    run["owner"] = "user-" + _uuid(rng)[:8]
    run["config"] = {
        "explain": False,
        "timeout": 600_000,
        "inputByteAmount": total * 2048,
        "imageClassificationModel": model[2].startswith("Image"),
    }
    run["metadata"] = {
        "accountIdentifier": "acct-demo",
        "submittedBy": "api_key=ZJ3rYkq3BMZtbWO9.demoFakeKeyBody",
        "jobInputs": [{"identifier": f"input-{i}"} for i in range(min(total, 3))],
    }


def _matatika(rng: random.Random, run: dict[str, Any]) -> None:
    pipeline = rng.choice(["postgres-to-snowflake", "hubspot-sync", "ga4-daily"])
    run.update(job=pipeline, label=f"{pipeline} pipeline", type="PIPELINE_RUN")
    run["owner"] = "@ops"
    run["config"] = {
        "pipeline": {"name": pipeline, "timeout": 0, "maxRetries": 2},
        "properties": {
            "tap-postgres.host": "db.internal",
            "tap-postgres.user": "etl",
            "tap-postgres.password": "Sup3rS3cret!",
        },
        "commitId": "".join(rng.choices("0123456789abcdef", k=40)),
    }
    run["metadata"] = {"attempt": 1, "maxAttempts": 3}


FLAVOURS: tuple[Flavour, ...] = (
    Flavour.of(
        "salesforce",
        _sf_id,
        _salesforce,
        (
            ("INVALID_PROMPT_TEMPLATE", "Prompt template Case_Summary_Template is inactive"),
            ("LLM_RATE_LIMITED", "The model provider rejected the request: rate limited"),
        ),
    ),
    Flavour.of(
        "letta",
        lambda rng: "run-" + _uuid(rng),
        _letta,
        (
            ("llm_api_error", "LLM API returned 529 overloaded"),
            ("max_tokens_exceeded", "Context grew past the model's max tokens"),
            ("invalid_tool_call", "Tool 'search_docs' called with invalid arguments"),
        ),
    ),
    Flavour.of(
        "intuned",
        _uuid,
        _intuned,
        (
            ("internal-server-error", "An error occurred while executing the job"),
            ("insufficient-resource-credits", "Workspace has no resource credits left"),
        ),
    ),
    Flavour.of(
        "modzy",
        _uuid,
        _modzy,
        (("model-error", "Model container exited while processing input-2"),),
    ),
    Flavour.of(
        "matatika",
        _uuid,
        _matatika,
        (
            ("1", "tap-postgres: connection refused (db.internal:5432)"),
            ("2", "target-snowflake: schema mismatch on table orders"),
        ),
    ),
)

_OUTCOMES = (
    (S.SUCCEEDED, 70),
    (S.FAILED, 14),
    (S.ABORTED, 5),
    (S.TIMED_OUT, 3),
    (S.UNKNOWN, 1),
)

_LOG_TEMPLATES = (
    ("info", "starting {job}"),
    ("info", "processed batch {n} of items in {ms} ms"),
    ("debug", "cache hit ratio {pct}%"),
    ("warn", "WARNING retrying request {n} after 429 (attempt 2/3)"),
    ("info", "\x1b[32mOK\x1b[0m checkpoint {n} written"),
    ("info", "calling https://api.example.com/v1/items?api_key=sk-demoFAKEkey0123456789abcd"),
    ("info", "using header Authorization: Bearer demo.fake.jwt-token-value"),
    ("info", "rows upserted: {n}"),
)


def _log_line(rng: random.Random, job: str, failing: bool = False) -> tuple[str, str]:
    if failing:
        return "error", f"ERROR {job}: step {rng.randint(1, 9)} failed; see error details"
    level, template = rng.choice(_LOG_TEMPLATES)
    text = template.format(
        job=job, n=rng.randint(1, 999), ms=rng.randint(3, 900), pct=rng.randint(40, 99)
    )
    return level, text


class Demo:
    """Builds the history and drives the live runs of one demo store."""

    def __init__(self, store: SqliteStore, *, seed: int | None = None) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.live: dict[str, tuple[Flavour, Run]] = {}
        self.pid = os.getpid()

    def _pick_raw(self, flavour: Flavour, status: Status) -> tuple[Status, str]:
        """The flavour's raw word for ``status`` (or the nearest outcome it has)."""
        if status in flavour.raw:
            return status, flavour.raw[status]
        if status in (S.NEW, S.QUEUED):
            fallback = S.QUEUED if S.QUEUED in flavour.raw else S.RUNNING
        else:
            fallback = S.ABORTED if status is S.TIMED_OUT else S.FAILED
        return fallback, flavour.raw[fallback]

    def make_run(self, flavour: Flavour, status: Status, created: datetime) -> Run:
        rng = self.rng
        status, raw = self._pick_raw(flavour, status)
        data: dict[str, Any] = {
            "id": flavour.id_maker(rng),
            "source": flavour.source,
            "status": status,
            "status_raw": raw,
            "created_at": created,
            "updated_at": created,
        }
        flavour.decorate(rng, data)
        if flavour.key == "modzy":
            data["queued_at"] = created
        now = utcnow()
        if status not in (S.NEW, S.QUEUED):
            started = created + timedelta(seconds=rng.uniform(0.5, 40))
            data["started_at"] = min(started, now)  # never in the future
        if status.is_terminal or status is S.UNKNOWN:
            ended = data["started_at"] + timedelta(seconds=rng.expovariate(1 / 240))
            ended = min(ended, now)
            data["ended_at"] = data["updated_at"] = ended
            self._finish_fields(flavour, data, status)
        elif data.get("progress"):
            total = data["progress"]["total"]
            done = rng.randint(0, total // 2) if status is S.RUNNING else 0
            data["progress"] = {
                "total": total,
                "succeeded": done,
                "failed": 0,
                "pending": total - done,
            }
        if status is S.PAUSED:
            data["reason"] = {"type": "user-request", "message": "Paused at the user's request"}
        return Run.model_validate(data)

    def _finish_fields(self, flavour: Flavour, data: dict[str, Any], status: Status) -> None:
        rng = self.rng
        if data.get("progress"):
            total = data["progress"]["total"]
            failed = 0
            if status is S.FAILED:
                failed = rng.randint(1, max(1, total // 3))
            elif status is S.SUCCEEDED and rng.random() < 0.2:
                failed = rng.randint(1, max(1, total // 10))  # finished, some items failed
            done = total - failed if status is S.SUCCEEDED else rng.randint(0, total - failed)
            data["progress"] = {
                "total": total,
                "succeeded": done,
                "failed": failed,
                "pending": total - done - failed,
            }
        if status is S.FAILED:
            code, message = rng.choice(flavour.errors)
            error: dict[str, Any] = {"code": code, "message": message}
            if flavour.key == "intuned":
                error |= {
                    "category": rng.choice(["infrastructure", "billing"]),
                    "correlation_id": _uuid(rng),
                    "retriable": code != "insufficient-resource-credits",
                    "doc_url": "https://docs.intunedhq.com/docs/support/errors",
                }
            if flavour.key == "matatika":
                data["exit_code"] = int(code)
            if flavour.key == "letta":
                data["reason"] = {"type": code}
            data["error"] = error
        elif status is S.ABORTED:
            kind = {"intuned": "terminated", "letta": "cancelled"}.get(flavour.key, "aborted")
            data["reason"] = {"type": kind, "message": "Stopped by ops@example.com"}
        elif status is S.TIMED_OUT:
            data["reason"] = {"type": "timeout", "message": "No result within the job timeout"}
        elif status is S.UNKNOWN:
            data["reason"] = {"type": "unknown", "message": "The system reports UNKNOWN"}
        elif status is S.SUCCEEDED and flavour.key == "matatika":
            data["exit_code"] = 0
        if flavour.key == "letta" and data.get("callback"):
            data["callback"] = dict(data["callback"], sent_at=data["ended_at"], status_code=200)
        if flavour.key == "letta" and status is S.SUCCEEDED:
            data["reason"] = {"type": "end_turn"}

    async def seed_history(self, count: int) -> None:
        """``count`` finished runs over the last week, a few archived, with logs."""
        now = utcnow()
        outcomes = [s for s, _ in _OUTCOMES]
        weights = [w for _, w in _OUTCOMES]
        runs: list[Run] = []
        for i in range(count):
            flavour = FLAVOURS[i % len(FLAVOURS)]
            created = now - timedelta(seconds=self.rng.uniform(600, 7 * 86400))
            run = self.make_run(flavour, self.rng.choices(outcomes, weights)[0], created)
            if run.status is not S.UNKNOWN and self.rng.random() < 0.08:
                run = run.evolve(archived=True)
                if flavour.archived_raw is not None:  # archived is a status there
                    run = run.evolve(status_raw=flavour.archived_raw)
            runs.append(run)
        await self.store.add_many(runs)
        for run in runs:
            await self.store.append_logs(run.id, self._history_log(run))

    def _history_log(self, run: Run) -> list[tuple[float, str, str, str]]:
        start = (run.started_at or run.created_at or utcnow()).timestamp()
        end = (run.ended_at or utcnow()).timestamp()
        n = self.rng.randint(4, 40)
        job = run.job or run.id
        lines = []
        for i in range(n):
            failing = run.status is S.FAILED and i == n - 1
            level, text = _log_line(self.rng, job, failing)
            ts = start + (end - start) * i / max(1, n - 1)
            lines.append((ts, "stderr" if level == "error" else "stdout", level, text))
        return lines

    # -- live simulation ---------------------------------------------------------------

    async def start_live(self, flavour: Flavour | None = None) -> Run:
        flavour = flavour or self.rng.choice(FLAVOURS)
        status = self.rng.choice(
            [S.RUNNING, S.RUNNING, S.RUNNING, S.QUEUED]
            + ([S.PAUSED] if flavour.key == "intuned" else [])
        )
        run = self.make_run(flavour, status, utcnow())
        await self.store.add(run, managed_by=self.pid)
        self.live[run.id] = (flavour, run)
        return run

    async def step(self) -> None:
        """One tick: honour aborts, move every live run on, top the live set up."""
        requested = await self.store.aborts_requested(list(self.live))
        for run_id, by in requested.items():
            flavour, run = self.live.pop(run_id)
            await self._end(
                run,
                S.ABORTED,
                flavour.abort_raw,
                reason=Reason(type="aborted", message=f"aborted by {by}"),
            )
        for run_id, (flavour, run) in list(self.live.items()):
            await self._advance(run_id, flavour, run)
        while len(self.live) < LIVE_TARGET and self.rng.random() < 0.5:
            await self.start_live()

    async def _advance(self, run_id: str, flavour: Flavour, run: Run) -> None:
        rng = self.rng
        now = utcnow()
        if run.status in (S.QUEUED, S.NEW):
            if rng.random() < 0.25:
                run = await self._save(
                    run.evolve(status=S.RUNNING, started_at=now, status_raw=flavour.raw[S.RUNNING])
                )
            return
        if run.status is S.PAUSED:
            if rng.random() < 0.1:
                resumed = run.evolve(status=S.RUNNING, status_raw=flavour.raw[S.RUNNING])
                run = await self._save(resumed)
            return
        lines = [
            (time.time(), "stdout", *_log_line(rng, run.job or run_id))
            for _ in range(rng.randint(0, 3))
        ]
        await self.store.append_logs(run_id, lines)
        roll = rng.random()
        if roll < 0.04:
            failing = _log_line(rng, run.job or run_id, failing=True)
            await self.store.append_logs(run_id, [(time.time(), "stderr", *failing)])
            await self._end(run, S.FAILED, flavour.raw[S.FAILED], flavour=flavour)
        elif roll < 0.10:
            await self._end(run, S.SUCCEEDED, flavour.raw[S.SUCCEEDED], flavour=flavour)
        elif run.progress and run.progress.total and rng.random() < 0.6:
            p = run.progress
            step = max(1, (p.total or 0) // 20)
            succeeded = min((p.total or 0) - (p.failed or 0), (p.succeeded or 0) + step)
            failed = (p.failed or 0) + (1 if rng.random() < 0.05 else 0)
            pending = max(0, (p.total or 0) - succeeded - failed)
            progress = Progress(total=p.total, succeeded=succeeded, failed=failed, pending=pending)
            self.live[run_id] = (
                flavour,
                await self._save(run.evolve(progress=progress, updated_at=now)),
            )

    async def _save(self, run: Run) -> Run:
        saved = await self.store.update(run.id, lambda _old: run)
        if run.id in self.live:
            self.live[run.id] = (self.live[run.id][0], saved)
        return saved

    async def _end(
        self,
        run: Run,
        status: Status,
        raw: str,
        *,
        flavour: Flavour | None = None,
        reason: Reason | None = None,
    ) -> None:
        data = run.model_dump()
        data.update(
            status=status, status_raw=raw, ended_at=utcnow(), updated_at=utcnow(), duration_ms=None
        )
        if flavour is not None:
            self._finish_fields(flavour, data, status)
        if reason is not None:
            data["reason"] = reason
        done = Run.model_validate(data)
        self.live.pop(run.id, None)
        await self.store.update(run.id, lambda _old: done, release=True)

    async def heartbeat(self) -> None:
        await self.store.heartbeat(list(self.live))

    async def stop_live(self) -> None:
        """A clean stop ends the demo's own runs instead of leaving them to be lost."""
        for _run_id, (flavour, run) in list(self.live.items()):
            reason = Reason(type="aborted", message="aborted because the demo stopped")
            await self._end(run, S.ABORTED, flavour.abort_raw, reason=reason)


async def simulate(store: SqliteStore, demo: Demo, seconds: float | None) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    last_beat = time.monotonic()
    while deadline is None or time.monotonic() < deadline:
        await demo.step()
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
            await demo.heartbeat()
            last_beat = time.monotonic()
        await asyncio.sleep(TICK_S)


@dataclass(frozen=True)
class DemoView:
    """How the demo's monitor shows the store: the monitor's own settings
    (``--theme``, ``--read-only``, ``--refresh`` and the config's)."""

    theme: str | None = None
    read_only: bool = False
    refresh: float = 1.0
    bell: bool = True
    toasts: bool = True
    keymap: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def demo_app(view: SqliteStore, settings: DemoView) -> JobwatchApp:
    """The monitor over the demo store, built (not started)."""
    from jobwatch.tui.app import JobwatchApp

    return JobwatchApp(
        [view],
        refresh=settings.refresh,
        read_only=settings.read_only,
        theme=settings.theme,
        bell=settings.bell,
        toasts=settings.toasts,
        keymap=settings.keymap,
        warnings=settings.warnings,
    )


async def _monitor(store_path: Path, sim: asyncio.Task[None], settings: DemoView) -> None:
    """Open the monitor on the demo store (its own connection) until it quits, or
    until the simulation ends when ``--seconds`` was given."""
    # Its own connection: read-only with --read-only; else it writes only when the
    # user aborts or archives something.
    async with SqliteStore(store_path, mode="read" if settings.read_only else "write") as view:
        app = demo_app(view, settings)
        sim.add_done_callback(lambda _task: app.exit())
        await app.run_async()


async def run_demo(
    store_path: Path | None,
    *,
    runs: int = 300,
    seconds: float | None = None,
    headless: bool = False,
    seed: int | None = None,
    view: DemoView | None = None,
) -> int:
    """Fill a store (a new temporary one unless given) and keep it live."""
    if store_path is None:
        store_path = Path(tempfile.mkdtemp(prefix="jobwatch-demo-")) / "runs.db"
    print(f"jobwatch demo: store {store_path}", file=sys.stderr)
    async with SqliteStore(store_path, mode="create") as store:
        demo = Demo(store, seed=seed)
        await demo.seed_history(runs)
        for flavour in FLAVOURS:  # every system has something live from the start
            await demo.start_live(flavour)
        sim = asyncio.create_task(simulate(store, demo, seconds))
        try:
            if headless:
                await sim
            else:
                await _monitor(store_path, sim, view or DemoView())
        finally:
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim
            await demo.stop_live()
    return 0
