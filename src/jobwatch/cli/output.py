"""What the scripting verbs print: aligned tables, tab-separated lines, the detail
of one run. Every value passes through :mod:`jobwatch.core.redact` first."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len

from jobwatch.core import RunRow, utcnow
from jobwatch.core.columns import BY_NAME, LIST_COLUMNS, Cell, Column, Mode, render_row
from jobwatch.core.errors import UsageError
from jobwatch.core.format import duration, progress_text, run_json, status_word
from jobwatch.core.redact import clean

if TYPE_CHECKING:
    from jobwatch.core import RecordError, Run


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


LIST_HEADERS = tuple(c.header for c in LIST_COLUMNS)
TABLE_GAP = 2


def list_columns(spec: str | None, configured: Sequence[str] | None) -> tuple[Column, ...]:
    """``jobwatch list``'s columns: the documented ones by default (scripts read
    them), ``--columns a,b`` those, ``--columns`` alone the config's ``columns``."""
    if spec is None:
        return LIST_COLUMNS
    names = [n.strip() for n in spec.split(",") if n.strip()] if spec else list(configured or ())
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise UsageError(f"unknown column(s) {', '.join(unknown)} (one of {', '.join(BY_NAME)})")
    return tuple(BY_NAME[n] for n in names) or LIST_COLUMNS


def list_rows(
    runs: Iterable[Run], *, human: bool, columns: Sequence[Column] = LIST_COLUMNS
) -> list[tuple[str, ...]]:
    """The registry's list columns of each run: as a person reads them on a
    terminal, or raw values (ISO times, bare statuses) for a pipe."""
    now = time.time()
    cell = Cell(now, Mode.HUMAN if human else Mode.PLAIN)
    return [tuple(c.text(RunRow.from_run(run), cell) for c in columns) for run in runs]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, max_width: int = 48) -> str:
    """An aligned table for a terminal, measured in terminal cells (a CJK name or an
    emoji is two wide); long cells are cut with an ellipsis."""
    widths = [cell_len(h) for h in headers]
    for row in rows:
        widths = [max(w, min(max_width, cell_len(c))) for w, c in zip(widths, row, strict=True)]
    lines = [render_row(zip(headers, widths, strict=True), TABLE_GAP).rstrip()]
    lines += [render_row(zip(r, widths, strict=True), TABLE_GAP).rstrip() for r in rows]
    return "\n".join(lines)


def tsv(rows: Sequence[Sequence[str]]) -> str:
    """Tab-separated lines for pipes: tabs and newlines inside cells become spaces."""
    return "\n".join("\t".join(c.replace("\t", " ").replace("\n", " ") for c in r) for r in rows)


def record_error_line(error: RecordError) -> str:
    return f"! {clean(error.source)} {clean(error.row_id)}: {clean(error.message)}"


def _section(title: str, data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    lines = [f"{title}:"]
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        text = str(value).replace("\n", "\n    ")
        lines.append(f"  {key}: {text}")
    return lines if len(lines) > 1 else []


def show(run: Run) -> str:
    """Human-readable detail of one run, every value redacted and sanitized."""
    data = run_json(run)
    now = utcnow()
    queue_ms = None
    waited_from = run.queued_at or run.created_at
    if run.started_at and waited_from:
        queue_ms = (run.started_at - waited_from).total_seconds() * 1000
    summary = {
        "id": data["id"],
        "source": data["source"],
        "job": data["job"],
        "label": data["label"],
        "rerun of": (data["metadata"] or {}).get("rerun_of"),
        "type": data["type"],
        "status": f"{status_word(run)}  (raw: {data['status_raw'] or '-'})",
        "owner": data["owner"],
        "created": data["created_at"],
        "queued": data["queued_at"],
        "started": data["started_at"],
        "ended": data["ended_at"],
        "queue time": duration(queue_ms) if queue_ms is not None else None,
        "duration": duration(run.elapsed_ms(now)),
        "ttft": f"{run.ttft_ms:.0f} ms" if run.ttft_ms is not None else None,
        "exit code": data["exit_code"],
        "progress": progress_text(run) or None,
    }
    lines = _section("run", summary)
    lines += _section("error", data["error"])
    lines += _section("reason", data["reason"])
    lines += _section("callback", data["callback"])
    if data["config"]:
        lines += ["config:", _indent(dumps(data["config"]))]
    if data["metadata"]:
        lines += ["metadata:", _indent(dumps(data["metadata"]))]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
