"""Theme files load, register on a real Textual App and expose every jobwatch variable."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import Theme
from textual.widgets import Static

from jobwatch.core.status import Status
from jobwatch.tui.theming import (
    COLOR_FIELDS,
    DEFAULT_THEME,
    MONO_THEME,
    STATUS_VARIABLES,
    ThemeError,
    builtin_dir,
    builtin_themes,
    jobwatch_variables,
    load_theme_file,
    pick_theme,
    register_all,
    status_color_var,
    user_themes,
)

BUILTIN_NAMES = {
    "jobwatch-dark",
    "jobwatch-light",
    "jobwatch-high-contrast",
    "jobwatch-colorblind",
    "jobwatch-mono",
}
REPO = Path(__file__).resolve().parents[2]

# Every variable used in real TCSS: an undefined (or unparseable) one fails at startup.
VARIABLE_CSS = "\n".join(
    f"#v{i} {{ background: ${name}; }}" for i, name in enumerate(STATUS_VARIABLES)
)


class ThemedApp(App[None]):
    """What the real monitor is expected to do with the theming API."""

    CSS = VARIABLE_CSS

    def __init__(self, config_dir: Path) -> None:
        super().__init__()
        self.theme_warnings = register_all(self, config_dir=config_dir)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return jobwatch_variables(self.current_theme)

    def compose(self) -> ComposeResult:
        for i in range(len(STATUS_VARIABLES)):
            yield Static(str(i), id=f"v{i}")


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def is_grey(value: str) -> bool:
    color = Color.parse(value)
    return color.r == color.g == color.b


# --- built-ins --------------------------------------------------------------------


def test_builtins_live_in_the_top_level_themes_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = builtin_dir()
    assert Path(str(folder)).resolve() == REPO / "themes"  # a checkout reads its own
    names = {e.name for e in folder.iterdir() if e.name.endswith(".toml")}
    assert names == {f"{n}.toml" for n in BUILTIN_NAMES}
    monkeypatch.chdir(tmp_path)  # no relative path from the repo root is involved
    assert {t.name for t in builtin_themes()} == BUILTIN_NAMES


def test_every_builtin_sets_every_jobwatch_variable_explicitly() -> None:
    # Defaults are for user themes; the shipped themes are designed in full.
    for entry in builtin_dir().iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            assert set(STATUS_VARIABLES) <= set(data["variables"]), entry.name


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
async def test_builtin_registers_and_exposes_every_variable(name: str, tmp_path: Path) -> None:
    app = ThemedApp(tmp_path)
    async with app.run_test() as pilot:
        app.theme = name
        await pilot.pause()
        assert app.theme_warnings == []
        variables = app.get_css_variables()
        theme = app.get_theme(name)
        assert theme is not None
        for i, var in enumerate(STATUS_VARIABLES):
            assert variables[var] == theme.variables[var]
            widget = app.query_one(f"#v{i}", Static)
            assert widget.styles.background == Color.parse(theme.variables[var])


async def test_plain_app_without_defaults_hook_still_sees_every_variable() -> None:
    # The variables are baked into each Theme, so the hook is a safety net only.
    class Plain(App[None]):
        CSS = VARIABLE_CSS

    app = Plain()
    register_all(app, config_dir=Path("/nonexistent-jobwatch-config"))
    app.theme = DEFAULT_THEME
    async with app.run_test():
        assert set(STATUS_VARIABLES) <= set(app.get_css_variables())


async def test_textual_stock_theme_gets_jobwatch_variables_through_the_hook(
    tmp_path: Path,
) -> None:
    app = ThemedApp(tmp_path)
    async with app.run_test() as pilot:
        app.theme = "textual-light"
        await pilot.pause()
        variables = app.get_css_variables()
        assert set(STATUS_VARIABLES) <= set(variables)
        assert variables["status-failed"] == app.current_theme.error


def test_mono_has_no_hue() -> None:
    (mono,) = [t for t in builtin_themes() if t.name == MONO_THEME]
    colors = {f: getattr(mono, f) for f in COLOR_FIELDS if getattr(mono, f) is not None}
    assert len(colors) >= 10
    for field, value in {**colors, **mono.variables}.items():
        assert is_grey(value), (field, value)
    # And everything Textual derives from it (shades, cursor, scrollbars...).
    for key, value in mono.to_color_system().generate().items():
        try:
            color = Color.parse(value)
        except Exception:
            continue  # not a colour: "bold", "auto 87%", ...
        assert color.r == color.g == color.b, (key, value)


def test_colorblind_uses_okabe_ito() -> None:
    (cb,) = [t for t in builtin_themes() if t.name == "jobwatch-colorblind"]
    expected = {
        "status-succeeded": "#0072B2",
        "status-failed": "#D55E00",
        "status-running": "#56B4E9",
        "status-aborted": "#E69F00",
        "status-paused": "#E69F00",
        "status-timed_out": "#CC79A7",
    }
    for var, value in expected.items():
        assert Color.parse(cb.variables[var]) == Color.parse(value), var
    assert is_grey(cb.variables["status-unknown"])


def test_status_color_var_covers_every_status() -> None:
    assert status_color_var("running") == "status-running"
    assert status_color_var(Status.TIMED_OUT) == "status-timed_out"
    for status in Status:
        assert status_color_var(status) in STATUS_VARIABLES
        assert status_color_var(status) == f"status-{status.value}"
    assert status_color_var("something-new") == "status-unknown"


# --- user themes ------------------------------------------------------------------


async def test_partial_user_theme_gets_every_variable(tmp_path: Path) -> None:
    write(tmp_path / "themes", "mine.toml", 'name = "mine"\n[colors]\nprimary = "#ff8800"\n')
    themes, messages = user_themes(tmp_path)
    assert messages == []
    (mine,) = themes
    assert set(STATUS_VARIABLES) <= set(mine.variables)
    assert mine.variables["status-running"] == "#ff8800"  # derived from primary
    assert mine.variables["status-failed"] == STATUS_VARIABLES["status-failed"]  # fixed

    app = ThemedApp(tmp_path)
    async with app.run_test() as pilot:
        app.theme = "mine"
        await pilot.pause()
        assert set(STATUS_VARIABLES) <= set(app.get_css_variables())


def test_user_values_override_and_derivations_follow_the_theme(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.toml",
        'name = "t"\ndark = false\n[colors]\nprimary = "#0000ff"\nerror = "#aa0000"\n'
        'background = "#ffffff"\n[variables]\nstatus-running = "#00aa00"\n'
        'footer-key-foreground = "#123456"\n',
    )
    theme = load_theme_file(path)
    assert theme.dark is False
    assert theme.variables["status-running"] == "#00aa00"
    assert theme.variables["status-failed"] == "#aa0000"
    assert theme.variables["footer-key-foreground"] == "#123456"  # Textual's own, kept
    row_changed = Color.parse(theme.variables["row-changed"])
    assert row_changed.b > row_changed.r  # a blue tint of the white background
    assert row_changed.brightness > 0.5


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = \n", "not valid TOML"),
        ('[colors]\nprimary = "#fff"\n', "missing 'name'"),
        ('name = ""\n[colors]\nprimary = "#fff"\n', "missing 'name'"),
        ('name = "x"\n', "must set 'primary'"),
        ('name = "x"\n[colors]\nprimary = "blurple"\n', "not a colour"),
        ('name = "x"\n[colors]\nprimary = 12\n', "colour string"),
        ('name = "x"\n[colors]\nprimery = "#fff"\n', "unknown colour"),
        ('name = "x"\ncolours = 1\n[colors]\nprimary = "#fff"\n', "unknown key"),
        ('name = "x"\ndark = "yes"\n[colors]\nprimary = "#fff"\n', "'dark'"),
        ('name = "a,b"\n[colors]\nprimary = "#fff"\n', "comma"),
        ('name = "x"\n[colors]\nprimary = "#fff"\n[variables]\nrow-marked = "x"\n', "colour"),
        ('name = "x"\ncolors = "red"\n', "must be a table"),
    ],
)
def test_bad_files_raise_theme_error_naming_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ThemeError) as caught:
        load_theme_file(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_utf8_and_missing_files_are_theme_errors(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ThemeError, match="UTF-8"):
        load_theme_file(path)
    with pytest.raises(ThemeError, match="cannot be read"):
        load_theme_file(tmp_path / "absent.toml")


async def test_broken_user_theme_is_a_message_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "themes"
    write(folder, "broken.toml", "name = [oops\n")
    write(folder, "good.toml", 'name = "good"\n[colors]\nprimary = "#abcdef"\n')
    write(folder, "notes.txt", "ignored")
    themes, messages = user_themes(tmp_path)
    assert [t.name for t in themes] == ["good"]
    assert len(messages) == 1 and "broken.toml" in messages[0]

    app = ThemedApp(tmp_path)
    assert len(app.theme_warnings) == 1 and "broken.toml" in app.theme_warnings[0]
    async with app.run_test() as pilot:
        app.theme = "good"
        await pilot.pause()
        assert app.current_theme.name == "good"


def test_duplicate_user_names_warn_and_user_may_replace_builtin(tmp_path: Path) -> None:
    folder = tmp_path / "themes"
    write(folder, "a.toml", 'name = "dup"\n[colors]\nprimary = "#111111"\n')
    write(folder, "b.toml", 'name = "dup"\n[colors]\nprimary = "#222222"\n')
    write(folder, "c.toml", f'name = "{DEFAULT_THEME}"\n[colors]\nprimary = "#333333"\n')
    themes, messages = user_themes(tmp_path)
    by_name = {t.name: t for t in themes}
    assert by_name["dup"].primary == "#222222"
    assert len(messages) == 1 and "a.toml" in messages[0] and "b.toml" in messages[0]

    class Recorder:
        def __init__(self) -> None:
            self.themes: dict[str, Theme] = {}

        def register_theme(self, theme: Theme) -> None:
            self.themes[theme.name] = theme

    app = Recorder()
    register_all(app, config_dir=tmp_path)
    assert set(app.themes) >= BUILTIN_NAMES
    assert app.themes[DEFAULT_THEME].primary == "#333333"


def test_missing_user_folder_is_fine(tmp_path: Path) -> None:
    assert user_themes(tmp_path / "nowhere") == ([], [])


def test_repo_example_user_theme_loads() -> None:
    theme = load_theme_file(REPO / "themes" / "examples" / "example-user-theme.toml")
    assert set(STATUS_VARIABLES) <= set(theme.variables)


# --- picking ----------------------------------------------------------------------


def test_no_color_picks_mono_unless_a_theme_is_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    available = BUILTIN_NAMES
    monkeypatch.setenv("NO_COLOR", "1")
    assert pick_theme(None, available) == (MONO_THEME, None)
    assert pick_theme("jobwatch-light", available) == ("jobwatch-light", None)
    name, warning = pick_theme("nope", available)
    assert name == MONO_THEME and warning is not None
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert pick_theme(None, available) == (DEFAULT_THEME, None)
    assert pick_theme(None, available, environ={"NO_COLOR": "yes"}) == (MONO_THEME, None)
    assert pick_theme(None, available, environ={}) == (DEFAULT_THEME, None)


def test_unknown_theme_falls_back_with_a_warning() -> None:
    name, warning = pick_theme("solarized-typo", BUILTIN_NAMES, environ={})
    assert name == DEFAULT_THEME
    assert warning is not None and "solarized-typo" in warning and DEFAULT_THEME in warning
    assert pick_theme("jobwatch-colorblind", BUILTIN_NAMES, environ={}) == (
        "jobwatch-colorblind",
        None,
    )
