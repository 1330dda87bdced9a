"""Turning a command's raw output into stored lines, cheaply.

A million lines a second leaves about a microsecond per line, so nothing here
touches lines one by one in Python unless it has to: blocks of complete lines are
decoded and split by C code, the level of a line is looked for only in blocks
that contain one of the level words at all, and ``\\r`` frames are folded only in
blocks that contain a ``\\r``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

MAX_LINE_BYTES = 64 * 1024
"""Longer lines are stored in pieces of at most this many bytes (no byte lost)."""

_ERROR = re.compile(r"\b(error|errors|fatal|critical|exception|traceback|panic)\b", re.I)
_WARN = re.compile(r"\b(warn|warning|deprecated)\b", re.I)
_DEBUG = re.compile(r"\b(debug|trace)\b", re.I)
_ANY = re.compile(
    r"\b(error|errors|fatal|critical|exception|traceback|panic|warn|warning|deprecated"
    r"|debug|trace)\b",
    re.I,
)
_WORDS = (
    "error",
    "fatal",
    "critical",
    "exception",
    "traceback",
    "panic",
    "warn",
    "deprecated",
    "debug",
    "trace",
)
"""Every level word contains one of these: a block without any is all ``info``."""


def classify(text: str) -> str:
    """A log level guessed from the words of a line: cheap and good enough to jump
    to the first error of a plain command's output."""
    if _ERROR.search(text):
        return "error"
    if _WARN.search(text):
        return "warn"
    if _DEBUG.search(text):
        return "debug"
    return "info"


def last_frame(text: str) -> str:
    """What a terminal shows of a line redrawn with ``\\r``: its last frame (a
    trailing ``\\r``, as in CRLF, ends a frame rather than starting an empty one)."""
    text = text.rstrip("\r")
    return text[text.rfind("\r") + 1 :]


def to_lines(block: bytes) -> tuple[list[str], dict[int, str]]:
    """The stored lines of a block of complete lines (joined by ``\\n``), and the
    levels of those that are not ``info`` by index."""
    text = block.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if "\r" in text:
        lines = [last_frame(line) for line in lines]
        text = "\n".join(lines)
    return lines, levels(text, lines)


def levels(text: str, lines: list[str]) -> dict[int, str]:
    """Non-``info`` levels of ``lines`` (which ``text`` joins with ``\\n``)."""
    lowered = text.lower()
    if not any(word in lowered for word in _WORDS):
        return {}
    found: dict[int, str] = {}
    starts: list[int] | None = None
    for match in _ANY.finditer(text):
        if starts is None:  # offsets of line starts, only once a word is found
            starts = [0, *accumulate(len(line) + 1 for line in lines)]
        index = bisect_right(starts, match.start()) - 1
        if index not in found:
            found[index] = classify(lines[index])
    return {i: level for i, level in found.items() if level != "info"}


def _utf8_cut(data: bytes, limit: int) -> int:
    """A cut at or below ``limit`` that does not split a UTF-8 character."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 and cut > 0 else limit


class Splitter:
    """Cuts a stream of chunks into blocks of complete lines.

    Each block holds lines joined by ``\\n`` (no trailing newline). The unfinished
    last line is kept; when it grows past :data:`MAX_LINE_BYTES` it is stored in
    pieces, after dropping the ``\\r`` frames a terminal would have overwritten.
    """

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self.partial + chunk if self.partial else chunk
        blocks: list[bytes] = []
        cut = data.rfind(b"\n")
        if cut >= 0:
            blocks.append(data[:cut])
            data = data[cut + 1 :]
        if len(data) > MAX_LINE_BYTES:
            frame = data.rstrip(b"\r").rfind(b"\r")
            if frame >= 0:
                data = data[frame + 1 :]
            while len(data) > MAX_LINE_BYTES:
                piece = _utf8_cut(data, MAX_LINE_BYTES)
                blocks.append(data[:piece])
                data = data[piece:]
        self.partial = data
        return blocks

    def close(self) -> list[bytes]:
        """The unfinished last line, if any, at the end of the stream."""
        rest, self.partial = self.partial, b""
        return [rest] if rest else []
