"""The selected row stays readable in every built-in theme, under NO_COLOR and with
256 or 16 colours: WCAG contrast of at least 4.5 between each character drawn on it
and its background, and the status glyph still there.

What a terminal shows is worked out the way Textual and Rich do it: the table's
line as drawn, then the app's own line filters (``Monochrome`` under NO_COLOR),
then, for 256 and 16 colours, Rich's downgrade to the nearest palette colour as
the terminal's palette (Rich's default terminal theme) draws it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.segment import Segment
from rich.terminal_theme import DEFAULT_TERMINAL_THEME
from textual.color import Color
from textual.css.stylesheet import Stylesheet
from textual.theme import Theme

from jobwatch.core.format import GLYPHS
from jobwatch.sources.local import SqliteStore
from jobwatch.tui.app import JobwatchApp
from jobwatch.tui.theming import contrast_ratio, jobwatch_variables
from jobwatch.tui.widgets.runs_table import RunsTable
from tui_support import make_app, ready, seed_store

THEMES = [
    "jobwatch-dark",
    "jobwatch-light",
    "jobwatch-high-contrast",
    "jobwatch-colorblind",
    "jobwatch-mono",
]
SYSTEMS = {"truecolor": None, "256": ColorSystem.EIGHT_BIT, "16": ColorSystem.STANDARD}
MIN_RATIO = 4.5


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[SqliteStore]:
    await seed_store(store_path)
    async with SqliteStore(store_path, create=False) as opened:
        yield opened


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def shown(color: RichColor | None, system: ColorSystem | None) -> tuple[int, int, int]:
    assert color is not None, "a colour left to the terminal's default"
    if system is not None:
        color = color.downgrade(system)
    return tuple(color.get_truecolor(DEFAULT_TERMINAL_THEME))  # type: ignore[return-value]


def selected_row(app: JobwatchApp) -> list[Segment]:
    table = app.main.query_one(RunsTable)
    y = table.cursor_index - int(table.scroll_offset.y) + 1
    segments = list(table.render_line(y))
    background = app.main.styles.background
    for line_filter in app.get_line_filters():
        segments = line_filter.apply(segments, background)
    return segments


def worst_contrast(segments: list[Segment], system: ColorSystem | None) -> tuple[float, str]:
    worst = (99.0, "")
    for segment in segments:
        if not segment.text.strip():
            continue
        style = segment.style
        assert style is not None
        fg, bg = shown(style.color, system), shown(style.bgcolor, system)
        if style.reverse:
            fg, bg = bg, fg
        ratio = contrast(fg, bg)
        if style.dim:
            ratio = 0.0  # a faint character on the selected row
        worst = min(worst, (ratio, segment.text.strip()))
    return worst


async def check_rows(app: JobwatchApp, pilot: object, theme: str) -> None:
    table = app.main.query_one(RunsTable)
    problems = []
    for focused in (True, False):
        (table.focus if focused else app.main.query_one("#log").focus)()
        await pilot.pause()  # type: ignore[attr-defined]
        for index in range(len(app.runs)):
            table._move_to(index)
            row = app.runs.row_at(index)
            segments = selected_row(app)
            text = "".join(s.text for s in segments)
            assert GLYPHS[row.status] in text, (theme, row.id)
            for name, system in SYSTEMS.items():
                ratio, where = worst_contrast(segments, system)
                if ratio < MIN_RATIO:
                    state = "focused" if focused else "blurred"
                    problems.append(f"{theme} {name} {state} {row.status}: {where!r} {ratio:.2f}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("theme", THEMES)
async def test_the_selected_row_is_readable(store: SqliteStore, theme: str) -> None:
    app = make_app(store, theme=theme)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        await check_rows(app, pilot, theme)


@pytest.mark.parametrize(("theme", "then"), [("jobwatch-light", "jobwatch-dark"), (None, None)])
async def test_the_css_is_parsed_once_at_start_with_the_chosen_theme(
    store: SqliteStore, theme: str | None, then: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting the theme in ``__init__`` through Textual's watcher parsed every
    stylesheet a second time just after the first (about 30 ms of the first paint);
    the one parse must still draw the chosen theme, and a later change re-parse."""
    reparsed: list[str] = []
    original = Stylesheet.reparse

    def counting(sheet: Stylesheet) -> None:
        reparsed.append("reparse")
        original(sheet)

    monkeypatch.setattr(Stylesheet, "reparse", counting)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(store, theme=theme)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        assert reparsed == []
        name = theme or "jobwatch-dark"
        current = app.current_theme
        assert app.theme == name and app.has_class(f"-theme-{name}")
        assert app.has_class("-dark-mode") is current.dark
        assert app.has_class("-light-mode") is not current.dark
        assert app.screen.styles.background == Color.parse(current.background or "")
        if then:
            app.theme = then
            await pilot.pause()
            assert reparsed and app.screen.styles.background == Color.parse(
                app.current_theme.background or ""
            )


async def test_a_textual_without_the_private_ansi_helper_still_starts_themed(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-parse start leans on a private Textual helper; without it (a later
    Textual), the theme is set the watcher's way instead of failing at start."""
    from jobwatch.tui import theming

    monkeypatch.setattr(theming, "ANSI_HELPER", "_a_helper_this_textual_lacks")
    app = make_app(store, theme="jobwatch-light")
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        assert app.theme == "jobwatch-light" and app.has_class("-light-mode")
        assert app.screen.styles.background == Color.parse(app.current_theme.background or "")


@pytest.mark.parametrize("theme", [None, *THEMES])
async def test_the_selected_row_is_readable_under_no_color(
    store: SqliteStore, theme: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(store, theme=theme)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(app, pilot)
        assert app.no_color and (theme is not None or app.theme == "jobwatch-mono")
        await check_rows(app, pilot, app.theme)


@pytest.mark.parametrize(
    "colors",
    [
        {"primary": "#ff8800"},
        {"primary": "#ffffff", "accent": "#ffff00", "background": "#ffffff"},
        {"primary": "#000080", "background": "#101010", "foreground": "#eeeeee"},
    ],
)
def test_a_user_theme_gets_a_readable_cursor(colors: dict[str, str]) -> None:
    theme = Theme(name="mine", **colors)
    variables = jobwatch_variables(theme)
    for name in ("row-cursor", "row-cursor-blur"):
        ratio = contrast_ratio(Color.parse(variables[name]), Color.parse(variables[f"{name}-text"]))
        assert ratio >= MIN_RATIO, (name, variables[name])
    own = jobwatch_variables(Theme(name="own", primary="#000000", variables={"row-cursor": "#eee"}))
    assert own["row-cursor-text"] == "#000000"
