"""The monitor: runs table, detail pane and log tail over one or more sources.

One long-lived worker polls every source in turn, waits ``refresh`` seconds after
the poll *finished* (so polls never overlap or pile up), and applies only what
changed. A failing source is marked stale and retried with back-off while the
others keep updating; its last known runs stay on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from jobwatch.core import Action, RunRow, Status, refusal
from jobwatch.core.errors import JobwatchError
from jobwatch.core.format import GLYPHS
from jobwatch.core.gcpause import freeze_loaded, gc_paused
from jobwatch.core.redact import clean
from jobwatch.sources.health import Backoff, SourceHealth, Tracker, describe_error
from jobwatch.sources.protocol import Source
from jobwatch.tui.screens.confirm import ConfirmScreen
from jobwatch.tui.screens.help import HelpScreen
from jobwatch.tui.table_model.runset import Key, RunSet
from jobwatch.tui.theming import jobwatch_variables, pick_theme, register_all
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable

FIRST_SCREEN_ROWS = 300
"""Rows loaded before the full table, so the first paint does not wait for 100k."""
TOASTS_PER_POLL = 3
PRELOAD_S = 0.25
"""How long the first read may hold up the start before the screen shows anyway."""
FIRST_FRAME_S = 1.0
"""The longest the full load waits for the first frame to be drawn."""
GC_PAUSE_ROWS = 1000
"""Polls with at least this many rows are applied with the cyclic collector paused."""


@dataclass(eq=False)
class Feed:
    """One source as the monitor sees it: where its poll resumes and its health.

    Health and back-off are the headless :class:`~jobwatch.sources.health.Tracker`
    that :class:`~jobwatch.sources.select.MultiSource` uses too. The monitor does not
    poll through ``MultiSource`` itself: that keeps every source's full ``Run``
    models, which at 100k runs is the parse time and memory the table's
    ``RunRow`` fast path (``newest_rows``/``row_changes``) exists to avoid, and
    the monitor's ``RunSet`` already holds the last known rows of every source.
    """

    source: Source
    cursor: int | str | None = None
    synced: bool = False
    partial: bool = False
    tracker: Tracker = field(default_factory=lambda: Tracker(backoff=Backoff(base=1.0, cap=60.0)))
    broken: int = 0
    label: str | None = None
    """With several sources open, every row is stamped with its source's name, so
    rows are keyed by (source name, run id) and two sources' ids never collide."""
    busy: bool = False
    more: bool = False
    """The source said more changes are waiting than one page held."""
    last_poll: float | None = None
    """``time.monotonic()`` when its last poll started."""
    forced: bool = False
    """``r`` asks every source now, whatever its own interval says."""
    reset: bool = False
    """The source said its data was replaced (a store file swapped): the next
    rows replace every row it showed instead of merging into them."""

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def every(self) -> float:
        """The source's own poll interval (vendor APIs: 15 s unless configured);
        0 means every tick of the monitor's refresh."""
        return float(getattr(self.source, "poll_every", 0.0) or 0.0)

    def wait(self) -> float | None:
        """Seconds until this source wants polling again, if it has its own pace."""
        if self.last_poll is None or not self.every or self.forced or self.busy:
            return None
        return max(0.0, self.last_poll + self.every - time.monotonic())

    @property
    def health(self) -> SourceHealth:
        return self.tracker.health

    def due(self) -> bool:
        if self.busy or not self.tracker.due():
            return False
        wait = self.wait()
        return wait is None or wait <= 0.0 or not self.synced or self.more

    async def fetch(self) -> list[RunRow]:
        """Rows changed since the last poll, by the cheapest path the source has."""
        rows = await self._fetch()
        if self.label is not None:
            # Fresh objects built for this poll and not shared yet: relabel in place.
            for row in rows:
                row.source = self.label
        return rows

    async def _fetch(self) -> list[RunRow]:
        source: Any = self.source
        await source.open()  # no-op when open; reconnects a source that failed to open
        if not self.synced and not self.partial and hasattr(source, "newest_rows"):
            self.partial = True
            return list(await source.newest_rows(FIRST_SCREEN_ROWS))
        if hasattr(source, "row_changes"):
            rows, self.cursor = await source.row_changes(self.cursor)
            return list(rows)
        # One page per poll: a big first sync paints page by page instead of
        # showing nothing until the last page; the poll loop asks again at once
        # while ``more`` is set.
        changes = await self.source.changes(self.cursor)
        self.cursor, self.more = changes.cursor, changes.more
        rows = [RunRow.from_run(run) for run in changes.runs]
        for error in changes.errors:
            self.broken += 1
            run_id = error.id or f"unreadable-{self.broken}"
            rows.append(RunRow.broken(error.source, run_id, clean(error.message)))
        return rows

    async def poll(self) -> tuple[list[RunRow], bool] | None:
        """Changed rows and whether this was the first load, or ``None`` when the
        source failed (it is then marked stale and retried after its back-off)."""
        self.busy = True
        self.last_poll, self.forced = time.monotonic(), False
        try:
            rows = await self.fetch()
        except Exception as exc:  # a source failing never stops the others
            self.tracker.failed(describe_error(exc), retry_after=getattr(exc, "retry_after", None))
            if getattr(exc, "resync", False):  # start over: a first sync of the new data
                self.cursor, self.synced, self.partial, self.more = None, False, False, False
                self.reset = True
            return None
        finally:
            self.busy = False
        first = not self.synced
        if (not self.partial or self.cursor is not None) and not self.more:
            self.synced = True
        self.tracker.succeeded()
        return rows, first


class MainScreen(Screen[None]):
    """Stacks the panes on a small terminal and lays them side by side on a big one."""

    AUTO_FOCUS = "#runs"

    def compose(self) -> ComposeResult:
        app = self.app
        assert isinstance(app, JobwatchApp)
        yield Static(id="status")
        # select_on_focus off: keys typed right after "/" must not be selected and
        # then overwritten when the (later) focus event arrives.
        yield Input(
            placeholder="filter: text  status:failed  job:x  source:y  !term",
            id="filter",
            select_on_focus=False,
        )
        yield RunsTable(app.runs, id="runs", clock=app.clock, several=len(app.feeds) > 1)
        with Horizontal(id="panes", classes="-show-log"):
            yield DetailPane(id="detail")
            with Vertical(id="logpane"):
                yield LogView(id="log")
                yield Input(
                    placeholder="search the log (Enter: find, Esc: cancel)",
                    id="log-search",
                    select_on_focus=False,
                )
        yield Footer()


class JobwatchApp(App[None]):
    """The k9s of job runs."""

    CSS_PATH = "jobwatch.tcss"
    TITLE = "jobwatch"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "focus_pane('runs')", "Runs", show=False, id="pane.runs"),
        Binding("2", "focus_pane('detail')", "Detail", show=False, id="pane.detail"),
        Binding("3", "focus_pane('log')", "Log", show=False, id="pane.log"),
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear_filter"),
        Binding("f", "toggle_faults", "Faults", id="runs.faults"),
        Binding("s", "cycle_sort", "Sort", id="runs.sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, id="runs.reverse"),
        Binding("full_stop", "toggle_archived", "Archived", show=False, id="runs.archived"),
        Binding("a", "abort", "Abort", id="run.abort"),
        Binding("A", "archive", "Archive", id="run.archive"),
        Binding("u", "unarchive", "Unarchive", show=False, id="run.unarchive"),
        Binding("y", "copy_id", "Copy id", show=False, id="run.copy_id"),
        Binding("r", "refresh", "Refresh", show=False, id="app.refresh"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        sources: Iterable[Source],
        *,
        refresh: float = 1.0,
        read_only: bool = False,
        theme: str | None = None,
        bell: bool = True,
        keymap: dict[str, str] | None = None,
        warnings: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.feeds = [Feed(source) for source in sources]
        self._by_name: dict[str, Feed] = {}
        if len(self.feeds) > 1:
            for feed in self.feeds:
                feed.label = feed.name
                self._by_name[feed.name] = feed
        self.refresh_s = max(0.1, refresh)
        self.read_only = read_only
        self.bell_enabled = bell
        self.bells = 0
        self.runs = RunSet()
        self.synced = asyncio.Event()
        self.last_poll: datetime | None = None
        self.loaded_key: Key | None = None
        """The run whose detail and log are on screen (tests wait for it)."""
        self.poll_ms = 0.0
        self.apply_ms = 0.0
        """Of the last poll, the time spent merging rows into the table model and
        marking changed lines (synchronous; drawing them follows on its own)."""
        self._poll_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._rows_drawn = asyncio.Event()
        self._fetching: set[asyncio.Task[None]] = set()
        self._warnings = [*warnings, *register_all(self)]
        name, warning = pick_theme(theme, self.available_themes)
        if warning:
            self._warnings.append(warning)
        self.theme = name
        if keymap:
            self.set_keymap(keymap)

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
        them as markup, whoever calls (widgets pass ``markup=True`` by default)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

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
        await self.poll_once(wait=timeout)

    def on_mount(self) -> None:
        self._main = MainScreen()
        self.push_screen(self._main)
        for warning in self._warnings:
            self.notify(clean(warning), severity="warning", timeout=8)
        self.run_worker(self._poll_loop(), group="poll", exclusive=True, exit_on_error=False)

    # -- polling -------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        """Poll, then wait: the next poll is scheduled after this one finished.

        A source slower than ``refresh`` finishes in the background (its rows are
        applied when they arrive) and is skipped until then, so one hanging server
        never holds up the others."""
        try:
            while True:
                if len(self.runs) and not (self.synced.is_set() or self._rows_drawn.is_set()):
                    # Reading the rest of a first sync (in the store's thread) would
                    # compete for the GIL with drawing the first screen: draw first.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._rows_drawn.wait(), FIRST_FRAME_S)
                await self.poll_once(wait=self.refresh_s)
                if any(f.due() and (not f.synced or f.more) for f in self.feeds):
                    continue  # the first screen is painted; load the rest straight away
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._next_wait())
                self._wake.clear()
        finally:
            for task in list(self._fetching):
                task.cancel()

    def _next_wait(self) -> float:
        """``refresh``, or sooner when a failing source is due for a retry or a
        source's own pace is quicker than the monitor's."""
        waits = [self.refresh_s]
        waits += [w for f in self.feeds if (w := f.tracker.wait()) is not None]
        waits += [w for f in self.feeds if f.tracker.due() and (w := f.wait()) is not None]
        return max(0.05, min(waits))

    async def poll_once(self, *, wait: float | None = None) -> None:
        """One poll of every due source, concurrently; applies only what changed.

        Returns when every source answered, or after ``wait`` seconds: a source
        still busy then goes on in the background and is applied when it answers.
        """
        async with self._poll_lock:
            started = time.perf_counter()
            self.apply_ms = 0.0
            # The open log is read alongside the sources, not after them, so the
            # poll ends when its rows are merged; the repaint follows on its own.
            log_task = asyncio.create_task(self._poll_log())
            tasks = []
            for feed in self.feeds:
                if feed.due():
                    feed.busy = True  # not picked again while this poll is running
                    task = asyncio.create_task(self._poll_feed(feed))
                    self._fetching.add(task)
                    task.add_done_callback(self._fetched)
                    tasks.append(task)
            if tasks:
                done, _ = await asyncio.wait(tasks, timeout=wait)
                for task in done:
                    task.result()  # a bug in applying rows is raised, not swallowed
            await log_task
            self.last_poll = datetime.fromtimestamp(self.clock(), UTC).astimezone()
            self.poll_ms = (time.perf_counter() - started) * 1000
            self.update_status()

    async def _poll_feed(self, feed: Feed) -> None:
        result = await feed.poll()
        if result is not None and feed.reset:
            feed.reset = False
            self._replace_feed(feed, result[0])
        elif result is not None:
            rows, first = result
            self._apply(feed, rows, first=first)
        if all(f.synced or (not f.health.ok and f.health.failures) for f in self.feeds):
            if not self.synced.is_set() and len(self.runs.rows) >= GC_PAUSE_ROWS:
                freeze_loaded()
            self.synced.set()

    def _fetched(self, task: asyncio.Task[None]) -> None:
        """A feed's poll ended; one that outlived its poll_once updates the screen."""
        self._fetching.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            self.log.error("poll failed", task.exception())
        if not self._poll_lock.locked():  # else poll_once updates the status line itself
            self.update_status()
            self._wake.set()  # a first sync may need its next page

    def _apply(self, feed: Feed, rows: list[RunRow], *, first: bool) -> None:
        if not rows:
            return
        started = time.perf_counter()
        if len(rows) < GC_PAUSE_ROWS:
            self._apply_rows(rows, first=first)
        else:
            with gc_paused():  # a big batch allocates a lot and frees nothing yet
                self._apply_rows(rows, first=first)
        self.apply_ms += (time.perf_counter() - started) * 1000

    def _apply_rows(self, rows: list[RunRow], *, first: bool) -> None:
        table = self._table()
        if not self.runs.rows:
            self.runs.replace_all(rows)
            if table is not None:
                table.reloaded()
            return
        before = self.runs.version
        faulted = self.runs.apply(rows, notice=not first)
        if table is not None:
            moved = self.runs.version != before
            table.changed([r.key for r in rows], moved=moved, flash=not first)
        if faulted:
            self._announce(faulted)

    def _replace_feed(self, feed: Feed, rows: list[RunRow]) -> None:
        """Show ``rows`` instead of everything ``feed`` showed before."""
        kept = [r for k, r in self.runs.rows.items() if feed.label and k[0] != feed.label]
        self.runs.replace_all(kept + rows)
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
        if key is None or key not in self.runs.rows:
            return None
        if not self._by_name:
            return self.feeds[0] if self.feeds else None
        return self._by_name.get(key[0])

    def _announce(self, keys: list[Key]) -> None:
        """A watched run just failed: toast, bell, and the unseen counter."""
        rows = [self.runs.rows[k] for k in keys]
        if len(rows) > TOASTS_PER_POLL:
            self.notify(f"{len(rows)} runs failed or were lost", title="failures", severity="error")
        else:
            for row in rows:
                what = clean(row.job or row.label or "")
                problem = f" — {clean(row.problem)}" if row.problem else ""
                self.notify(
                    f"{GLYPHS[row.status]} {clean(row.id)} {what}{problem}",
                    title=f"run {row.status.value}",
                    severity="error",
                )
        if self.bell_enabled:
            self.bells += 1
            self.bell()

    def action_refresh(self) -> None:
        for feed in self.feeds:
            feed.forced = True
        self._wake.set()

    # -- status line ---------------------------------------------------------------

    def update_status(self) -> None:
        """Flags and failing sources first (they change what you see), then unseen
        failures, counts, the healthy sources and the last poll: an 80-column line
        cuts the end."""
        try:
            status = self.main.query_one("#status", Static)
        except Exception:
            return
        text = Text()
        flags = []
        if self.read_only:
            flags.append("READ-ONLY")
        if self.runs.filter:
            flags.append(f"filter: {self.runs.filter.text}")
        if self.runs.faults_only:
            flags.append("faults only")
        if self.runs.show_archived:
            flags.append(f"+{self.runs.archived_count} archived")
        if self.runs.marked:
            flags.append(f"{len(self.runs.marked)} marked")
        if flags:
            text.append(" · ".join(clean(f) for f in flags) + " │ ", style="bold")
        for feed in self.feeds:
            if not feed.health.ok:
                state = feed.health.describe()
                text.append(f"[{clean(feed.name)}: {state}]", style="bold reverse")
                text.append(" ")
        if self.runs.unseen:
            text.append(f"! {len(self.runs.unseen)} unseen ", style="bold reverse")
            text.append(" ")
        colors = self.theme_variables
        for s in Status:
            count = self.runs.counts.get(s, 0)
            if count:
                color = colors.get(f"status-{s.value}")
                text.append(f"{GLYPHS[s]} {count:,} {s.value}  ", style=color or "")
        for feed in self.feeds:
            if feed.health.ok:
                text.append(f"[{clean(feed.name)}: ok] ")
        if self.last_poll:
            text.append(f"{self.last_poll:%H:%M:%S} /{self.refresh_s:g}s")
        status.update(text, layout=False)  # one line of a fixed height: no relayout

    # -- selection -----------------------------------------------------------------

    def _table(self) -> RunsTable | None:
        try:
            return self.main.query_one(RunsTable)
        except Exception:
            return None

    @on(RunsTable.RowsDrawn)
    def _first_rows_drawn(self) -> None:
        self._rows_drawn.set()

    @on(RunsTable.CursorMoved)
    def _selected(self, event: RunsTable.CursorMoved) -> None:
        if event.key is not None and event.key in self.runs.unseen:
            self.runs.seen(event.key)
            self.update_status()
        self._load_selected(event.key)

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def _load_selected(self, key: Key | None) -> None:
        detail = self.main.query_one(DetailPane)
        log = self.main.query_one(LogView)
        feed = self.feed_for(key)
        if key is None or feed is None:
            detail.show(None)
            await log.show_run(None, None)
            self.loaded_key = None
            return
        row = self.runs.rows.get(key)
        if row is not None and row.error:
            detail.show(None, error=f"unreadable record: {row.error}")
        else:
            try:
                run = await feed.source.get(key[1])
            except Exception as exc:
                detail.show(None, error=f"cannot load {clean(key[1])}: {clean(str(exc))}")
            else:
                detail.show(run, now=datetime.fromtimestamp(self.clock(), UTC))
        await log.show_run(feed.source, key[1])
        self.loaded_key = key

    # -- panes, filter, sort -------------------------------------------------------

    def action_focus_pane(self, pane: str) -> None:
        target = {"runs": "#runs", "detail": "#detail", "log": "#log"}[pane]
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
        self.runs.set_filter(event.value)
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

    @on(LogView.SearchRequested)
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

    # -- actions on runs -----------------------------------------------------------

    def _targets(self) -> list[Key]:
        marked = [k for k in self.runs.marked if k in self.runs.rows]
        if marked:
            return sorted(marked, key=lambda k: self.runs.index_of(k) or 0)
        table = self._table()
        return [table.cursor_key] if table is not None and table.cursor_key else []

    def action_abort(self) -> None:
        self._ask(Action.ABORT)

    def action_archive(self) -> None:
        self._ask(Action.ARCHIVE)

    def action_unarchive(self) -> None:
        self._ask(Action.UNARCHIVE)

    def _ask(self, action: Action) -> None:
        verb = action.value
        if self.read_only:
            self.notify(
                f"read-only mode: {verb} is disabled (--read-only, or read_only in the config)",
                severity="warning",
            )
            return
        targets = self._targets()
        if not targets:
            self.notify(f"nothing to {verb}: no run selected", severity="warning")
            return
        allowed: list[Key] = []
        refused: list[str] = []
        for key in targets:
            row = self.runs.rows[key]
            reason = refusal(action, row)
            feed = self.feed_for(key)
            if reason is None and feed is not None and feed.source.read_only:
                reason = f"cannot {verb} {row.id}: source {feed.name} is read-only"
            if reason:
                refused.append(reason)
            else:
                allowed.append(key)
        if not allowed:
            self.notify(
                "\n".join(clean(r) for r in refused), title=f"nothing to {verb}", severity="error"
            )
            return
        if action is Action.UNARCHIVE:  # harmless and undoable: no dialog
            self._perform(action, allowed)
            return
        title, body, yes_label = self._describe(action, allowed, refused)
        self.push_screen(
            ConfirmScreen(title, body, yes_label=yes_label),
            partial(self._confirmed, action, allowed),
        )

    def _describe(
        self, action: Action, keys: list[Key], refused: list[str]
    ) -> tuple[str, Text, str]:
        verb = action.value.capitalize()
        n = len(keys)
        title = f"{verb} {n} run{'s' if n != 1 else ''}?"
        body = Text()
        for key in keys[:12]:
            row = self.runs.rows[key]
            name = clean(row.job or row.label or "")
            body.append(f"  {GLYPHS[row.status]} {clean(row.id)}  {row.status.value}  {name}\n")
        if n > 12:
            body.append(f"  … and {n - 12} more\n")
        body.append("\n")
        if action is Action.ABORT:
            body.append(
                "Runs started by `jobwatch run` get SIGTERM on their whole process group, "
                "then SIGKILL after their grace period. Runs of other systems are stopped "
                "through that system. This cannot be undone.\n"
            )
        else:
            body.append(
                "Archived runs keep their outcome and are hidden from the table "
                "(press . to show them); u unarchives.\n"
            )
        if refused:
            body.append(f"\nSkipped ({len(refused)}):\n", style="bold")
            for reason in refused[:8]:
                body.append(f"  {clean(reason)}\n")
        body.append("\nDefault is No.", style="dim")
        return title, body, f"{verb} {n}"

    def _confirmed(self, action: Action, keys: list[Key], yes: bool | None) -> None:
        if yes:
            self._perform(action, keys)
        else:
            self.notify(f"{action.value} cancelled: nothing was changed", timeout=2)

    @work(group="actions", exit_on_error=False)
    async def _perform(self, action: Action, keys: list[Key]) -> None:
        done, failed = 0, []
        for key in keys:
            feed = self.feed_for(key)
            if feed is None:
                failed.append(f"{clean(key[1])}: no longer shown")
                continue
            source = feed.source
            try:
                if action is Action.ABORT:
                    result = await source.abort(key[1], by=f"{self._who()} (jobwatch monitor)")
                elif action is Action.ARCHIVE:
                    result = await source.archive(key[1])
                else:
                    result = await source.unarchive(key[1])
            except JobwatchError as exc:
                failed.append(clean(str(exc)))
                continue
            except Exception as exc:
                failed.append(f"{clean(key[1])}: {clean(str(exc))}")
                continue
            done += 1
            self.runs.marked.discard(key)
            if len(keys) == 1:
                self.notify(clean(result.message), timeout=3)
        if len(keys) > 1 and done:
            self.notify(f"{action.value}: {done} of {len(keys)} done", timeout=3)
        if failed:
            self.notify("\n".join(failed), title=f"{action.value} refused", severity="error")
        self._wake.set()
        await self.poll_once()

    @staticmethod
    def _who() -> str:
        import getpass

        try:
            return getpass.getuser()
        except Exception:
            return "someone"

    def action_copy_id(self) -> None:
        table = self._table()
        if table is None or table.cursor_key is None:
            return
        run_id = table.cursor_key[1]
        self.copy_to_clipboard(run_id)  # OSC 52: reaches the local clipboard over SSH
        self.notify(f"copied {clean(run_id)}", timeout=2)

    # -- help and palette ----------------------------------------------------------

    def _binding_sections(self) -> list[tuple[str, list[Binding]]]:
        def real(bindings: Iterable[BindingType]) -> list[Binding]:
            return [b for b in bindings if isinstance(b, Binding)]

        return [
            ("monitor", real(self.BINDINGS)),
            ("runs table", real(RunsTable.BINDINGS)),
            ("log", real(LogView.BINDINGS)),
        ]

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self._binding_sections()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for section, bindings in self._binding_sections():
            for binding in bindings:
                if binding.action in ("quit", "help"):
                    continue
                target = {"runs table": "#runs", "log": "#log"}.get(section)
                yield SystemCommand(
                    f"{binding.description}",
                    f"{section}: key {binding.key}",
                    partial(self._palette_action, target, binding.action),
                )

    async def _palette_action(self, target: str | None, action: str) -> None:
        if target is None:
            await self.run_action(action)
            return
        widget = self.main.query_one(target)
        await self.run_action(action, widget)
