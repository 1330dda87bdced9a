"""The monitor: runs table, detail pane and log tail over one or more sources.

Composition and event handling only. Polling is the shared headless
:class:`~jobwatch.sources.poller.Poller` (the same one ``list``, ``watch``,
``logs --follow`` and ``serve`` use); what may be done to which run, and the
question asked first, come from :mod:`jobwatch.core.rules`; the table model is
the headless :class:`~jobwatch.tui.table_model.runset.RunSet`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import Notification, SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Input

from jobwatch.config import ConfigError
from jobwatch.config.live import LiveConfig
from jobwatch.core import Action, RunRow
from jobwatch.core.format import GLYPHS
from jobwatch.core.gcpause import freeze_loaded, gc_paused
from jobwatch.core.redact import clean
from jobwatch.sources.poller import FIRST_SCREEN_ROWS, Feed, Poller, PollReport
from jobwatch.sources.protocol import Source
from jobwatch.triage.feed import apply_chunked, fill, know_kinds
from jobwatch.triage.index import WINDOW_S, Touched, TriageIndex
from jobwatch.tui import keys
from jobwatch.tui.keymap import check_keymap, with_keymap
from jobwatch.tui.live import LiveMonitor
from jobwatch.tui.messages import CursorMoved, MarksChanged, RowsDrawn, SearchRequested
from jobwatch.tui.notices import FAILURE_TOAST_S, Bell, summary
from jobwatch.tui.run_actions import RunActions
from jobwatch.tui.screens.help import HelpScreen, key_text
from jobwatch.tui.screens.main import MainScreen
from jobwatch.tui.screens.sources import SourcesScreen
from jobwatch.tui.table_model.runset import Key, RunSet
from jobwatch.tui.table_model.window import WindowController, WindowedRunSet, windowed
from jobwatch.tui.theming import jobwatch_variables, pick_theme, register_all, start_with_theme
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from jobwatch.tui.widgets.status_line import StatusLine, StatusState

READ_ONLY_HIDDEN = frozenset({"abort", "archive", "unarchive", "rerun"})
"""Actions the footer and the palette do not offer in read-only mode."""
STATUS_TICK_S = 1.0
"""How often the status line is redrawn between polls (a retry countdown is live)."""
PRELOAD_S = 0.25
"""How long the first read may hold up the start before the screen shows anyway."""
FIRST_FRAME_S = 1.0
"""The longest the full load waits for the first frame to be drawn."""
WINDOW_FROM = 50_000
"""Runs from which the monitor holds a window of a windowed source's rows instead
of all of them (below, the whole table costs less than 65 MB and scrolls freely)."""
GC_PAUSE_ROWS = 1000
"""Polls with at least this many rows are applied with the cyclic collector paused."""
TRIAGE_INLINE_ROWS = 2000
"""A first-load batch above this many rows reaches the triage index by a worker."""


class JobwatchApp(App[None]):
    """The k9s of job runs."""

    CSS_PATH = "jobwatch.tcss"
    TITLE = "jobwatch"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = keys.APP

    def __init__(
        self,
        sources: Iterable[Source],
        *,
        refresh: float = 1.0,
        read_only: bool = False,
        theme: str | None = None,
        bell: bool = True,
        toasts: bool = True,
        keymap: dict[str, str] | None = None,
        warnings: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        columns: Sequence[str] | None = None,
        config_path: Path | None = None,
        window_from: int = WINDOW_FROM,
        live: LiveConfig | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.columns = list(columns) if columns else None
        self.config_path = config_path
        """Where the column chooser saves (``None``: applied, not saved)."""
        self.refresh_s = max(0.1, refresh)
        self.poller = Poller(
            list(sources),
            mode="rows",
            refresh=self.refresh_s,
            first_screen=FIRST_SCREEN_ROWS,
            on_rows=self._apply,
            on_settled=self.update_status,
            on_reset=self._forget,
        )
        self.triage = TriageIndex(clock=self.clock)
        know_kinds(self.triage, self.poller.feeds)
        """Jobs, failure groups and slow runs (``J``, ``F``, the slow mark): fed by
        the sink below, filled by a windowed store itself."""
        self._triage_backlog: list[list[RunRow]] = []
        self._triage_wanted = asyncio.Event()
        """Set when a triage screen opens: a backlog still waiting for the table's
        first sync goes in at once (see :meth:`_drain_triage`)."""
        self.read_only = read_only
        self.bell_enabled = bell
        self.toasts_enabled = toasts
        self._bell = Bell()
        self._failure_note: Notification | None = None
        self._held: list[tuple[str, str, SeverityLevel, float | None]] = []
        """Toasts raised while a dialog, help or the palette was up: shown after it."""
        self._failures_held = False
        self.runs = RunSet()
        self.live = LiveMonitor(self, live)
        """Stuck runs, late jobs, hooks and terminal notifications (tui/live.py)."""
        self.triage.late_of = self.live.late_text
        self.window: WindowController | None = None
        """Set when the one source answers windowed queries: the table then holds a
        bounded window of its rows (``tui/table_model/window.py``)."""
        self._window_from = window_from
        self.actions = RunActions(self)
        self.synced = asyncio.Event()
        self.last_poll: datetime | None = None
        self.loaded_key: Key | None = None
        """The run whose detail and log are on screen (tests wait for it)."""
        self.detail_loads = 0
        """Full runs fetched for the detail pane (a poll that changed nothing fetches none)."""
        self._wanted: tuple[Key | None, RunRow | None] | None = None
        """The selection and its row that the detail pane shows or is fetching."""
        self.poll_ms = 0.0
        self.apply_ms = 0.0
        """Of the last poll, the time spent merging rows into the table model and
        marking changed lines (synchronous; drawing them follows on its own)."""
        self._applying_ms = 0.0
        self._window_busy = False
        self._rows_drawn = asyncio.Event()
        self._warnings = [*warnings, *register_all(self)]
        name, warning = pick_theme(theme, self.available_themes)
        if warning:
            self._warnings.append(warning)
        start_with_theme(self, name)
        self.keymap, problems = check_keymap(keymap or {})
        self._warnings += problems
        if self.keymap:
            self.set_keymap(self.keymap)

    @property
    def bells(self) -> int:
        """How many times the bell rang (tests read it)."""
        return self._bell.rung

    @property
    def feeds(self) -> list[Feed]:
        return self.poller.feeds

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Toasts carry run ids, job names and error text from outside: never read
        them as markup, whoever calls (widgets pass ``markup=True`` by default).
        Never drawn over a dialog, help or the palette: held until it closes. The
        same words again replace the toast still showing them (a server gone while
        the user scrolls fails every page the same way: one toast, not a pile)."""
        if self._covered():
            if (message, title, severity, timeout) not in self._held:
                self._held.append((message, title, severity, timeout))
            return
        for note in list(self._notifications):
            if (note.message, note.title, note.severity) == (message, title, severity):
                self._unnotify(note, refresh=False)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- toasts and bell (tui/notices.py) --------------------------------------------

    def _covered(self) -> bool:
        """A modal screen (confirm, help, palette, sources) is on top of the monitor."""
        try:
            return isinstance(self.screen, ModalScreen)
        except Exception:
            return False

    def _screen_changed(self, screen: Screen[Any]) -> None:
        if isinstance(screen, ModalScreen):
            for note in list(self._notifications):
                if note is self._failure_note:
                    self._failures_held = True
                elif not note.has_expired:
                    self._held.append((note.message, note.title, note.severity, note.time_left))
            self._failure_note = None
            self.clear_notifications()
            # The main screen's own toasts stay drawn under a modal otherwise.
            self.main.query("Toast").remove()
            return
        held, self._held = self._held, []
        for message, title, severity, timeout in held:
            self.notify(message, title=title, severity=severity, timeout=timeout)
        if self._failures_held:
            self._show_failures()

    def _show_failures(self) -> None:
        """One toast sums up the unseen failures, replacing the one before it."""
        if not self.toasts_enabled:
            return
        if self._covered():
            self._failures_held = True
            return
        self._failures_held = False
        old, self._failure_note = self._failure_note, None
        if old is not None and old in self._notifications:
            self._unnotify(old, refresh=False)
        rows = [r for k in self.runs.unseen if (r := self.runs.rows.get(k) or self._recent(k))]
        if rows:
            rows.sort(key=lambda r: r.id)
            title, message = summary(rows)
            note = Notification(message, title, "error", FAILURE_TOAST_S, markup=False)
            self._failure_note = note
            self._notifications.add(note)
        self._refresh_notifications()

    def action_dismiss_toasts(self) -> None:
        """Every toast goes, and every failure counts as seen."""
        self._held.clear()
        self._failures_held = False
        self._failure_note = None
        self.runs.unseen.clear()
        self.clear_notifications()
        self._reloaded()  # the table's "!" marks go too

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # Stock Textual themes chosen from the palette still get status colours.
        return jobwatch_variables(self.current_theme)

    @property
    def main(self) -> MainScreen:
        """The monitor's screen, even while a dialog or help is on top of it."""
        return self._main

    async def preload(self, timeout: float = PRELOAD_S) -> None:
        """Read the first screen of rows before Textual starts (the CLI awaits this
        for a source it has opened), so the first frame already shows them: once
        Textual runs, its start-up work holds the event loop and a read finishing
        meanwhile waits for a second frame. A source slower than ``timeout`` goes
        on in the background and fills the table when it answers."""
        with contextlib.suppress(Exception):  # a failing source shows as stale
            await self._choose_window()
        await self.poll_once(wait=timeout)
        if self.window is not None:
            with contextlib.suppress(Exception):  # a failing source shows as stale
                await self.window.settle()

    def on_mount(self) -> None:
        self._main = MainScreen(
            self.runs, clock=self.clock, several=len(self.feeds) > 1, columns=self.columns
        )
        self.push_screen(self._main)
        self.screen_change_signal.subscribe(self, self._screen_changed)
        if isinstance(self.runs, WindowedRunSet):
            self.runs.on_need = self._settle_window
            self._settle_window()
        for warning in self._warnings:
            self.notify(clean(warning), severity="warning", timeout=8)
        self.set_interval(STATUS_TICK_S, self.update_status)
        self.run_worker(self._poll_loop(), group="poll", exclusive=True, exit_on_error=False)
        self.run_worker(self._fill_triage(), group="triage", exit_on_error=False)

    # -- polling -------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        await self.poller.run(hold=self._first_frame, alongside=self._poll_log, after=self._polled)

    async def _first_frame(self) -> None:
        """Reading the rest of a first sync (in the store's thread) would compete for
        the GIL with drawing the first screen: draw first."""
        if not self.synced.is_set():
            await self.rows_on_screen()

    async def rows_on_screen(self) -> None:
        """Return once the first screen of rows is drawn (at most ``FIRST_FRAME_S``):
        background work that reads much (the live look at every running run) waits
        for it, as the rest of a first sync does."""
        if len(self.runs) and not self._rows_drawn.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rows_drawn.wait(), FIRST_FRAME_S)

    async def poll_once(self, *, wait: float | None = None) -> None:
        """One poll of every due source and the open log, concurrently."""
        started = time.perf_counter()
        log = asyncio.create_task(self._poll_log())
        report = await self.poller.poll_once(wait=wait)
        await log
        self._polled(report, started)

    def _polled(self, report: PollReport, started: float | None = None) -> None:
        self.last_poll = datetime.fromtimestamp(self.clock(), UTC).astimezone()
        if started is not None:
            self.poll_ms = (time.perf_counter() - started) * 1000
        else:
            self.poll_ms = report.ms
        self.apply_ms, self._applying_ms = self._applying_ms, 0.0
        if not self.synced.is_set() and self.poller.synced():
            if len(self.runs.rows) >= GC_PAUSE_ROWS:
                freeze_loaded()
            self.synced.set()
        self.update_status()
        self.live.after_poll()

    def _apply(self, feed: Feed, rows: list[RunRow], first: bool) -> None:
        """The poller's sink: merge changed rows into the table model and mark the
        lines that changed (an action's result arrives here at once, too)."""
        started = time.perf_counter()
        if len(rows) < GC_PAUSE_ROWS:
            self._apply_rows(rows, first=first)
            self._feed_triage(rows, first)
        else:
            with gc_paused():  # a big batch allocates a lot and frees nothing yet
                self._apply_rows(rows, first=first)
                self._feed_triage(rows, first)
        self._applying_ms += (time.perf_counter() - started) * 1000

    # -- triage (jobs, failure groups, slow runs: jobwatch.triage) --------------------

    def _feed_triage(self, rows: list[RunRow], first: bool) -> None:
        """The index gets every batch, in order; a big first load (or anything
        after it while it is still going in) is applied by a worker in chunks, so
        the table's first screen never waits for the jobs view."""
        if self._triage_backlog or (first and len(rows) > TRIAGE_INLINE_ROWS):
            self._triage_backlog.append(rows)
            if len(self._triage_backlog) == 1:
                self.run_worker(self._drain_triage(), group="triage", exit_on_error=False)
            return
        touched = self.triage.apply(rows)
        if touched:
            self._triage_touched(touched)

    async def _drain_triage(self) -> None:
        """The backlog goes in once the table holds its first sync, or at once when
        a triage screen is open: on one event loop, indexing 100k rows while the
        pages arrive slowed the table's fill by a sixth (measured, serve 100k)."""
        await self._first_of(self.synced, self._triage_wanted)
        touched = Touched()
        while self._triage_backlog:
            touched.update(await apply_chunked(self.triage, self._triage_backlog[0]))
            self._triage_backlog.pop(0)
        freeze_loaded()  # the history now lives as long as the app, as the rows do
        if touched:
            self._triage_touched(None)

    @staticmethod
    async def _first_of(*events: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _triage_touched(self, touched: Touched | None) -> None:
        """Open triage screens redraw what a batch touched (``None``: everything)."""
        if not self._triage_wanted.is_set():
            return  # no triage screen was ever opened (its module is not even loaded)
        from jobwatch.tui.screens.triage import TriageScreen

        for screen in self.screen_stack:
            if isinstance(screen, TriageScreen) and screen.is_mounted:
                if touched is None:
                    screen.rebuild()
                else:
                    screen.touched(touched)

    async def _fill_triage(self) -> None:
        """A windowed store fills the index itself once its first poll is done (the
        rows of the history never reach the sink); changes since reach it anyway."""
        await self.synced.wait()
        filled = False
        for feed in self.feeds:
            if feed.window and feed.opened:
                try:
                    filled = await fill(self.triage, feed, self.clock() - WINDOW_S) or filled
                except Exception as exc:  # the views stay empty; the table goes on
                    self.notify(f"jobs view: {clean(str(exc))}", severity="warning")
        if filled:
            freeze_loaded()
            self._triage_touched(None)

    def slow_of(self, row: RunRow) -> str | None:
        """The runs table's slow mark and the detail pane's text."""
        return self.triage.slowness(row, self.clock())

    # The triage and columns screens are imported when first opened: they are
    # 25 ms of imports that the first screen does not need.
    def action_jobs(self) -> None:
        from jobwatch.tui.screens.triage import JobsScreen

        if not isinstance(self.screen, JobsScreen):
            several = len(self.feeds) > 1
            self._triage_wanted.set()
            self.push_screen(JobsScreen(self.triage, self.clock, several), self._triage_chosen)

    def action_failures(self) -> None:
        from jobwatch.tui.screens.triage import FailuresScreen

        if not isinstance(self.screen, FailuresScreen):
            several = len(self.feeds) > 1
            self._triage_wanted.set()
            screen = FailuresScreen(self.triage, self.clock, several)
            self.push_screen(screen, self._triage_chosen)

    def _triage_chosen(self, text: str | None) -> None:
        """Enter on a job or a group: the runs table shows its runs."""
        if not text:
            return
        box = self.main.query_one("#filter", Input)
        box.value = text
        self.runs.set_filter(text, now=self.clock())
        self._reloaded()
        self.main.query_one(RunsTable).focus()

    def _apply_rows(self, rows: list[RunRow], *, first: bool) -> None:
        self.live.observe(rows, first=first)
        table = self._table()
        if not self.runs.rows:
            self.runs.replace_all(rows)
            if table is not None:
                table.reloaded()
            return
        before = self.runs.version
        known = self.runs.rows
        arrived = [] if first else [r.key for r in rows if r.key not in known]
        faulted = self.runs.apply(rows, notice=not first)
        if table is not None:
            moved = self.runs.version != before
            table.changed([r.key for r in rows], moved=moved, flash=not first, arrived=arrived)
        if faulted:
            self._announce(faulted)

    async def _choose_window(self) -> None:
        """Hold a window of the rows when the one source answers windowed queries
        and has at least ``window_from`` runs; otherwise every row, as before."""
        source = windowed(self.poller.sources)
        if source is None or self.window is not None or self.poller.polls:
            return
        counts = await source.status_counts()
        if counts.total < self._window_from:
            return
        self.runs = WindowedRunSet()
        self.window = WindowController(
            source, self.runs, cursor=self._cursor_row, on_changed=self._reloaded, counts=counts
        )
        self.poller.feeds[0].window = True

    def _settle_window(self) -> None:
        """The windowed set needs the store (a scroll, a filter, a poll's counts)."""
        if self.window is not None and not self._window_busy:
            self._window_busy = True
            self.run_worker(self._window_worker(), group="window", exit_on_error=False)

    async def _window_worker(self) -> None:
        try:
            assert self.window is not None
            await self.window.settle()
        except Exception as exc:  # a filter the store cannot ask, a store gone
            self.notify(f"cannot read the table: {clean(str(exc))}", severity="error")
            return
        finally:
            self._window_busy = False
        runs = self.runs
        if isinstance(runs, WindowedRunSet) and (
            runs.need_reload or runs.need_resync or runs.need_extend
        ):
            self._settle_window()

    def _cursor_row(self) -> RunRow | None:
        table = self._table()
        key = table.cursor_key if table is not None else None
        return self.runs.rows.get(key) if key is not None else None

    def _forget(self, feed: Feed) -> None:
        """``feed``'s data was replaced: drop every row it showed (its new rows follow)."""
        several = len(self.feeds) > 1
        kept = [r for k, r in self.runs.rows.items() if several and k[0] != feed.label]
        self.runs.replace_all(kept)
        table = self._table()
        if table is not None:
            table.reloaded()

    async def _poll_log(self) -> None:
        try:
            log = self.main.query_one(LogView)
        except Exception:
            return
        if any(f.source is log.source and f.health.stale for f in self.feeds):
            return  # its source is down: no need to wait for it again before retrying
        try:
            await log.poll()
        except Exception as exc:
            log.note = f"logs unavailable: {clean(str(exc))}"

    def feed_for(self, key: Key | None) -> Feed | None:
        """The source that owns a run: where its detail, log and actions go."""
        if key is None or self.runs.row_of(key) is None:
            return None
        return self.poller.feed_for(key)

    def _announce(self, keys: list[Key]) -> None:
        """Watched runs just failed: the summary toast, the bell (at most once per
        10 s), and the unseen counter (the runs set counts them)."""
        self._show_failures()
        if self.bell_enabled and self._bell.due(self.clock()):
            self.bell()

    def _recent(self, key: Key) -> RunRow | None:
        """A row a windowed set dropped (it changed outside the window)."""
        return self.runs.recent.get(key) if isinstance(self.runs, WindowedRunSet) else None

    def action_refresh(self) -> None:
        """Poll now, and fetch the selected run's detail again whatever its row says."""
        self.poller.wake(force=True)
        table = self._table()
        if table is not None:
            self._wanted = None
            self._load_selected(table.cursor_key)

    def action_sources(self) -> None:
        if not isinstance(self.screen, SourcesScreen):
            self.push_screen(SourcesScreen(self.feeds, self.poller.clock))

    def action_choose_columns(self) -> None:
        from jobwatch.tui.screens.columns import ColumnsScreen

        table = self._table()
        if table is not None:
            self.push_screen(ColumnsScreen(table.columns_shown), self._columns_chosen)

    def _columns_chosen(self, names: list[str] | None) -> None:
        table = self._table()
        if names is None or table is None:
            return
        table.show_columns(names)
        self.columns = names or None
        if self.config_path is None:
            return
        from jobwatch.config.write import save_columns

        try:
            save_columns(self.config_path, names)
        except ConfigError as exc:
            self.notify(f"columns not saved: {exc}", severity="warning")

    # -- status line ---------------------------------------------------------------

    def update_status(self) -> None:
        try:
            status = self.main.query_one("#status", StatusLine)
        except Exception:
            return
        flags = []
        if self.read_only:
            flags.append("READ-ONLY")
        if self.runs.filter:
            flags.append(f"filter: {self.runs.filter.text}")
        if self.runs.faults_only:
            flags.append("faults only")
        if self.runs.show_archived:
            flags.append(f"+{self.runs.archived_count} archived")
        flags += self._marks_flag()
        state = StatusState(
            flags=flags,
            health=self.poller.health(),
            unseen=len(self.runs.unseen),
            counts=self.runs.counts,
            last_poll=self.last_poll,
            refresh=self.refresh_s,
            retry={f.name: f.tracker.wait() for f in self.feeds},
            unreadable=self.runs.unreadable_count,
            notes=self.live.notes(),
            late=self.live.late_count(),
        )
        status.show(state, self.theme_variables)
        # The filter box counts its matches while it is typed in ("12 of 340 match").
        self.main.query_one("#filter", Input).border_title = self.runs.match_text()

    # -- selection -----------------------------------------------------------------

    def _table(self) -> RunsTable | None:
        try:
            return self.main.query_one(RunsTable)
        except Exception:
            return None

    @on(RowsDrawn)
    def _first_rows_drawn(self) -> None:
        self._rows_drawn.set()

    @on(CursorMoved)
    def _selected(self, event: CursorMoved) -> None:
        """Another run was selected, or the selected run's row changed in a poll:
        the detail and the log title follow. Its full record is fetched again only
        when a poll handed over a new row for it (sources hand a run over only when
        its revision changed), never because the table merely moved."""
        if event.user and event.key is not None and event.key in self.runs.unseen:
            self.runs.seen(event.key)
            self.update_status()
        row = self.runs.rows.get(event.key) if event.key is not None else None
        if self._wanted is not None and self._wanted[0] == event.key and self._wanted[1] is row:
            return
        self._load_selected(event.key)

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def _load_selected(self, key: Key | None) -> None:
        detail = self.main.query_one(DetailPane)
        log = self.main.query_one(LogView)
        feed = self.feed_for(key)
        row = self.runs.rows.get(key) if key is not None else None
        self._wanted = (key, row)
        if key is None or feed is None:
            detail.show(None)
            await log.show_run(None, None)
            log.run_status = None
            self.loaded_key = None
            return
        if row is not None and row.error:
            detail.show(None, error=f"unreadable record: {row.error}")
        else:
            self.detail_loads += 1
            try:
                run = await feed.source.get(key[1])
            except Exception as exc:
                self._wanted = None  # try again on the next change or selection
                detail.show(None, error=f"cannot load {clean(key[1])}: {clean(str(exc))}")
            else:
                detail.show(
                    run,
                    now=datetime.fromtimestamp(self.clock(), UTC),
                    stuck=self.live.report.stuck.get(key),
                    slow=self.slow_of(row) if row is not None else None,
                )
        await log.show_run(feed.source, key[1])
        log.run_status = f"{GLYPHS[row.status]} {row.status.value}" if row is not None else None
        self.loaded_key = key

    # -- marks -----------------------------------------------------------------------

    def _marks_flag(self) -> list[str]:
        """``3 marked`` (``, 1 hidden`` when the filter hides some of them)."""
        if not self.runs.marked:
            return []
        hidden = len(self.runs.hidden_marks())
        return [f"{len(self.runs.marked)} marked" + (f", {hidden} hidden" if hidden else "")]

    @on(MarksChanged)
    def marks_changed(self) -> None:
        """The status line and the footer show the count (the footer's "unmark
        all" key carries it, and is there only while something is marked)."""
        count = len(self.runs.marked)
        bindings = self._bindings.key_to_bindings  # keymaps apply to copies of this
        for key, bound in bindings.items():
            bindings[key] = [
                replace(b, description=f"{count} marked") if b.id == "runs.unmark_all" else b
                for b in bound
            ]
        self.refresh_bindings()
        self.update_status()

    def action_clear_marks(self) -> None:
        self.runs.clear_marks()
        table = self._table()
        if table is not None:
            table.refresh()
        self.marks_changed()

    # -- panes, filter, sort -------------------------------------------------------

    def action_zoom(self) -> None:
        """``z``: the focused pane alone, full screen; again: every pane."""
        main = self.main
        main.zoom(None if main.zoomed else main.pane_of(self.focused))

    def action_focus_pane(self, pane: str) -> None:
        target = {"runs": "#runs", "detail": "#detail", "log": "#log"}[pane]
        if self.main.zoomed:
            self.main.zoom(pane)  # a hidden pane cannot take the focus
        panes = self.main.query_one("#panes")
        if pane in ("detail", "log"):
            panes.set_class(pane == "detail", "-show-detail")
            panes.set_class(pane == "log", "-show-log")
        self.main.query_one(target).focus()

    def on_descendant_focus(self) -> None:
        focused = self.focused
        if focused is None:
            return
        panes = self.main.query_one("#panes")
        if focused.id == "log" or focused.id == "log-search":
            panes.set_class(False, "-show-detail")
            panes.set_class(True, "-show-log")
        elif focused.id in ("detail", "detail-config"):
            panes.set_class(True, "-show-detail")
            panes.set_class(False, "-show-log")

    def action_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.add_class("-visible")
        # Focus now, not on the next message: keys typed right after "/" are
        # already queued and must land in the box, not on the table.
        self.main.set_focus(box)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.runs.set_filter(event.value, now=self.clock())
        self._reloaded()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        # The status line keeps showing the filter; "/" brings the box back to edit it.
        self.main.query_one("#filter", Input).remove_class("-visible")
        self.main.query_one(RunsTable).focus()

    def action_clear_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        search = self.main.query_one("#log-search", Input)
        if search.has_class("-visible"):
            search.remove_class("-visible")
            self.main.query_one(LogView).focus()
            return
        if box.value or box.has_class("-visible"):
            box.value = ""
            box.remove_class("-visible")
            self.runs.set_filter("")
            self._reloaded()
            self.main.query_one(RunsTable).focus()

    def _reloaded(self) -> None:
        table = self._table()
        if table is not None:
            table.reloaded()
        self.update_status()

    def action_toggle_faults(self) -> None:
        self.runs.toggle_faults()
        self._reloaded()

    def action_toggle_archived(self) -> None:
        self.runs.toggle_archived()
        self._reloaded()

    def action_cycle_sort(self) -> None:
        column = self.runs.cycle_sort()
        self._reloaded()
        self.notify(f"sorted by {column}", timeout=1.5)

    def action_reverse_sort(self) -> None:
        self.runs.toggle_reverse()
        self._reloaded()

    # -- log search box --------------------------------------------------------------

    @on(SearchRequested)
    def _open_search(self) -> None:
        box = self.main.query_one("#log-search", Input)
        box.add_class("-visible")
        self.main.set_focus(box)

    @on(Input.Submitted, "#log-search")
    async def _search(self, event: Input.Submitted) -> None:
        event.input.remove_class("-visible")
        log = self.main.query_one(LogView)
        log.focus()
        await log.search(event.value)

    # -- actions on runs (tui/run_actions.py) ------------------------------------------

    def action_abort(self) -> None:
        self.actions.ask(Action.ABORT)

    def action_archive(self) -> None:
        self.actions.ask(Action.ARCHIVE)

    def action_unarchive(self) -> None:
        self.actions.ask(Action.UNARCHIVE)

    def action_copy_id(self) -> None:
        self.actions.copy_id()

    def action_rerun(self) -> None:
        self.actions.ask(Action.RERUN)

    def action_diff(self) -> None:
        self.actions.show_diff()

    # -- help and palette ----------------------------------------------------------

    def _binding_sections(self) -> list[tuple[str, str | None, list[Binding]]]:
        """The bindings help and the palette list, with the user's keys, without
        the ones read-only mode does not offer."""
        return [
            (
                title,
                target,
                [
                    with_keymap(b, self.keymap)
                    for b in bindings
                    if isinstance(b, Binding) and self._offered(b.action)
                ],
            )
            for title, target, bindings in keys.SECTIONS
        ]

    def _offered(self, action: str) -> bool:
        return not (self.read_only and action in READ_ONLY_HIDDEN)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only: abort, archive and unarchive are not offered (footer, keys);
        "unmark all" only while something is marked."""
        if action == "clear_marks":
            return bool(self.runs.marked)
        return self._offered(action)

    def action_help(self) -> None:
        sections = [(title, b) for title, _, b in self._binding_sections()]
        self.push_screen(HelpScreen(sections, self.get_key_display))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for section, target, bindings in self._binding_sections():
            for binding in bindings:
                if binding.action in ("quit", "help"):
                    continue
                yield SystemCommand(
                    f"{binding.description}",
                    f"{section}: key {key_text(binding, self.get_key_display)}",
                    partial(self._palette_action, target, binding.action),
                )

    async def _palette_action(self, target: str | None, action: str) -> None:
        if target is None:
            await self.run_action(action)
            return
        widget = self.main.query_one(target)
        await self.run_action(action, widget)
