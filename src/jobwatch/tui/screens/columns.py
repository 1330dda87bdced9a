"""The column chooser: every column of the registry, ticked when shown.

Space ticks or unticks, Enter keeps the choice, Esc leaves it as it was. The
screen answers the names in the registry's order (or ``None`` when cancelled);
the app applies and saves them.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from jobwatch.core.columns import COLUMNS
from jobwatch.tui import keys


class ColumnsScreen(ModalScreen[list[str] | None]):
    AUTO_FOCUS = "#columns-list"
    BINDINGS = keys.COLUMNS

    def __init__(self, shown: Sequence[str]) -> None:
        super().__init__()
        self._shown = set(shown)

    def compose(self) -> ComposeResult:
        with Vertical(id="columns-box") as box:
            box.border_title = "columns (space: show/hide, enter: keep, esc: cancel)"
            yield SelectionList[str](
                *(Selection(c.header, c.name, c.name in self._shown) for c in COLUMNS),
                id="columns-list",
            )
            yield Static("a narrow terminal still drops columns by priority", id="columns-note")

    def action_keep(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        self.dismiss([c.name for c in COLUMNS if c.name in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)
