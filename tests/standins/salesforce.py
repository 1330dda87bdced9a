"""A stand-in of the Salesforce REST API for ``AiJobRun`` and ``AiJobRunItem``.

Built from the documented shapes: SOQL through ``GET /services/data/vXX.X/query``
answering ``{totalSize, done, nextRecordsUrl?, records}`` with an ``attributes``
object on every record, the next batch at ``nextRecordsUrl`` (an absolute path
ending in ``<locator>-<offset>``), ``batchSize`` from ``Sforce-Query-Options``,
aggregate rows named ``expr0``, sObject retrieve and ``PATCH`` update (204),
getDeleted (``GET …/sobjects/AiJobRun/deleted/?start=&end=``, seconds ignored,
``latestDateCovered`` never past the org's clock), and every error as
``[{"message", "errorCode"}]``. Only the SOQL the adapter and simple-salesforce
send is understood: one object, ``AND``-ed comparisons (``IN (…)`` too),
``GROUP BY`` one or more fields, ``ORDER BY`` and ``LIMIT``.

What the adapter must cope with can be played: :meth:`SalesforceStandIn.delete`
(a run deleted, its items with it, listed by getDeleted) and
:meth:`SalesforceStandIn.commit_late` (a run whose ``SystemModstamp`` is earlier
than runs already listed: transaction skew).

State is plain and mutable so tests can change runs between polls; every request
is recorded (method, path, query, headers, body) so tests can assert what was sent,
and faults are injected, by :class:`~standins.base.StandIn`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobwatch.core import Status
from jobwatch.sources.vendors.salesforce import SalesforceConfig
from standins.base import StandIn
from standins.contract import Seeded, VendorUpstream

TOKEN = "00D5g000004Fake!AQ0AQStandInSessionToken.x9"
BASE_TIME = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
RUN_STATUSES = (
    "New",
    "ReadyToStart",
    "Queued",
    "InProgress",
    "Completed",
    "Failed",
    "Aborted",
    "Archived",
)
SYSTEM_ONLY = ("InProgress", "Completed", "Failed")
""""These statuses … can't be changed by the user" (the Apex guide)."""

RUN_FIELDS = frozenset(
    {
        "Id",
        "Name",
        "Label",
        "Status",
        "JobType",
        "Target",
        "StartTime",
        "EndTime",
        "ErrorCode",
        "ErrorMessage",
        "OwnerId",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "IsDeleted",
    }
)
ITEM_FIELDS = frozenset(
    {
        "Id",
        "Name",
        "AiJobRunId",
        "Status",
        "ErrorCode",
        "ErrorMessage",
        "Input",
        "PreprocessedInput",
        "Response",
        "OwnerId",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "IsDeleted",
    }
)
DATETIME_FIELDS = frozenset(
    {"StartTime", "EndTime", "CreatedDate", "LastModifiedDate", "SystemModstamp"}
)


def sf_time(when: datetime) -> str:
    """Salesforce's JSON date-time: milliseconds and a ``+0000`` offset."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sf_error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status, headers=headers)


ERROR_CODES = {
    400: "MALFORMED_QUERY",
    401: "INVALID_SESSION_ID",
    403: "INSUFFICIENT_ACCESS",
    404: "NOT_FOUND",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "SERVER_UNAVAILABLE",
}
"""The ``errorCode`` Salesforce sends with each status (``UNKNOWN_EXCEPTION`` else)."""


@dataclass(eq=False)
class SalesforceStandIn(StandIn):
    """The org as the stand-in sees it; tests edit it directly."""

    UNAUTHORIZED = "Session expired or invalid"
    THROTTLED = "TotalRequests Limit exceeded."

    token: str = TOKEN
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    extra_records: list[Any] = field(default_factory=list)
    """Raw records appended to every AiJobRun query result (malformed on purpose)."""
    batch_limit: int = 2000
    """The server may return smaller batches than asked for; tests make it tiny."""
    next_url_prefix: str = ""
    """Put before every ``nextRecordsUrl`` (a hostile server would send another host)."""
    refuse_abort_in_progress: bool = True
    ticks: int = 0
    deleted: list[dict[str, str]] = field(default_factory=list)
    """The delete log getDeleted reads: ``{"id", "deletedDate"}``."""
    _locators: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # -- helpers for tests -------------------------------------------------------------

    def now(self) -> str:
        """Advance the org's clock by one second and return it."""
        self.ticks += 1
        return sf_time(BASE_TIME + timedelta(seconds=self.ticks))

    def add_run(self, status: str = "New", **fields: Any) -> dict[str, Any]:
        n = len(self.runs) + 1
        run_id = fields.pop("Id", f"0XJ5g{n:010d}AAA")
        stamp = self.now()
        record = {
            "Id": run_id,
            "Name": f"AJR-{n:06d}",
            "Label": f"Batch {n}",
            "Status": status,
            "JobType": "PromptTemplate",
            "Target": "0hf5g000000Summ01",
            "StartTime": None,
            "EndTime": None,
            "ErrorCode": None,
            "ErrorMessage": None,
            "OwnerId": "0055g00000Ab1cdAAB",
            "CreatedDate": stamp,
            "CreatedById": "0055g00000Ab1cdAAB",
            "LastModifiedDate": stamp,
            "LastModifiedById": "0055g00000Ab1cdAAB",
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        record.update(fields)
        self.runs[run_id] = record
        return record

    def add_item(self, run_id: str, status: str = "Ready", **fields: Any) -> dict[str, Any]:
        n = len(self.items) + 1
        stamp = self.now()
        record = {
            "Id": f"0XK5g{n:010d}AAA",
            "Name": f"AJRI-{n:06d}",
            "AiJobRunId": run_id,
            "Status": status,
            "ErrorCode": None,
            "ErrorMessage": None,
            "Input": '{"recordId": "0035g00000Contact1"}',
            "PreprocessedInput": None,
            "Response": None,
            "OwnerId": "0055g00000Ab1cdAAB",
            "CreatedDate": stamp,
            "CreatedById": "0055g00000Ab1cdAAB",
            "LastModifiedDate": stamp,
            "LastModifiedById": "0055g00000Ab1cdAAB",
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        record.update(fields)
        self.items.append(record)
        return record

    def update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Change a run the way the org would: ``SystemModstamp`` moves on."""
        record = self.runs[run_id]
        record.update(fields)
        record["LastModifiedDate"] = record["SystemModstamp"] = self.now()
        return record

    def delete(self, run_id: str) -> None:
        """Delete a run as the org does: gone from queries and retrieves (its items
        too), written to the delete log with the org's time."""
        del self.runs[run_id]
        self.items = [item for item in self.items if item["AiJobRunId"] != run_id]
        self.deleted.append({"id": run_id, "deletedDate": self.now()})

    def commit_late(self, status: str = "Completed", *, back: int = 60, **fields: Any) -> str:
        """A run that becomes visible only now with a ``SystemModstamp`` ``back``
        seconds earlier than the org's clock: its transaction began before runs
        already listed and committed after them."""
        stamp = sf_time(BASE_TIME + timedelta(seconds=self.ticks - back))
        record = self.add_run(status, **fields)
        record["SystemModstamp"] = record["LastModifiedDate"] = stamp
        return str(record["Id"])

    def queries(self) -> list[str]:
        return [seen.query["q"] for seen in self.requests if "q" in seen.query]

    # -- the app ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        base = "/services/data/{version}"
        return [
            self.route(f"{base}/query", self.query),
            self.route(f"{base}/query/", self.query),
            self.route(f"{base}/query/{{locator}}", self.query_more),
            self.route(f"{base}/sobjects/{{obj}}/deleted/", self.get_deleted),
            self.route(f"{base}/sobjects/{{obj}}/{{id}}", self.record, ["GET", "PATCH"]),
        ]

    def error(self, request: Request, status: int, message: str) -> Response:
        """Every Salesforce error is a list of ``{"message", "errorCode"}``."""
        return sf_error(status, ERROR_CODES.get(status, "UNKNOWN_EXCEPTION"), message)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def gate(self, request: Request) -> Response | None:
        if (refused := super().gate(request)) is not None:
            return refused
        if not re.fullmatch(r"v\d+\.\d", request.path_params["version"]):
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return None

    def _batch_size(self, request: Request) -> int:
        options = request.headers.get("sforce-query-options", "")
        match = re.search(r"batchSize=(\d+)", options)
        asked = min(2000, max(200, int(match[1]))) if match else 2000
        return max(1, min(asked, self.batch_limit))

    def _page(self, request: Request, locator: str, rows: list[Any], offset: int) -> JSONResponse:
        size = self._batch_size(request)
        chunk = rows[offset : offset + size]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + size >= len(rows)}
        if not body["done"]:
            version = request.path_params["version"]
            body["nextRecordsUrl"] = (
                f"{self.next_url_prefix}/services/data/{version}/query/{locator}-{offset + size}"
            )
        body["records"] = chunk
        return JSONResponse(body)

    async def query(self, request: Request) -> Response:
        soql = request.query_params.get("q")
        if not soql:
            return sf_error(400, "MALFORMED_QUERY", "A query string must be provided.")
        try:
            rows = run_soql(soql, list(self.runs.values()), self.items, self.extra_records)
        except SoqlError as exc:
            return sf_error(400, exc.code, str(exc))
        locator = f"01g5g00000Loc{len(self._locators):05d}"
        self._locators[locator] = rows
        return self._page(request, locator, rows, 0)

    async def query_more(self, request: Request) -> Response:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        rows = self._locators.get(locator)
        if rows is None or not offset.isdigit():
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(request, locator, rows, int(offset))

    async def get_deleted(self, request: Request) -> Response:
        """getDeleted: the delete log between ``start`` and ``end``, seconds ignored."""
        if request.path_params["obj"] != "AiJobRun":
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            start = datetime.fromisoformat(request.query_params["start"])
            end = datetime.fromisoformat(request.query_params["end"])
        except (KeyError, ValueError):
            return sf_error(400, "MALFORMED_QUERY", "start and end must be valid date-times")
        start, end = (t.replace(second=0, microsecond=0) for t in (start, end))
        if start >= end:
            return sf_error(400, "INVALID_REPLICATION_DATE", "start must be before end")
        clock = BASE_TIME + timedelta(seconds=self.ticks)
        covered = min(end, clock.replace(second=0, microsecond=0))
        listed = [
            record
            for record in self.deleted
            if start <= datetime.fromisoformat(record["deletedDate"]) < end
        ]
        return JSONResponse(
            {
                "deletedRecords": listed,
                "earliestDateAvailable": sf_time(BASE_TIME),
                "latestDateCovered": sf_time(covered),
            }
        )

    async def record(self, request: Request) -> Response:
        obj, record_id = request.path_params["obj"], request.path_params["id"]
        if obj != "AiJobRun":
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        run = self.runs.get(record_id)
        if run is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            wanted = request.query_params.get("fields")
            names = [n.strip() for n in wanted.split(",")] if wanted else sorted(RUN_FIELDS)
            unknown = [n for n in names if n not in RUN_FIELDS]
            if unknown:
                return sf_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}'")
            body = {
                "attributes": {
                    "type": "AiJobRun",
                    "url": f"/services/data/{request.path_params['version']}/sobjects/"
                    f"AiJobRun/{record_id}",
                }
            }
            body.update({n: run.get(n) for n in names})
            return JSONResponse(body)
        # PATCH: an update; 204 with no body when it worked.
        try:
            patch = json.loads(await request.body())
        except ValueError:
            patch = None
        if not isinstance(patch, dict):
            return sf_error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting JSON")
        unknown = [n for n in patch if n not in RUN_FIELDS]
        if unknown:
            return sf_error(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type AiJobRun"
            )
        status = patch.get("Status", run["Status"])
        if status not in RUN_STATUSES:
            return sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {status}",
            )
        if status != run["Status"] and status in SYSTEM_ONLY:
            return sf_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"You can't set the status of a job run to {status}.",
            )
        if status == "Aborted" and run["Status"] == "InProgress" and self.refuse_abort_in_progress:
            return sf_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't abort a job run that's in progress.",
            )
        if status == "Aborted" and not run.get("EndTime"):
            patch = {**patch, "EndTime": sf_time(BASE_TIME + timedelta(seconds=self.ticks + 1))}
        self.update(record_id, **patch)
        return Response(status_code=204)


# -- a tiny SOQL reader --------------------------------------------------------------------

_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+GROUP\s+BY\s+(?P<group>\w+(?:\s*,\s*\w+)*))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(
    r"\s*(?P<field>\w+)\s*(?P<op>>=|<=|!=|=|>|<|\bIN\b)\s*"
    r"(?P<value>\((?:'(?:[^'\\]|\\.)*'\s*,?\s*)+\)|'(?:[^'\\]|\\.)*'|[^\s']+)"
    r"\s*(?:AND\s+|$)",
    re.IGNORECASE,
)
_IN_ITEM = re.compile(r"'(?:[^'\\]|\\.)*'")
_COUNT = re.compile(r"COUNT\(\s*(\w*)\s*\)(?:\s+(\w+))?$", re.IGNORECASE)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


class SoqlError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _literal(text: str) -> Any:
    if text.startswith("("):
        return tuple(_literal(item) for item in _IN_ITEM.findall(text))
    if text.startswith("'"):
        return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m[1], m[1]), text[1:-1])
    if text.lower() == "null":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)", text):
        return datetime.fromisoformat(text)
    try:
        return float(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'") from None


def _value(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if name in DATETIME_FIELDS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op.upper() == "IN":
        return left in right
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {
            ">": left > right,
            "<": left < right,
            ">=": left >= right,
            "<=": left <= right,
        }[op]
    except TypeError:
        return False


def run_soql(
    soql: str, runs: list[dict[str, Any]], items: list[dict[str, Any]], extra: list[Any]
) -> list[Any]:
    """The rows a SOQL query selects, shaped as the REST API returns them."""
    match = _SOQL.match(soql)
    if match is None:
        raise SoqlError("MALFORMED_QUERY", "unexpected token in query")
    obj = match["obj"]
    known = {"AiJobRun": RUN_FIELDS, "AiJobRunItem": ITEM_FIELDS}.get(obj)
    if known is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{obj}' is not supported. If you are attempting "
            "to use a custom object, be sure to append the '__c' after the entity name.",
        )
    rows = [dict(r) for r in (runs if obj == "AiJobRun" else items)]
    conditions = []
    where = match["where"] or ""
    pos = 0
    while pos < len(where):
        cond = _CONDITION.match(where, pos)
        if cond is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{where[pos : pos + 20]}'")
        conditions.append((cond["field"], cond["op"], _literal(cond["value"])))
        pos = cond.end()
    selected: list[tuple[str, str | None]] = []  # (field, count alias) pairs
    for part in (p.strip() for p in match["fields"].split(",")):
        count = _COUNT.match(part)
        if count:
            # Unnamed aggregates are expr0, expr1, … in their own order.
            aggregates = sum(1 for _, a in selected if a)
            selected.append((count[1] or "Id", count[2] or f"expr{aggregates}"))
        else:
            selected.append((part, None))
    for name in [f for f, _ in selected] + [c[0] for c in conditions]:
        if name not in known:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{obj}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name.",
            )
    rows = [r for r in rows if all(_compare(_value(r, f), op, v) for f, op, v in conditions)]
    if match["order"]:
        for part in reversed([p.strip() for p in match["order"].split(",")]):
            words = part.split()
            desc = len(words) > 1 and words[1].upper() == "DESC"
            rows.sort(
                key=lambda r, f=words[0]: (_value(r, f) is not None, _value(r, f)),
                reverse=desc,
            )
    if match["group"]:
        groups = [g.strip() for g in match["group"].split(",")]
        alias = next((a for _, a in selected if a), "expr0")
        counts: dict[tuple[Any, ...], int] = {}
        for row in rows:
            key = tuple(row.get(g) for g in groups)
            counts[key] = counts.get(key, 0) + 1
        return [
            {
                "attributes": {"type": "AggregateResult"},
                **dict(zip(groups, key, strict=True)),
                alias: n,
            }
            for key, n in counts.items()
        ]
    if match["limit"]:
        rows = rows[: int(match["limit"])]
    out: list[Any] = []
    for row in rows:
        record: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v63.0/sobjects/{obj}/{row['Id']}",
            }
        }
        for name, _ in selected:
            record[name] = row.get(name)
        out.append(record)
    if obj == "AiJobRun" and not match["group"]:
        out += extra  # as they are: malformed on purpose
    return out


# -- the contract suite's factory ------------------------------------------------------


class Contract(VendorUpstream):
    """Salesforce AiJobRuns, for ``tests/integration/test_source_contract.py``."""

    kind = "salesforce"
    active = Status.QUEUED  # Salesforce refuses to abort an InProgress run
    standin: SalesforceStandIn

    def make_standin(self) -> SalesforceStandIn:
        return SalesforceStandIn()

    def config(self, **common: Any) -> SalesforceConfig:
        return SalesforceConfig(kind="salesforce", token=TOKEN, **common)

    def _ended(self) -> dict[str, str]:
        start = BASE_TIME + timedelta(seconds=self.standin.ticks)
        return {"StartTime": sf_time(start), "EndTime": sf_time(start + timedelta(minutes=1))}

    async def seed(self, status: Status) -> Seeded:
        raw = self.word(status)
        fields: dict[str, Any] = self._ended() if status.is_terminal else {}
        if status is Status.FAILED:
            fields |= {"ErrorCode": "LLM_TIMEOUT", "ErrorMessage": "Model call timed out"}
        return Seeded(self.standin.add_run(raw, **fields)["Id"], status, raw)

    async def change(self, run: Seeded) -> Seeded:
        self.standin.update(run.id, Status="Completed", **self._ended())
        return Seeded(run.id, Status.SUCCEEDED, "Completed")

    async def malform(self) -> str:
        broken = {"Id": "0XJ5gBROKEN0000AAA", "Status": "Completed", "StartTime": "yesterday"}
        self.standin.extra_records.append(broken)
        return "0XJ5gBROKEN0000AAA"

    async def seed_log(self, run: Seeded) -> str:
        self.standin.add_item(run.id, "Completed")
        self.standin.add_item(run.id, "Failed", ErrorCode="PROMPT_ERROR", ErrorMessage="bad merge")
        self.standin.add_item(run.id, "Completed")
        return "completed"

    async def aborted(self, run: Seeded) -> bool:
        return bool(self.standin.runs[run.id]["Status"] == "Aborted")

    def _path(self, run: Seeded) -> str:
        return f"/services/data/v63.0/sobjects/AiJobRun/{run.id}"

    def abort_call(self, run: Seeded) -> tuple[str, str]:
        return ("PATCH", self._path(run))

    def archive_calls(self, run: Seeded) -> list[tuple[str, str]]:
        return [("PATCH", self._path(run))]  # Salesforce archives by Status itself
