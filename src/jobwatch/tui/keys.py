"""Every key of the monitor, named in one place: the widgets bind these lists, and
the help screen, the command palette and a user keymap (by binding ``id``) read
the same ones, so a key is added or renamed here once."""

from __future__ import annotations

from textual.binding import Binding, BindingType

APP: list[BindingType] = [
    # First of the app's keys in the footer: shown (with the count) only while marked.
    Binding("U", "clear_marks", "Unmark all", id="runs.unmark_all"),
    Binding("1", "focus_pane('runs')", "Runs", show=False, id="pane.runs"),
    Binding("2", "focus_pane('detail')", "Detail", show=False, id="pane.detail"),
    Binding("3", "focus_pane('log')", "Log", show=False, id="pane.log"),
    Binding("z", "zoom", "Zoom pane", show=False, id="pane.zoom"),
    Binding("slash", "filter", "Filter", id="runs.filter"),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear_filter"),
    Binding("f", "toggle_faults", "Faults", id="runs.faults"),
    Binding("s", "cycle_sort", "Sort", id="runs.sort"),
    Binding("S", "reverse_sort", "Reverse sort", show=False, id="runs.reverse"),
    Binding("full_stop", "toggle_archived", "Archived", show=False, id="runs.archived"),
    Binding("a", "abort", "Abort", id="run.abort"),
    Binding("A", "archive", "Archive", id="run.archive"),
    Binding("u", "unarchive", "Unarchive", show=False, id="run.unarchive"),
    Binding("R", "rerun", "Rerun", show=False, id="run.rerun"),
    Binding("D", "diff", "Snapshot diff", show=False, id="run.diff"),
    Binding("y", "copy_id", "Copy id", show=False, id="run.copy_id"),
    Binding("r", "refresh", "Refresh", show=False, id="app.refresh"),
    Binding("x", "dismiss_toasts", "Dismiss toasts", show=False, id="app.dismiss"),
    Binding("h", "sources", "Sources", show=False, id="app.sources"),
    Binding("C", "choose_columns", "Columns", show=False, id="app.columns"),
    Binding("J", "jobs", "Jobs", show=False, id="app.jobs"),
    Binding("F", "failures", "Failure groups", show=False, id="app.failures"),
    Binding("question_mark", "help", "Help", id="app.help"),
    Binding("q", "quit", "Quit", id="app.quit"),
]

TABLE: list[BindingType] = [
    Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
    Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
    Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
    Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
    Binding("home,g", "edge(0)", "First", show=False, id="table.first"),
    Binding("end,G", "edge(1)", "Last", show=False, id="table.last"),
    Binding("space", "mark", "Mark", id="table.mark"),
    Binding("M", "mark_all", "Mark all shown", show=False, id="table.mark_all"),
    Binding(
        "right_square_bracket", "next_fault(1)", "Next failure", show=False, id="table.next_failure"
    ),
    Binding(
        "left_square_bracket", "next_fault(-1)", "Prev failure", show=False, id="table.prev_failure"
    ),
]

DETAIL: list[BindingType] = [
    Binding("down,j", "scroll_down", "Down", show=False, id="detail.down"),
    Binding("up,k", "scroll_up", "Up", show=False, id="detail.up"),
    Binding("home,g", "scroll_home", "Top", show=False, id="detail.top"),
    Binding("end,G", "scroll_end", "End", show=False, id="detail.end"),
]

LOG: list[BindingType] = [
    Binding("down,j", "scroll_lines(1)", "Down", show=False, id="log.down"),
    Binding("up,k", "scroll_lines(-1)", "Up", show=False, id="log.up"),
    Binding("pagedown", "scroll_lines(0, 1)", "Page down", show=False, id="log.page_down"),
    Binding("pageup", "scroll_lines(0, -1)", "Page up", show=False, id="log.page_up"),
    Binding("home,g", "top", "Top", show=False, id="log.top"),
    Binding("end,G", "follow", "Follow", id="log.follow"),
    Binding("p", "pause", "Pause", id="log.pause"),
    Binding("slash", "search", "Search", id="log.search"),
    Binding("escape", "clear_search", "Clear search", show=False, id="log.clear_search"),
    Binding("n", "find(1)", "Next", id="log.next"),
    Binding("N", "find(-1)", "Prev", show=False, id="log.prev"),
    Binding("e", "first_error", "First error", id="log.first_error"),
    Binding("w", "toggle_wrap", "Wrap", id="log.wrap"),
    Binding("t", "toggle_time", "Times", id="log.timestamps"),
    Binding("ctrl+s", "save", "Save", id="log.save"),
]

CONFIRM: list[BindingType] = [
    Binding("escape,n", "answer(False)", "No", id="confirm.no"),
    Binding("y", "answer(True)", "Yes", id="confirm.yes"),
    Binding("left,right,tab", "app.focus_next", "Switch", show=False),
]

COLUMNS: list[BindingType] = [
    Binding("enter", "keep", "Keep", priority=True, id="columns.keep"),
    Binding("escape", "cancel", "Cancel", id="columns.cancel"),
]

HELP: list[BindingType] = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

DIFF: list[BindingType] = [
    Binding("escape,q,D", "dismiss", "Close", id="diff.close"),
]

SOURCES: list[BindingType] = [
    Binding("escape,q,h", "dismiss", "Close", id="sources.close"),
]

TRIAGE: list[BindingType] = [
    Binding("escape,q", "dismiss", "Close", id="triage.close"),
]

SECTIONS: tuple[tuple[str, str | None, list[BindingType]], ...] = (
    ("monitor", None, APP),
    ("runs table", "#runs", TABLE),
    ("detail", "#detail", DETAIL),
    ("log", "#log", LOG),
)
"""(title, the widget its actions run on, bindings): what help and the palette list."""
