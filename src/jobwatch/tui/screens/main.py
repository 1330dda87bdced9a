"""The monitor's one screen: status line, filter box, runs table, detail and log."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input

from jobwatch.tui.table_model.runset import RunSet
from jobwatch.tui.widgets.detail import DetailPane
from jobwatch.tui.widgets.log_view import LogView
from jobwatch.tui.widgets.runs_table import RunsTable
from jobwatch.tui.widgets.status_line import StatusLine


class MainScreen(Screen[None]):
    """Stacks the panes on a small terminal and lays them side by side on a big one."""

    AUTO_FOCUS = "#runs"
    PANES = {"runs": "runs", "detail": "detail", "log": "logpane"}
    """Each pane and the id of its outermost widget."""

    zoomed: var[str | None] = var(None)
    """The pane shown alone, full screen (``z``), or None."""

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
            placeholder="filter runs: status:failed job:x since:1h  text  !term",
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
                    placeholder="search log (Enter: find, Esc: cancel)",
                    id="log-search",
                    select_on_focus=False,
                )
        yield Footer()

    def pane_of(self, widget: Widget | None) -> str:
        """The pane ``widget`` is in: runs, detail or log."""
        node: DOMNode | None = widget
        while node is not None and node is not self:
            for pane, widget_id in self.PANES.items():
                if node.id == widget_id:
                    return pane
            node = node.parent
        return "runs"

    def zoom(self, pane: str | None) -> None:
        """Show ``pane`` alone, full screen (None: every pane again)."""
        self.zoomed = pane

    def watch_zoomed(self, pane: str | None) -> None:
        for name in self.PANES:
            self.set_class(pane == name, f"-zoom-{name}")
