"""One length cap for text from outside, for every source.

A vendor's error message may be a whole page dump (Intuned sends 200 KB); the
adapters used to cut at 1,000 to 10,000 characters each, some silently. The cap is
here, once: the vendor readers apply it to every string they read, and the run
model applies it to the messages it holds, so whatever an adapter builds is cut
the same way and says how much was left out.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT", "cap_text"]

MAX_TEXT = 10_000
"""Characters of one outside string kept: a long error message still reads whole
in ``show``; a page dump does not flood the terminal."""


_CUT = re.compile(r"… \((\d[\d,]*) more characters\)\Z")


def cap_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with a visible count of the rest:
    ``"… (194,835 more characters)"``. Cutting what was already cut changes
    nothing (a run is validated again whenever it is copied)."""
    if len(text) <= limit:
        return text
    done = _CUT.search(text, limit)
    if done is not None and done.start() == limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
