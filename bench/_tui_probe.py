"""Child process of ``bench/bench_tui.py``: runs one app headless and reports.

Started as ``python bench/_tui_probe.py MODE STORE [options]`` by the benchmark, so
every measurement is taken in a fresh interpreter (imports included) without any
test harness around it. The timestamp below is taken before anything else is
imported; every event is written at once as one JSON line on stdout (straight to
file descriptor 1, whatever Textual does with ``sys.stdout``) with ``t``, seconds
since that timestamp, and ``abs``, the raw ``perf_counter`` (CLOCK_MONOTONIC on
Linux: comparable with the parent's clock). Modes:

The monitor modes start it as ``jobwatch --store STORE`` does, through
``jobwatch.cli.main`` (arguments, config, opening the store, building the app),
with only ``run_async`` made headless; ``app_built`` marks the app's creation.

``paint``
    the real :class:`~jobwatch.tui.app.JobwatchApp`, headless at 160x48: the first
    time ``RunsTable.render_line`` returns a data row (``first_paint``), the full
    sync (``synced``), the first data row drawn after it (``settled``) and the
    peak RSS at that point (``rss``).
``idle``
    the app with its real poll loop at ``--refresh`` seconds: after the sync and a
    warm-up, the process CPU time over ``--window`` seconds of polls with nothing
    changed, ended by ``app.set_timer`` (``idle``).
``log``
    the app on the store; after the sync, ``LogView.show_run`` on a freshly opened
    store connection for ``--run`` and the time until the view has drawn the log's
    last line (``log``).
``datatable``
    the stock ``textual.widgets.DataTable`` in a minimal app, loaded with the same
    rows and columns as text cells, and the time until it draws a data row
    (``first_paint``).

With ``--profile FILE`` the interesting stretch is run under ``cProfile`` (main
thread only) and its stats are written to FILE: ``paint`` and ``datatable`` from
start-up (before jobwatch and Textual are imported) to the first paint, ``idle``
the window, ``log`` from ``show_run`` to the last line drawn. Timings are then
inflated; use them for proportions only.
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

SIZE = (160, 48)
WAIT_S = 300.0
"""Upper bound on any single wait inside a probe (the parent has its own timeout)."""


class Profile:
    """An optional cProfile run over one stretch of the probe."""

    def __init__(self) -> None:
        self.profiler: cProfile.Profile | None = None
        self.path: str | None = None

    def start(self) -> None:
        if self.path and self.profiler is None:
            self.profiler = cProfile.Profile()
            self.profiler.enable()

    def stop(self) -> None:
        if self.profiler is not None and self.path:
            self.profiler.disable()
            self.profiler.dump_stats(self.path)
            self.path = None  # one stretch per probe


PROFILE = Profile()


def emit(event: str, **fields: Any) -> None:
    """One JSON line on fd 1, written immediately; ``cpu`` is the process's CPU
    time so far (all threads), a figure a busy machine disturbs less than ``t``."""
    now = time.perf_counter()
    record = {"event": event, "t": now - T0, "abs": now, "cpu": time.process_time(), **fields}
    os.write(1, (json.dumps(record) + "\n").encode())


def rss_mb() -> tuple[float, float | None]:
    """Peak and current RSS of this process, in MB.

    On Linux both come from ``/proc/self/status`` (``VmHWM``, ``VmRSS``): a child's
    ``ru_maxrss`` starts at the parent's RSS at ``fork`` time, so it would report
    the benchmark's own memory instead of the probe's.
    """
    fields: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(value.split()[0]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    if "VmHWM" in fields:
        return fields["VmHWM"], fields.get("VmRSS")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024), None


async def wait(event: asyncio.Event, what: str, timeout: float = WAIT_S) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}") from None


# -- the monitor ---------------------------------------------------------------------


def patch_runs_table(on_data_row: Callable[[], None]) -> None:
    """Call ``on_data_row`` whenever ``RunsTable.render_line`` returns a data row."""
    from textual.strip import Strip

    from jobwatch.tui.widgets.runs_table import RunsTable

    original = RunsTable.render_line

    def render_line(self: RunsTable, y: int) -> Strip:
        strip = original(self, y)
        index = int(self.scroll_offset.y) + y - 1
        # a row drawn from data, not a windowed table's "…" for a row still being read
        if y >= 1 and index < len(self.runs) and self.runs.key_at(index) in self.runs.rows:
            on_data_row()
        return strip

    RunsTable.render_line = render_line  # type: ignore[method-assign]


async def settle(app: Any, pilot: Any) -> None:
    """Let the selection's detail/log worker finish, then idle."""
    await pilot.pause()
    for _ in range(3):
        workers = [w for w in app.workers if w.group == "detail" and not w.is_finished]
        if workers:
            await app.workers.wait_for_complete(workers)
        await pilot.pause()


def run_monitor(
    store: str,
    refresh: float,
    body: Callable[[Any, Any], Awaitable[None]],
    built: Callable[[Any], None] | None = None,
) -> None:
    """Start the monitor the way ``jobwatch --store STORE --refresh R`` does, through
    ``jobwatch.cli.main`` (argument parsing, config, opening the store, building
    the app), but headless at :data:`SIZE` with ``body(app, pilot)`` as its
    autopilot; ``body`` ends it. ``built(app)`` is called as soon as the app
    exists, before it starts. The parent gives the probe an empty config dir,
    so the config is the defaults, as on a fresh install."""
    from jobwatch import cli
    from jobwatch.tui.app import JobwatchApp

    original = JobwatchApp.run_async

    async def run_async(self: Any, **_: Any) -> None:
        emit("app_built")
        if built is not None:
            built(self)

        async def pilot_body(pilot: Any) -> None:
            try:
                await body(self, pilot)
            finally:
                self.exit()

        await original(self, headless=True, size=SIZE, auto_pilot=pilot_body)

    JobwatchApp.run_async = run_async  # type: ignore[method-assign]
    where = "--source" if store.startswith(("http://", "https://")) else "--store"
    status = cli.main([where, store, "--refresh", str(refresh)])
    if status:
        raise RuntimeError(f"jobwatch exited with status {status}")


def probe_paint(args: argparse.Namespace) -> None:
    state = {"first": False, "after_sync": False}
    painted = asyncio.Event()
    app: Any = None

    def on_data_row() -> None:
        if not state["first"]:
            state["first"] = True
            PROFILE.stop()
            emit("first_paint", rows=len(app.runs))
        if app.synced.is_set() and not state["after_sync"]:
            state["after_sync"] = True
            painted.set()

    patch_runs_table(on_data_row)

    def built(monitor: Any) -> None:
        nonlocal app
        app = monitor

    async def body(app: Any, pilot: Any) -> None:
        await wait(app.synced, "the full sync")
        emit("synced", rows=len(app.runs))
        app.main.query_one("#runs").refresh()
        await wait(painted, "a paint after the sync")
        emit("settled", rows=len(app.runs))
        peak, current = rss_mb()
        emit("rss", peak_mb=peak, current_mb=current, held=len(app.runs.rows))

    run_monitor(args.store, args.refresh, body, built)


def probe_idle(args: argparse.Namespace) -> None:
    renders = {"table": 0}

    def on_data_row() -> None:
        renders["table"] += 1

    patch_runs_table(on_data_row)

    async def body(app: Any, pilot: Any) -> None:
        await wait(app.synced, "the full sync")
        await settle(app, pilot)
        emit("synced", rows=len(app.runs))
        await asyncio.sleep(args.warmup)
        polls: list[float] = []
        original = app.poller.poll_once

        async def counted(**kwargs: Any) -> Any:
            report = await original(**kwargs)
            polls.append(report.ms)
            return report

        app.poller.poll_once = counted  # the loop calls poller.poll_once(): the instance wins
        done = asyncio.Event()
        marks: dict[str, float] = {}

        def finish() -> None:
            marks["cpu1"], marks["wall1"] = time.process_time(), time.perf_counter()
            PROFILE.stop()
            done.set()

        renders["table"] = 0
        PROFILE.start()
        marks["cpu0"], marks["wall0"] = time.process_time(), time.perf_counter()
        app.set_timer(args.window, finish, name="bench idle window")
        await wait(done, "the idle window", args.window + 60)
        cpu = marks["cpu1"] - marks["cpu0"]
        wall = marks["wall1"] - marks["wall0"]
        emit(
            "idle",
            cpu_s=cpu,
            wall_s=wall,
            polls=len(polls),
            poll_ms=polls,
            table_lines=renders["table"],
            threads=threading.active_count(),
        )

    run_monitor(args.store, args.refresh, body)


def probe_log(args: argparse.Namespace) -> None:
    from textual.strip import Strip

    from jobwatch.sources.local import SqliteStore
    from jobwatch.tui.widgets.log_view import LogView

    last_drawn = asyncio.Event()
    original = LogView.render_line

    def render_line(self: LogView, y: int) -> Strip:
        strip = original(self, y)
        if self.run_id == args.run and not self.wrap and self.last:
            seq = self.first + int(self.scroll_y) + y
            if seq == self.last and seq in self._cache:  # drawn from data, not "…"
                PROFILE.stop()
                last_drawn.set()
        return strip

    LogView.render_line = render_line  # type: ignore[method-assign]

    async def body(app: Any, pilot: Any) -> None:
        await wait(app.synced, "the full sync")
        await settle(app, pilot)
        emit("synced", rows=len(app.runs))
        log = app.main.query_one(LogView)
        fresh = SqliteStore(args.store, create=False)
        t_open = time.perf_counter()
        await fresh.open()
        opened = time.perf_counter()
        try:
            PROFILE.start()
            await log.show_run(fresh, args.run)
            shown = time.perf_counter()
            await wait(last_drawn, "the log's last line", 30.0)
            drawn = time.perf_counter()
            emit(
                "log",
                open_ms=(opened - t_open) * 1e3,
                show_run_ms=(shown - opened) * 1e3,
                last_line_ms=(drawn - opened) * 1e3,
                lines=log.count,
                at_end=log.scroll_y >= log.max_scroll_y - 0.5,
                following=log.following,
            )
            await log.show_run(None, None)
        finally:
            await fresh.close()

    run_monitor(args.store, 3600.0, body)


# -- the stock DataTable -------------------------------------------------------------


def probe_datatable(args: argparse.Namespace) -> None:
    from textual.app import App, ComposeResult
    from textual.strip import Strip
    from textual.widgets import DataTable

    from jobwatch.core import RunRow
    from jobwatch.core.columns import LIST_COLUMNS, Cell, Mode, sort_key
    from jobwatch.sources.local import SqliteStore

    columns = list(LIST_COLUMNS)
    widths = {c.name: (c.width.max or 40) for c in columns}
    painted = asyncio.Event()

    def cells(row: RunRow, now: float) -> tuple[str, ...]:
        """The registry's columns as plain text cells (what RunsTable._cells draws)."""
        return tuple(c.text(row, Cell(now, Mode.TABLE, widths[c.name])) for c in columns)

    original = DataTable.render_line

    def render_line(self: DataTable[str], y: int) -> Strip:
        strip = original(self, y)
        header = self.header_height if self.show_header else 0
        if not painted.is_set() and y >= header and self.row_count:
            PROFILE.stop()
            emit("first_paint", rows=self.row_count)
            painted.set()
        return strip

    DataTable.render_line = render_line  # type: ignore[method-assign]

    class StockApp(App[None]):
        """What the monitor's first screen would be with the stock widget."""

        def compose(self) -> ComposeResult:
            yield DataTable(id="runs", cursor_type="row")

        async def on_mount(self) -> None:
            async with SqliteStore(args.store, create=False) as store:
                rows = (await store.row_changes(None)).rows
            rows = [r for r in rows if not r.archived]  # what the monitor shows
            emit("loaded", rows=len(rows))
            rows.sort(key=sort_key("started"))
            now = time.time()
            data = [cells(r, now) for r in rows]
            table = self.query_one(DataTable)
            table.add_columns(*(c.header for c in columns))
            table.add_rows(data)
            emit("added", rows=table.row_count)

    app = StockApp()
    emit("imported")

    async def body(pilot: Any) -> None:
        try:
            await wait(painted, "the DataTable's first data row")
            peak, current = rss_mb()
            emit("rss", peak_mb=peak, current_mb=current)
        finally:
            app.exit()

    asyncio.run(app.run_async(headless=True, size=SIZE, auto_pilot=body))


# -- main ----------------------------------------------------------------------------

PROBES: dict[str, Callable[[argparse.Namespace], None]] = {
    "paint": probe_paint,
    "idle": probe_idle,
    "log": probe_log,
    "datatable": probe_datatable,
}


def main() -> int:
    parser = argparse.ArgumentParser(description="one headless measurement (see bench_tui.py)")
    parser.add_argument("mode", choices=sorted(PROBES))
    parser.add_argument("store")
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--run", default="")
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    args = parser.parse_args()
    PROFILE.path = args.profile
    if args.mode in ("paint", "datatable"):
        PROFILE.start()  # the imports of jobwatch and Textual are still to come
    try:
        PROBES[args.mode](args)
    except BaseException as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    emit("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
