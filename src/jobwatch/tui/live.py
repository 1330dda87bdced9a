"""The monitor's side of stuck runs, late jobs and hooks (the logic is headless, in
:mod:`jobwatch.triage.live`): stamp stuck rows so the table, the filter and
faults-only see them, announce each stuck run once through the failure summary
toast, each late job once with its own toast, fire the hooks in the background and
write the terminal notification through Textual's driver (so it reaches the
terminal the monitor runs in, over SSH too)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from jobwatch.config.live import LiveConfig
from jobwatch.core.columns import ago
from jobwatch.core.redact import clean
from jobwatch.core.row import RunRow
from jobwatch.triage.hooks import HookRunner
from jobwatch.triage.live import (
    LiveReport,
    LiveWatch,
    late_body,
    notice_of,
    run_body,
    stuck_body,
)
from jobwatch.triage.terminal import osc_notification

if TYPE_CHECKING:
    from jobwatch.tui.app import JobwatchApp

LATE_TOAST_S = 12.0

Key = tuple[str, str]


class LiveMonitor:
    def __init__(self, app: JobwatchApp, config: LiveConfig | None) -> None:
        self.app = app
        self.config = config or LiveConfig()
        self.watch = LiveWatch.from_config(self.config, clock=app.clock)
        self.hooks = HookRunner(self.config.hooks, on_warning=self._hook_warning)
        self.hook_warning: str | None = None
        self.terminal_notices: list[str] = []
        """Sequences written to the terminal (tests read them)."""
        self.checks = 0
        self._stamped: dict[Key, float] = {}
        self._busy = False

    @property
    def report(self) -> LiveReport:
        return self.watch.report

    # -- from the poller's sink ------------------------------------------------------

    def observe(self, rows: list[RunRow], *, first: bool) -> None:
        """Rows of a batch: fresh ones lose the stuck stamp, so put it back (they
        are not shared yet), and fire ``on_failure`` for the runs that just failed."""
        stuck = self.watch.report.stuck
        if stuck:
            for row in rows:
                found = stuck.get(row.key)
                if found is not None and row.stuck_since is None:
                    row.stuck_since = found.quiet_since
        for row in self.watch.observe(rows, first=first):
            self._event("failure", row.key, row)

    # -- after each poll ---------------------------------------------------------------

    def after_poll(self) -> None:
        if not self._busy:
            self._busy = True
            self.app.run_worker(self._check(), group="live", exit_on_error=False)

    async def _check(self) -> None:
        try:
            # The first look reads every running run's activity (on a big shared
            # store, 0.14 s of rows parsed on the event loop): after the first frame.
            await self.app.rows_on_screen()
            report = await self.watch.check(self.app.feeds)
            self.checks += 1
            self._stamp(report)
            now = self.app.clock()
            fresh = [s.key for s in report.new_stuck if s.key in self.app.runs.rows]
            if fresh:
                self.app.runs.unseen.update(fresh)
                self.app._announce(fresh)
            for stuck in report.new_stuck:
                row = self.app.runs.rows.get(stuck.key)
                self._event("stuck", stuck.key, row, stuck_body(stuck, now))
            for late in report.new_late:
                self.app.notify(
                    f"{clean(late.source)}: no run since it was due ({ago(late.late_by)} ago)",
                    title=f"{clean(late.job)} late",
                    severity="warning",
                    timeout=LATE_TOAST_S,
                )
                self._event("late", None, None, late_body(late))
            self.app.update_status()
        finally:
            self._busy = False

    def _stamp(self, report: LiveReport) -> None:
        """Mark (and unmark) stuck rows in the table model; cost: the stuck ones."""
        runs = self.app.runs
        changed: list[RunRow] = []
        for key, stuck in report.stuck.items():
            row = runs.rows.get(key)
            if row is not None and row.stuck_since != stuck.quiet_since:
                changed.append(replace(row, stuck_since=stuck.quiet_since))
        for key in [k for k in self._stamped if k not in report.stuck]:
            row = runs.rows.get(key)
            if row is not None and row.stuck_since is not None:
                changed.append(replace(row, stuck_since=None))
        self._stamped = {k: s.quiet_since for k, s in report.stuck.items()}
        runs.set_stuck(frozenset(k[1] for k in report.stuck))
        if changed:
            runs.apply(changed, notice=False)
            table = self.app._table()
            if table is not None:
                table.changed([r.key for r in changed], moved=True, flash=False, arrived=[])

    # -- announcing ------------------------------------------------------------------

    def _event(
        self, event: str, key: Key | None, row: RunRow | None, extra: dict[str, Any] | None = None
    ) -> None:
        kind = self.config.terminal_notify
        if not self.hooks.wants(event) and kind == "off":
            return
        self.app.run_worker(
            self._deliver(event, key, row, extra or {}), group="hooks", exit_on_error=False
        )

    async def _deliver(
        self, event: str, key: Key | None, row: RunRow | None, extra: dict[str, Any]
    ) -> None:
        body = dict(extra)
        if key is not None:
            body.update(await run_body(self.app.feed_for(key) or self._feed(key), key, row))
        self.hooks.fire(event, body)
        kind = self.config.terminal_notify
        if kind != "off":
            title, text = notice_of(event, body)
            self.write_terminal(osc_notification(kind, title, text))

    def _feed(self, key: Key) -> Any:
        feeds = self.app.feeds
        for feed in feeds:
            if feed.label == key[0]:
                return feed
        return feeds[0] if len(feeds) == 1 else None

    def write_terminal(self, sequence: str) -> None:
        if not sequence:
            return
        self.terminal_notices.append(sequence)
        driver = self.app._driver
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.write(sequence)
                driver.flush()

    def _hook_warning(self, text: str) -> None:
        self.hook_warning = text
        self.app.update_status()

    # -- the status line -------------------------------------------------------------

    def notes(self) -> list[str]:
        return [self.hook_warning] if self.hook_warning else []

    def late_text(self, key: tuple[str, str]) -> str | None:
        """What the jobs view says of a late job (its ``late_of``): ``late 12m``."""
        for late in self.watch.report.late:
            if late.key == key:
                return f"late {ago(late.late_by)}"
        return None

    def late_count(self) -> int:
        return len(self.watch.report.late)
