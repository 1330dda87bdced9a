"""The ``?`` screen: every key, generated from the same bindings the app uses (with
the user's ``[keys]`` applied), shown as people type them, and the filter syntax."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobwatch.core.columns import FILTER_FIELDS
from jobwatch.tui import keys

KeyDisplay = Callable[[Binding], str]

FILTER_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("nightly", "any field contains 'nightly'"),
    ("status:failed,timed_out", "a field is one of (comma: or)"),
    ("job:sync !status:succeeded", "terms are ANDed; ! excludes"),
    ("since:1h  since:2d", "changed in the last hour / two days"),
    ("before:2026-12-01", "changed before a date"),
    ('"two words"', "quote text with spaces"),
)


def key_text(binding: Binding, display: KeyDisplay) -> str:
    """``binding``'s keys as typed: ``/``, ``.``, ``?``, ``^s``, not ``slash``."""
    shown = []
    for key in binding.key.split(","):
        one = Binding(key.strip(), binding.action, binding.description)
        shown.append(display(one))
    return ", ".join(shown)


def keys_table(
    sections: list[tuple[str, list[Binding]]], display: KeyDisplay | None = None
) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), Text(""))
        for binding in bindings:
            if display is None:
                shown = ", ".join(k.strip() for k in binding.key.split(","))
            else:
                shown = key_text(binding, display)
            id_ = f"  [{binding.id}]" if binding.id else ""
            row = Text(binding.description or binding.action)
            row.append(id_, style="dim")
            table.add_row(Text(shown), row)
        table.add_row(Text(""), Text(""))
    return table


def filter_help() -> Table:
    """The ``/`` filter grammar, with the field names of the column registry."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(Text("filter (/)", style="bold underline"), Text(""))
    for example, meaning in FILTER_EXAMPLES:
        table.add_row(Text(example), Text(meaning))
    fields = ", ".join(f"{name}:" for name in FILTER_FIELDS)
    table.add_row(Text("fields"), Text(fields))
    table.add_row(Text(""), Text("keys can be remapped: [keys] in the config, by the ids above"))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = keys.HELP

    def __init__(
        self, sections: list[tuple[str, list[Binding]]], display: KeyDisplay | None = None
    ) -> None:
        super().__init__()
        self._sections = sections
        self._display = display

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "jobwatch keys (Esc to close)"
            yield Static(Group(keys_table(self._sections, self._display), filter_help()))
