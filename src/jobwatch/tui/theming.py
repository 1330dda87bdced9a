"""Themes for the monitor: built-in TOML files, user TOML files, and how one is picked.

A theme file is TOML::

    name = "my-theme"          # required
    dark = true                # optional, default true
    [colors]                   # Textual Theme colours; only ``primary`` is required
    primary = "#5fafff"
    [variables]                # optional; jobwatch's own variables (see STATUS_VARIABLES)
    status-running = "#5fafff" # and, if wanted, any Textual theme variable

Every jobwatch variable always gets a value (derived from the theme's own colours or
a fixed fallback), so stylesheets may use ``$status-running`` etc. with any theme.

The variable for the ``timed_out`` status is ``status-timed_out``: Textual's TCSS
tokenizer accepts ``[a-zA-Z0-9_-]`` in variable names, so names are simply
``"status-" + Status.value`` with no mapping to remember.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from textual.app import App
from textual.color import Color, ColorParseError
from textual.design import DEFAULT_DARK_BACKGROUND, DEFAULT_LIGHT_BACKGROUND
from textual.theme import Theme

from jobwatch.core.paths import config_dir as default_config_dir

__all__ = [
    "COLOR_FIELDS",
    "DEFAULT_THEME",
    "MONO_THEME",
    "STATUS_VARIABLES",
    "ThemeError",
    "builtin_dir",
    "builtin_themes",
    "contrast_ratio",
    "jobwatch_variables",
    "load_theme_file",
    "pick_theme",
    "readable_on",
    "register_all",
    "status_color_var",
    "user_themes",
]

DEFAULT_THEME = "jobwatch-dark"
"""Used when nothing (or something unknown) is requested and NO_COLOR is not set."""

MONO_THEME = "jobwatch-mono"
"""Used when NO_COLOR is set: greys only, so colour never carries meaning."""

COLOR_FIELDS: tuple[str, ...] = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
"""The keys allowed in a theme file's ``[colors]`` table (Textual ``Theme`` fields)."""

STATUS_VARIABLES: dict[str, str] = {
    "status-new": "#8a8a8a",
    "status-queued": "#8787af",
    "status-running": "#5f87d7",
    "status-paused": "#d7af00",
    "status-succeeded": "#5faf5f",
    "status-failed": "#d75f5f",
    "status-aborted": "#d7875f",
    "status-timed_out": "#af5faf",
    "status-unknown": "#808080",
    "row-changed": "#2f4f6f",
    "row-marked": "#4f3f6f",
    "row-cursor": "#d7af5f",
    "row-cursor-text": "#000000",
    "row-cursor-blur": "#8787af",
    "row-cursor-blur-text": "#000000",
    "log-error": "#d75f5f",
    "log-warn": "#d7af00",
    "log-debug": "#808080",
    "search-match": "#875f00",
}
"""Every jobwatch variable with its last-resort value.

Mid-tone colours, readable on dark and light backgrounds. They are only used when a
theme neither sets the variable nor has a colour it can be derived from (see
``jobwatch_variables``); the ``row-*`` and ``search-match`` values are backgrounds.
"""

# A status that "means" the same as a Textual colour borrows that colour, so a
# partial theme stays coherent: failed looks like the theme's errors, and so on.
_SAME_AS_COLOR: dict[str, str] = {
    "status-queued": "secondary",
    "status-running": "primary",
    "status-paused": "warning",
    "status-succeeded": "success",
    "status-failed": "error",
    "status-aborted": "warning",
    "log-error": "error",
    "log-warn": "warning",
}

# Muted text is the foreground faded towards the background (by this much foreground).
_MUTED = ("status-new", "status-unknown", "log-debug")
_MUTED_WEIGHT = 0.55

# Backgrounds are a tint of the theme background: (variable, colour choices, weight).
_TINTS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("row-changed", ("primary",), 0.3),
    ("row-marked", ("secondary", "accent"), 0.3),
    ("search-match", ("accent", "warning"), 0.45),
)

# The selected row: a background from the theme and black or white text, whichever
# reads better on it (the built-ins choose pairs that also survive 16 colours).
_CURSORS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("row-cursor", ("accent", "primary"), 1.0),
    ("row-cursor-blur", ("primary", "secondary"), 0.45),
)
MIN_CONTRAST = 4.5
"""WCAG AA for text: the least a derived cursor text gets against its background."""


def _luminance(color: Color) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast_ratio(a: Color, b: Color) -> float:
    """The WCAG 2 contrast ratio of two colours: 1 (same) to 21 (black on white)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_on(background: Color) -> Color:
    """Black or white, whichever has more contrast on ``background``."""
    black, white = Color(0, 0, 0), Color(255, 255, 255)
    return max((black, white), key=lambda c: contrast_ratio(c, background))


_TOP_LEVEL_KEYS = ("name", "dark", "colors", "variables")


class ThemeError(ValueError):
    """A theme file cannot be used. The message names the file and the problem."""


class _Registrar(Protocol):
    """The one thing ``register_all`` needs from a Textual ``App``."""

    def register_theme(self, theme: Theme) -> None: ...


def status_color_var(status_value: str) -> str:
    """The variable holding a status's colour, e.g. ``"running"`` -> ``"status-running"``.

    Takes the plain value (a ``Status`` is a ``StrEnum``, so it can be passed as is).
    Unknown values map to ``status-unknown`` so a new status never breaks styling.
    """
    name = f"status-{status_value}"
    return name if name in STATUS_VARIABLES else "status-unknown"


def _parse_rgb(value: str | None) -> Color | None:
    """A real RGB colour, or None for missing, unparseable or ANSI ("ansi_red") values.

    ANSI colours are rendered by the terminal, so they cannot be blended.
    """
    if value is None:
        return None
    try:
        color = Color.parse(value)
    except ColorParseError:
        return None
    return None if color.ansi is not None else color


def jobwatch_variables(theme: Theme) -> dict[str, str]:
    """Every jobwatch variable for ``theme``: its own values, else derived, else fixed.

    Works for any Theme, including Textual's stock ones, which is why an App should
    return ``jobwatch_variables(self.current_theme)`` from
    ``get_theme_variable_defaults``: then switching to e.g. ``textual-dark`` from the
    command palette cannot leave ``$status-running`` undefined.
    """
    result = dict(STATUS_VARIABLES)
    for variable, field in _SAME_AS_COLOR.items():
        own = getattr(theme, field)
        if own is not None:
            result[variable] = own

    default_background = DEFAULT_DARK_BACKGROUND if theme.dark else DEFAULT_LIGHT_BACKGROUND
    background = _parse_rgb(theme.background or default_background)
    if background is not None:
        foreground = (
            _parse_rgb(theme.foreground) if theme.foreground is not None else background.inverse
        )
        if foreground is not None:
            muted = background.blend(foreground, _MUTED_WEIGHT, alpha=1.0).hex
            result.update(dict.fromkeys(_MUTED, muted))
        for variable, fields, weight in _TINTS:
            tint = next(
                (c for f in fields if (c := _parse_rgb(getattr(theme, f))) is not None), None
            )
            if tint is not None:
                result[variable] = background.blend(tint, weight, alpha=1.0).hex
        for variable, fields, weight in _CURSORS:
            tint = next(
                (c for f in fields if (c := _parse_rgb(getattr(theme, f))) is not None), None
            )
            if tint is not None:
                cursor = background.blend(tint, weight, alpha=1.0)
                result[variable] = cursor.hex
                result[f"{variable}-text"] = readable_on(cursor).hex

    for variable in STATUS_VARIABLES:
        if variable in theme.variables:
            result[variable] = theme.variables[variable]
    for variable, _, _ in _CURSORS:  # a cursor colour of its own, but no text for it
        own = _parse_rgb(theme.variables.get(variable))
        if own is not None and f"{variable}-text" not in theme.variables:
            result[f"{variable}-text"] = readable_on(own).hex
    return result


def _fail(source: str, problem: str) -> ThemeError:
    return ThemeError(f"theme file {source}: {problem}")


def _check_color(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(source, f"{where} must be a colour string, not {type(value).__name__}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise _fail(
            source, f"{where} = {value!r} is not a colour (use e.g. '#5fafff' or 'red')"
        ) from None
    return value


def _table(source: str, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _fail(source, f"[{key}] must be a table")
    return value


def _theme_from_data(source: str, data: dict[str, Any]) -> Theme:
    """Validate parsed TOML and build a Theme with every jobwatch variable filled in."""
    unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise _fail(
            source, f"unknown key(s) {', '.join(unknown)} (expected {', '.join(_TOP_LEVEL_KEYS)})"
        )

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(source, "missing 'name' (a non-empty string)")
    name = name.strip()
    if "," in name:
        # Textual reads a comma-separated theme name as a list of alternatives.
        raise _fail(source, f"name {name!r} must not contain a comma")

    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise _fail(source, "'dark' must be true or false")

    colors = _table(source, data, "colors")
    bad_keys = sorted(set(colors) - set(COLOR_FIELDS))
    if bad_keys:
        raise _fail(
            source,
            f"unknown colour(s) {', '.join(bad_keys)} in [colors] "
            f"(expected {', '.join(COLOR_FIELDS)})",
        )
    if "primary" not in colors:
        raise _fail(source, "[colors] must set 'primary'")
    for key, value in colors.items():
        _check_color(source, f"colors.{key}", value)

    variables = _table(source, data, "variables")
    for key, value in variables.items():
        if key in STATUS_VARIABLES:
            # Code may Color.parse these (e.g. for DataTable cells), so insist on colours.
            _check_color(source, f"variables.{key}", value)
        elif not isinstance(value, str):
            raise _fail(source, f"variables.{key} must be a string")

    theme = Theme(name=name, dark=dark, variables=dict(variables), **colors)
    theme.variables = {**variables, **jobwatch_variables(theme)}
    try:
        theme.to_color_system().generate()
    except Exception as error:  # a bad theme must surface here, not when it is applied
        raise _fail(source, f"Textual cannot build colours from it: {error}") from None
    return theme


def load_theme_file(path: str | os.PathLike[str] | Traversable) -> Theme:
    """Read one TOML theme file (a filesystem path or an importlib.resources entry).

    Raises ThemeError (a ValueError) naming the file for anything wrong with it, so
    callers need to handle exactly one exception type.
    """
    resource: Path | Traversable = Path(path) if isinstance(path, str | os.PathLike) else path
    source = str(resource)
    try:
        data = tomllib.loads(resource.read_bytes().decode("utf-8"))
    except OSError as error:
        raise _fail(source, f"cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise _fail(source, "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise _fail(source, f"is not valid TOML ({error})") from None
    return _theme_from_data(source, data)


BUILTIN_MARKER = f"{DEFAULT_THEME}.toml"
"""A file every built-in themes folder has: how a folder is known to be the one."""


def builtin_dir() -> Traversable:
    """The folder of the built-in themes: the repository's top-level ``themes/``.

    An installed wheel carries it as package data, ``jobwatch/themes`` (the
    ``force-include`` in ``pyproject.toml``), read through importlib.resources so a
    zip works too. A source checkout or an editable install (whose package is
    ``src/jobwatch``) has no copy there and reads ``<checkout>/themes`` itself.
    """
    packaged = files("jobwatch") / "themes"
    if packaged.is_dir() and (packaged / BUILTIN_MARKER).is_file():
        return packaged
    checkout = Path(str(files("jobwatch"))).resolve().parents[1] / "themes"
    if (checkout / BUILTIN_MARKER).is_file():
        return checkout
    raise ThemeError(f"built-in themes not found (looked in {packaged} and {checkout})")


def builtin_themes() -> list[Theme]:
    """The built-in themes (every ``*.toml`` directly in :func:`builtin_dir`), by name.

    A broken or missing built-in is a packaging bug, so ThemeError propagates
    (tests catch it).
    """
    entries = [e for e in builtin_dir().iterdir() if e.name.endswith(".toml") and e.is_file()]
    return sorted((load_theme_file(e) for e in entries), key=lambda t: t.name)


def user_themes(config_dir: Path | None = None) -> tuple[list[Theme], list[str]]:
    """Themes from ``<config_dir>/themes/*.toml`` and one message per unusable file.

    ``config_dir`` defaults to jobwatch's user config directory (platformdirs). A
    broken user file must never stop the monitor, so problems become messages.
    When two files use the same name, the later file (by file name) wins.
    """
    folder = (config_dir if config_dir is not None else default_config_dir()) / "themes"
    if not folder.is_dir():
        return [], []
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".toml" and p.is_file())
    except OSError as error:
        return [], [f"theme folder {folder}: cannot be read ({error.strerror or error})"]

    found: dict[str, tuple[Path, Theme]] = {}
    messages: list[str] = []
    for path in paths:
        try:
            theme = load_theme_file(path)
        except ThemeError as error:
            messages.append(str(error))
            continue
        if theme.name in found:
            messages.append(
                f"theme file {path}: name {theme.name!r} is also used by "
                f"{found[theme.name][0]}; using {path.name}"
            )
        found[theme.name] = (path, theme)
    return [theme for _, theme in found.values()], messages


def register_all(app: _Registrar, config_dir: Path | None = None) -> list[str]:
    """Register built-in then user themes on ``app``; return warnings for the user.

    User themes come last so a user file may deliberately replace a built-in by name.
    """
    for theme in builtin_themes():
        app.register_theme(theme)
    themes, warnings = user_themes(config_dir)
    for theme in themes:
        app.register_theme(theme)
    return warnings


def pick_theme(
    requested: str | None,
    available: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, str | None]:
    """Choose the theme to start with: ``(name, warning or None)``.

    An explicit request wins, even over NO_COLOR (the user asked for it). Without one,
    a non-empty NO_COLOR (https://no-color.org/) selects the monochrome theme. An
    unknown request falls back (to mono under NO_COLOR, else the default) with a
    warning rather than an error, because a typo should not stop the monitor.
    ``environ`` defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    names = set(available)
    fallback = MONO_THEME if env.get("NO_COLOR") and MONO_THEME in names else DEFAULT_THEME
    if not requested:
        return fallback, None
    if requested in names:
        return requested, None
    choices = ", ".join(sorted(names))
    return fallback, f"unknown theme {requested!r}; using {fallback!r} (available: {choices})"


ANSI_HELPER = "_refresh_truecolor_filter"
"""Textual's private helper that maps ANSI colours for a theme (``App._watch_theme``
calls it); :func:`start_with_theme` needs it."""


def start_with_theme(app: App[Any], name: str) -> None:
    """Set ``app``'s first theme (a registered name) before it runs, without the
    theme watcher: it schedules ``refresh_css``, which parses every stylesheet a
    second time just after the first parse (about 30 ms of the first paint). The
    watcher's other work is done here, so the one parse already has the theme's
    variables, classes and ANSI mapping. A later change of theme goes through
    the watcher as usual. A Textual without the private ANSI-mapping helper this
    needs gets the watcher's way (one parse more, never a crash at start)."""
    refresh_ansi = getattr(app, ANSI_HELPER, None)
    if not callable(refresh_ansi):
        app.theme = name
        return
    app.set_reactive(App.theme, name)
    dark = app.current_theme.dark
    app.set_class(True, f"-theme-{name}", update=False)
    app.set_class(dark, "-dark-mode", update=False)
    app.set_class(not dark, "-light-mode", update=False)
    refresh_ansi(app.ansi_theme)
    app.stylesheet.set_variables(app.get_css_variables())
