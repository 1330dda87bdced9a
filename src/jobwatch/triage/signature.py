"""Failure signatures: which failures are "the same failure".

Two failures are the same when they come from the same kind of source, carry the
same error code, and their messages differ only in what changes from run to run:
numbers, ids (UUIDs, long hex, base62-ish tokens), hex, URLs, paths and quoted
values. Those become placeholders (``<n>``, ``<id>``, ``<hex>``, ``<url>``,
``<path>``, ``<q>``); what is left is the shape of the message.

Pure functions, no I/O: the index, the CLI and the tests call them alike. The
placeholders hold no character any rule replaces, so normalizing twice changes
nothing (a property test keeps it so).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from jobwatch.core.lazy_re import LazyPattern

MAX_SHAPE = 200
"""Characters of a normalized message kept: a signature stays short as a key."""

# Order matters: whole URLs before the paths inside them, quoted values before the
# ids and numbers inside them, UUIDs before hex before base62-ish ids before numbers.
_RULES: tuple[tuple[LazyPattern, str], ...] = (
    (LazyPattern(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+"), "<url>"),
    (LazyPattern(r"\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`|“[^”\n]*”"), "<q>"),
    (LazyPattern(r"(?:[A-Za-z]:\\|\\\\)[^\s'\"<>:,;()]+"), "<path>"),
    (LazyPattern(r"(?:~|\.{1,2})?/[^\s'\"<>:,;()]+"), "<path>"),
    (
        LazyPattern(
            r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (LazyPattern(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (LazyPattern(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    # base62-ish: a token of 8+ letters, digits, _ or - that mixes digits and letters
    # (run-01HZX3…, job_8f3kq2LmP, Salesforce ids), so words and plain numbers stay
    (LazyPattern(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]{7,}\b"), "<id>"),
    # a sign only where it cannot be a hyphen (``db-4`` keeps its ``-``)
    (LazyPattern(r"(?<![\w-])[-+]?\d+(?:[.,:]\d+)*|\d+(?:[.,:]\d+)*"), "<n>"),
    (LazyPattern(r"\s+"), " "),
)


def shape(message: str | None) -> str:
    """``message`` with everything that varies between runs replaced by placeholders."""
    if not message:
        return ""
    text = message
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()[:MAX_SHAPE]


@dataclass(frozen=True, slots=True)
class Signature:
    """What a failure group is keyed by."""

    kind: str
    code: str
    shape: str

    @property
    def key(self) -> str:
        return f"{self.kind}\x1f{self.code}\x1f{self.shape}"

    @property
    def digest(self) -> str:
        """A short stable name for the group (``jobwatch failures --json``)."""
        return hashlib.blake2b(self.key.encode(), digest_size=5).hexdigest()

    def text(self) -> str:
        """How the group reads in a table: ``code: shape`` (either may be empty)."""
        if self.code and self.shape:
            return f"{self.code}: {self.shape}"
        return self.code or self.shape or "(no message)"


def signature(kind: str, code: str | None, message: str | None) -> Signature:
    return Signature(kind, (code or "").strip(), shape(message))
