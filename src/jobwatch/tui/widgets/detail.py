"""The detail pane: everything about the selected run, redacted and sanitized.

Values are drawn as plain :class:`rich.text.Text` (never markup), so a job name or
a configuration key cannot inject styles or links; the redacted JSON comes from
the same :func:`jobwatch.core.format.run_json` the CLI prints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from jobwatch.core.columns import ago
from jobwatch.core.format import GLYPHS, duration, progress_text, run_json
from jobwatch.core.redact import clean
from jobwatch.tui import keys

if TYPE_CHECKING:
    from jobwatch.core import Run
    from jobwatch.triage.stuck import StuckRun

_MAX_TREE_NODES = 2000
"""A pathological config cannot flood the tree; the raw JSON still has it all."""


def _fmt_time(value: str | None) -> str | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _grid(title: str, pairs: list[tuple[str, Any]]) -> Table | None:
    shown = [(k, v) for k, v in pairs if v not in (None, "", {})]
    if not shown:
        return None
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    if title:
        grid.title = title
        grid.title_justify = "left"
        grid.title_style = "bold underline"
    for key, value in shown:
        grid.add_row(Text(key), Text(str(value)))
    return grid


def _problem_pairs(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Error then reason, code/type and message first: what went wrong, in the
    system's own words, before the rest of their fields."""
    error = dict(data["error"] or {})
    reason = dict(data["reason"] or {})
    pairs: list[tuple[str, Any]] = [
        ("error code", error.pop("code", None)),
        ("error", error.pop("message", None)),
        *((f"error {k.replace('_', ' ')}", v) for k, v in error.items()),
        ("reason", reason.pop("type", None)),
        ("reason text", reason.pop("message", None)),
        *((f"reason {k.replace('_', ' ')}", v) for k, v in reason.items()),
    ]
    return pairs


def stuck_text(stuck: StuckRun | None, now: datetime | None) -> str | None:
    """``no output or progress for 22m (stuck after 15m)``."""
    if stuck is None:
        return None
    at = (now or datetime.now(UTC)).timestamp()
    return (
        f"no output or progress for {ago(stuck.quiet_for(at))} (stuck after {ago(stuck.threshold)})"
    )


def summary(
    run: Run,
    data: dict[str, Any],
    now: datetime | None = None,
    stuck: StuckRun | None = None,
    slow: str | None = None,
) -> Group:
    """The problem first (status, error, reason, when it ended, how long it ran),
    then identity, times, counters and the callback, as one renderable: at 80x24
    the pane shows a few lines, and those must answer "what went wrong"."""
    queue_ms = None
    if run.started_at and (run.queued_at or run.created_at):
        start = run.queued_at or run.created_at
        assert start is not None
        queue_ms = (run.started_at - start).total_seconds() * 1000
    status = f"{GLYPHS[run.status]} {run.status.value}"
    if data["status_raw"] and data["status_raw"] != run.status.value:
        status += f" ({data['status_raw']})"
    if run.archived:
        status += " (archived)"
    if run.deleted:
        status += " (deleted)"
    parts = [
        _grid(
            "",
            [
                ("status", status),
                ("stuck", stuck_text(stuck, now) if run.status.is_active else None),
                *_problem_pairs(data),
                ("ended", _fmt_time(data["ended_at"])),
                ("duration", duration(run.elapsed_ms(now))),
                ("slow", slow),
                ("exit code", data["exit_code"]),
            ],
        ),
        _grid(
            "run",
            [
                ("id", data["id"]),
                ("source", data["source"]),
                ("job", data["job"]),
                ("label", data["label"]),
                ("rerun of", (data["metadata"] or {}).get("rerun_of")),
                ("type", data["type"]),
                ("owner", data["owner"]),
                ("created", _fmt_time(data["created_at"])),
                ("queued", _fmt_time(data["queued_at"])),
                ("started", _fmt_time(data["started_at"])),
                ("queue time", duration(queue_ms) if queue_ms is not None else None),
                ("ttft", f"{run.ttft_ms:.0f} ms" if run.ttft_ms is not None else None),
            ],
        ),
        _grid(
            "counters",
            [
                ("progress", progress_text(run)),
                ("pending", (data["progress"] or {}).get("pending")),
            ],
        ),
        _grid(
            "callback",
            [
                (k, _fmt_time(v) if k == "sent_at" else v)
                for k, v in (data["callback"] or {}).items()
            ],
        ),
    ]
    return Group(*(p for p in parts if p is not None))


class ConfigTree(Tree[Any]):
    """The configuration snapshot as a collapsible tree, built node by node so no
    key or value is ever read as markup."""

    def show(self, config: dict[str, Any] | None) -> None:
        self.clear()
        self.root.set_label(Text("configuration snapshot"))
        if not config:
            self.root.add_leaf(Text("(none)", style="dim"))
            self.root.expand()
            return
        budget = [_MAX_TREE_NODES]
        self._add(self.root, config, budget)
        self.root.expand()
        for child in self.root.children:
            child.expand()

    def _add(self, node: TreeNode[Any], value: Any, budget: list[int]) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if budget[0] <= 0:
                node.add_leaf(Text("… (see raw record)", style="dim"))
                return
            budget[0] -= 1
            label = Text(f"{key}", style="bold")
            if isinstance(child, dict | list) and child:
                kind = "{…}" if isinstance(child, dict) else f"[{len(child)}]"
                branch = node.add(label + Text(f" {kind}", style="dim"), data=child)
                self._add(branch, child, budget)
            else:
                node.add_leaf(label + Text(" = ") + Text(json.dumps(child, ensure_ascii=False)))


class DetailPane(VerticalScroll):
    """The problem, identity, counters, callback, configuration tree and the raw
    record; back at its top whenever another run is shown."""

    BINDINGS = keys.DETAIL

    shown_key: var[tuple[str, str] | None] = var(None)
    """The run on show: a different one starts at the top, the same one keeps the
    reader's place when it is shown again with new data."""

    def compose(self) -> ComposeResult:
        yield Static(Text("select a run", style="dim"), id="detail-summary")
        yield ConfigTree("configuration snapshot", id="detail-config")
        yield Static(id="detail-raw")

    def show(
        self,
        run: Run | None,
        *,
        error: str | None = None,
        now: datetime | None = None,
        stuck: StuckRun | None = None,
        slow: str | None = None,
    ) -> None:
        """``slow``: what the triage index says of the run's duration, if anything."""
        summary_widget = self.query_one("#detail-summary", Static)
        raw = self.query_one("#detail-raw", Static)
        tree = self.query_one(ConfigTree)
        if run is None:
            summary_widget.update(Text(error or "select a run", style="dim"))
            tree.show(None)
            raw.update("")
            self.border_title = "detail"
            self.shown_key = None
            self.scroll_home(animate=False, immediate=True)
            return
        data = run_json(run)
        if (run.source, run.id) != self.shown_key:
            self.shown_key = (run.source, run.id)
            self.scroll_home(animate=False, immediate=True)
        summary_widget.update(summary(run, data, now, stuck, slow))
        tree.show(data["config"])
        text = Text("raw record\n", style="bold underline")
        text.append(json.dumps(data, indent=2, ensure_ascii=False))
        raw.update(text)
        self.border_title = Text(f"detail {clean(str(data['id']))}")  # never markup
