"""The ``D`` screen: what changed in the selected run's configuration snapshot,
against the last succeeded run of its job, as the tree ``jobwatch diff`` prints.

The lines come from :mod:`jobwatch.sources.snapshot_pair` (the same as the CLI's),
so a secret never reaches this screen either: only "changed (secret)"."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobwatch.tui import keys

_STYLES = {"+ ": "green", "- ": "red", "~ ": "yellow", "? ": "magenta"}


def styled(lines: Sequence[str], header: int) -> Text:
    """The diff as plain text (never markup), header dim, each change's mark coloured."""
    text = Text()
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        if i < header:
            text.append(line, style="bold" if i == 0 else "dim")
            continue
        body = line.lstrip(" ")
        style = next((s for mark, s in _STYLES.items() if body.startswith(mark)), None)
        if style is None:
            text.append(line)
        else:
            text.append(line[: len(line) - len(body)])
            text.append(body[:1], style=f"bold {style}")
            text.append(body[1:])
    return text


class DiffScreen(ModalScreen[None]):
    BINDINGS = keys.DIFF

    DEFAULT_CSS = """
    DiffScreen {
        align: center middle;
        background: $background 60%;
    }
    #diff-box {
        width: 100%;
        max-width: 110;
        height: 100%;
        max-height: 40;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, title: str, lines: Sequence[str], header: int) -> None:
        super().__init__()
        self._title = title
        self.lines = list(lines)
        """What the screen shows, line by line (tests read it)."""
        self._header = header

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="diff-box") as box:
            box.border_title = self._title
            box.border_subtitle = "Esc to close"
            yield Static(styled(self.lines, self._header), id="diff-body")
