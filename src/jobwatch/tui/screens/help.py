"""The ``?`` screen: every key, generated from the same bindings the app uses."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobwatch.tui import keys


def keys_table(sections: list[tuple[str, list[Binding]]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), Text(""))
        for binding in bindings:
            keys = ", ".join(k.strip() for k in binding.key.split(","))
            table.add_row(Text(keys), Text(binding.description or binding.action))
        table.add_row(Text(""), Text(""))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = keys.HELP

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self._sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "jobwatch keys (Esc to close)"
            yield Static(keys_table(self._sections))
