"""Make text from outside safe to show.

Run names, error messages, configs and log lines come from remote services and
user jobs. Printed raw they can drive the terminal (clear the screen, retitle the
window, write the clipboard through OSC 52, plant hyperlinks) and they often carry
credentials. Every output path passes such text through :func:`clean` (strings) or
:func:`redact` (JSON-like data) first. Standard library only, so any layer may use it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["REDACTED", "clean", "is_secret_key", "redact", "redact_text", "sanitize"]

REDACTED = "***"

# --------------------------------------------------------------------------- sanitize

# Terminal control sequences, longest forms first. String sequences stop at their
# terminator, at the next ESC (a real terminal aborts the string there too) or at
# the end of the text, so an unterminated OSC swallows the rest of the string.
_OSC = r"(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
_STRING = r"(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
_ESC = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_SEQUENCE = re.compile("|".join((_OSC, _STRING, _CSI, _ESC)))

# Whatever is left after the sequences: C0 (tab kept), DEL and C1.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROLS_KEEP_NL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """Strip terminal control sequences and control characters.

    The output can no longer move the cursor, change modes or talk to the terminal;
    printable text (any script, emoji) is left alone. With ``keep_newlines`` line
    breaks survive (``\\r\\n`` becomes ``\\n``) so multi-line text keeps its shape.
    """
    controls = _CONTROLS_KEEP_NL if keep_newlines else _CONTROLS
    if controls.search(text) is None:  # the common case: nothing to do
        return text
    text = _SEQUENCE.sub("", text)
    if keep_newlines:
        text = text.replace("\r\n", "\n")
    return controls.sub("", text)


# --------------------------------------------------------------------------- keys

_KEY_NOISE = re.compile(r"[-_. ]+")
_SECRET_WORDS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "authorization",
    "xapikey",
    "apikey",
    "accesskey",
    "privatekey",
    "clientsecret",
    "signedurl",
    "cookie",
    "credential",
    "sessionid",
    "bearer",
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field name suggests its value is a credential.

    Usage counters (``max_tokens``, ``token_count``) are common in job data and are
    deliberately not secret: anything with "tokens" or ending in "count" is exempt.
    """
    norm = _KEY_NOISE.sub("", key.lower())
    if not norm or "tokens" in norm or norm.endswith("count"):
        return False
    if norm.endswith("pwd"):
        return True
    return any(word in norm for word in _SECRET_WORDS)


# --------------------------------------------------------------------------- free text

_PEM = re.compile(
    r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----).*?(-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
    re.DOTALL,
)

_URL = re.compile(
    r"(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://)"
    r"(?P<userinfo>[^\s/?#@\"'<>]*@)?"
    r"(?P<rest>[^\s?#\"'<>]*)"
    r"(?P<query>\?[^\s#\"'<>]*)?"
)
_URL_TRAILING = ".,;:!)]}"

# Cookie headers carry several name=value pairs: mask the whole header value.
_COOKIE_HEADER = re.compile(r"(?i)\b((?:set-)?cookie[ \t]*:[ \t]*)[^\r\n\"']+")

_SCHEMES = "bearer|basic|apikey|token|digest|negotiate|ntlm"
_AUTH_SCHEME = re.compile(rf"(?i)\b(?P<scheme>{_SCHEMES})[ \t]+(?P<cred>[A-Za-z0-9\-._~+/=:]+)")

# Provider key shapes; each is specific enough to be a key wherever it appears.
_TOKEN_SHAPES = re.compile(
    "|".join(
        (
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key id
            r"\bsk-[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic, see _mask_token
            r"\bgh[opsur]_[A-Za-z0-9]{20,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
            r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab
            r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
            r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
            # JWT: header.payload.signature, both JSON parts start with '{"' -> eyJ
            r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",
        )
    )
)

# Key and value are matched in two steps so that a key which is not secret costs
# only its own length: scanning stays linear even on text like "a=a=a=...".
_PAIR_KEY = re.compile(
    r"(?<![\w.\-])(?P<kq>[\"']?)(?P<key>[A-Za-z_][\w.\-]*)(?P=kq)[ \t]*[:=][ \t]*"
)
# An unterminated quoted value is masked to the end of its line.
_PAIR_VALUE = re.compile(
    rf"(?P<scheme>(?i:{_SCHEMES})[ \t]+)?"
    r"(?P<val>(?P<q>[\"'])(?:(?!(?P=q))[^\\\n]|\\.)*(?P=q)?|[^\s,;&\"'<>)\]}]+)"
)


# What can start a masking below, tested with plain substring checks first: most
# strings (ids, names, timestamps) contain none of it, and these cost well under a
# microsecond where the five substitutions and the pair scan cost ten or more.
_TOKEN_HINTS = (
    "AKIA", "ASIA", "sk-", "gho_", "ghp_", "ghs_", "ghu_", "ghr_", "github_pat_",
    "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "glpat-", "AIza", "k_live_", "k_test_", "eyJ",
)  # fmt: skip
_WORD_HINTS = ("://", "-----begin ", "cookie", *_SCHEMES.split("|"))


def _maybe_secret(text: str) -> bool:
    """False only when no pattern of :func:`redact_text` can match ``text``."""
    if ("=" in text or ":" in text) and _PAIR_KEY.search(text) is not None:
        return True
    low = text.lower()
    return any(h in low for h in _WORD_HINTS) or any(h in text for h in _TOKEN_HINTS)


def _credential_like(value: str) -> bool:
    """Tell "Basic dXNlcjpwYXNz" from prose such as "Basic setup" or "Token expired"."""
    if len(value) < 4:
        return False
    if any(c.isdigit() or c in "-._~+/=:" for c in value):
        return True
    tail = value[1:]
    return any(c.isupper() for c in tail) and any(c.islower() for c in tail)


def _mask_auth(m: re.Match[str]) -> str:
    scheme, cred = m["scheme"], m["cred"]
    if cred == REDACTED or (scheme.lower() != "bearer" and not _credential_like(cred)):
        return m[0]
    return f"{scheme} {REDACTED}"


def _mask_url(m: re.Match[str]) -> str:
    out = m["scheme"] + (f"{REDACTED}@" if m["userinfo"] is not None else "") + m["rest"]
    query = m["query"]
    if query:
        body = query.rstrip(_URL_TRAILING)
        trailing = query[len(body) :]
        out += (f"?{REDACTED}" if len(body) > 1 else body) + trailing
    return out


def _mask_token(m: re.Match[str]) -> str:
    # "sk-" keys always carry a digit or a capital; hyphenated words such as
    # "sk-learn-compatibility-layer" do not and stay readable.
    token = m[0]
    if token.startswith("sk-") and not any(c.isdigit() or c.isupper() for c in token):
        return token
    return REDACTED


def _mask_pairs(text: str) -> str:
    # A hand-driven loop rather than re.sub: after a key that is not secret the
    # search resumes right behind it, so "user:password=x" still finds "password=x".
    parts: list[str] = []
    pos = 0
    while (m := _PAIR_KEY.search(text, pos)) is not None:
        end = m.end()
        value = _PAIR_VALUE.match(text, end) if is_secret_key(m["key"]) else None
        if value is None:
            parts.append(text[pos:end])
            pos = end
            continue
        quote = value["q"] or ""  # a quoted value keeps its quotes
        parts.append(text[pos : value.start("val")])
        parts.append(f"{quote}{REDACTED}{quote}")
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def redact_text(text: str) -> str:
    """Mask credential values inside free text, keeping the text around them.

    Only values are masked, never the names next to them, so a log line still says
    what was there. Ordinary ids (UUIDs, commit hashes, timestamps, paths) survive.
    """
    return _mask_all(text) if _maybe_secret(text) else text


def _mask_all(text: str) -> str:
    text = _PEM.sub(lambda m: m[1] + REDACTED + m[2], text)
    text = _URL.sub(_mask_url, text)
    text = _COOKIE_HEADER.sub(lambda m: m[1] + REDACTED, text)
    text = _AUTH_SCHEME.sub(_mask_auth, text)
    text = _TOKEN_SHAPES.sub(_mask_token, text)
    return _mask_pairs(text)


# --------------------------------------------------------------------------- entry points


def clean(text: Any, *, keep_newlines: bool = False) -> str:
    """The one call for any outside string before it reaches the screen or stdout."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return redact_text(sanitize(text, keep_newlines=keep_newlines))


def redact(obj: Any) -> Any:
    """A redacted, sanitized deep copy of JSON-like data; the input is not touched.

    Values under secret-looking keys become ``"***"`` (``None`` and booleans are kept:
    they say whether something is set without revealing it); every value of a
    ``headers`` mapping is masked; every other string goes through :func:`clean`.
    Unknown types are returned as they are.
    """
    if isinstance(obj, str):
        return clean(obj, keep_newlines=True)  # structured values may be multi-line
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                out[key] = redact(value)
                continue
            safe_key = sanitize(key)
            if safe_key.strip().lower() == "headers" and isinstance(value, dict):
                out[safe_key] = {
                    (sanitize(k) if isinstance(k, str) else k): REDACTED for k in value
                }
            elif is_secret_key(safe_key) and value is not None and not isinstance(value, bool):
                out[safe_key] = REDACTED
            else:
                out[safe_key] = redact(value)
        return out
    if isinstance(obj, list):
        return [redact(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact(item) for item in obj)
    return obj
