"""The monitor's one screen: status line, filter box, runs table, detail and log."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from jobwatch.tui.widgets.status_line import StatusLine


class MainScreen(Screen[None]):
    """Stacks the panes on a small terminal and lays them side by side on a big one."""

    AUTO_FOCUS = "#runs"

    def __init__(
        self,
        runs: RunSet,
        *,
        clock: Callable[[], float],
        several: bool,
        columns: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self._columns = columns
        self._runs = runs
        self._clock = clock
        self._several = several

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        # select_on_focus off: keys typed right after "/" must not be selected and
        # then overwritten when the (later) focus event arrives.
        yield Input(
            placeholder="filter: text  status:failed  job:x  source:y  !term",
            id="filter",
            select_on_focus=False,
        )
        yield RunsTable(
            self._runs,
            id="runs",
            clock=self._clock,
            several=self._several,
            column_names=self._columns,
        )
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
