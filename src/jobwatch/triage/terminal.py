"""Terminal notifications (OSC 9, OSC 777): escape sequences the terminal itself
turns into a desktop notification, so they work over SSH (they travel with the
output; no local desktop API). iTerm2, WezTerm, Windows Terminal, kitty and
foot read OSC 9; rxvt-unicode, foot, Ghostty and VTE terminals OSC 777. Inside
tmux they need ``allow-passthrough``.

Text from outside is cleaned (no control characters, which could end the
sequence early and inject others) and cut short; ``;`` is replaced in OSC 777,
where it separates the title from the body.
"""

from __future__ import annotations

from jobwatch.config.live import TerminalNotify
from jobwatch.core.redact import clean

MAX_TEXT = 200
BEL = "\x07"


def _safe(text: str, *, semicolons: bool = True) -> str:
    out = clean(text)
    if not semicolons:
        out = out.replace(";", ",")
    return out if len(out) <= MAX_TEXT else out[: MAX_TEXT - 1] + "…"


def osc_notification(kind: TerminalNotify, title: str, body: str) -> str:
    """The sequence for ``kind`` ("" for ``off``)."""
    if kind == "osc9":
        return f"\x1b]9;{_safe(f'{title}: {body}' if body else title)}{BEL}"
    if kind == "osc777":
        return f"\x1b]777;notify;{_safe(title, semicolons=False)};{_safe(body)}{BEL}"
    return ""
