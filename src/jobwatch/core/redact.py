"""Make text from outside safe to show.

Run names, error messages, configs and log lines come from remote services and
user jobs. Printed raw they can drive the terminal (clear the screen, retitle the
window, write the clipboard through OSC 52, plant hyperlinks), disguise themselves
with bidi controls, and they often carry credentials. Every output path passes such
text through :func:`clean` (strings) or :func:`redact` (JSON-like data) first; the
vendor adapters take their extra masking (e-mail addresses, URLs, their own secret
field names) from here too, so there is one policy. Standard library only, so any
layer may use it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from jobwatch.core.lazy_re import LazyPattern

__all__ = [
    "REDACTED",
    "clean",
    "is_secret_key",
    "mask_email",
    "mask_url",
    "mask_values",
    "redact",
    "redact_text",
    "sanitize",
]

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

# Invisible characters that change how the text around them reads: bidi embeddings,
# overrides, isolates and marks ("inv\u202egpj.exe" shows as "invexe.jpg"), zero-width
# spaces and joiners, word joiner and invisible operators, BOM, line and paragraph
# separators. They are removed rather than shown escaped: the text then reads in the
# order it is stored in, which is the truth, and right-to-left scripts (which need
# none of these to display) stay readable instead of filling with escapes.
_INVISIBLE = "\u061c\u180e\u200b\u200c\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f\ufeff"
_ZWJ = "\u200d"
# A ZWJ is kept between two emoji (woman, ZWJ, laptop is one glyph: a technologist);
# anywhere else it is removed.
_EMOJI = (
    "\u00a9\u00ae\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u2bff\ufe0f\U0001f000-\U0001faff"
)
_STRAY_ZWJ = re.compile(f"(?<![{_EMOJI}]){_ZWJ}|{_ZWJ}(?![{_EMOJI}])")

# What makes the slow path necessary (tab included: single-line text turns it into
# a space so a table row keeps its columns) ...
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}{_ZWJ}]")
_UNSAFE_KEEP_NL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}{_ZWJ}]")
# ... and what is removed once sequences, tabs and ZWJs are dealt with.
_STRIP = re.compile(f"[\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
_STRIP_KEEP_NL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}]")


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """Strip terminal control sequences, control and invisible formatting characters.

    The output can no longer move the cursor, change modes, talk to the terminal or
    reorder what it shows; printable text (any script, emoji) is left alone. Single
    line text gets its tabs as spaces (a tab would shift the columns of a table
    row). With ``keep_newlines`` line breaks and tabs survive (``\\r\\n`` becomes
    ``\\n``) so multi-line text keeps its shape.
    """
    unsafe = _UNSAFE_KEEP_NL if keep_newlines else _UNSAFE
    if unsafe.search(text) is None:  # the common case: nothing to do
        return text
    text = _SEQUENCE.sub("", text)
    text = text.replace("\r\n", "\n") if keep_newlines else text.replace("\t", " ")
    if _ZWJ in text:
        text = _STRAY_ZWJ.sub("", text)
    return (_STRIP_KEEP_NL if keep_newlines else _STRIP).sub("", text)


def sanitize_many(texts: list[str]) -> list[str]:
    """:func:`sanitize` of each of ``texts`` (single-line). One search over them all
    first: joined by a space (which no test matches) they hold an unsafe character
    exactly when one of them does, and 50k run ids are then one search, not 50k
    (a tenth of the time, measured)."""
    if _UNSAFE.search(" ".join(texts)) is None:
        return list(texts)
    return [sanitize(t) for t in texts]


# --------------------------------------------------------------------------- keys


_KEY_NOISE = LazyPattern(r"[-_. ]+")
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
    "accountkey",  # Azure storage connection strings
    "sharedaccess",  # Azure SharedAccessKey / SharedAccessSignature
    "signature",
    "privatekey",
    "clientsecret",
    "signedurl",
    "cookie",
    "credential",
    "sessionid",
    "bearer",
)
# Names that say where a secret is, or something about it, not the secret itself:
# ``--token-file PATH``, ``token_env = "GH_TOKEN"``, ``token_type: bearer``.
_REFERENCE_ENDS = (
    "file", "path", "env", "envvar", "dir", "cmd", "command", "type", "count", "length",
    "expiry", "expires", "expiresat", "expiresin", "ttl", "name",
)  # fmt: skip
# Environment variable names: DB_PASS, SMTP_PASSWORD, STRIPE_KEY, APP_SECRET ...
_ENV_SECRET = LazyPattern(
    r"(?:[A-Z][A-Z0-9]*_)+(?:PASS|PASSWD|PASSWORD|PWD|PASSPHRASE|SECRET|TOKEN|KEY|AUTH|CREDS?)"
    r"|SSHPASS|PGPASS"
)


_CAMEL = LazyPattern(r"([a-z0-9])([A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field name suggests its value is a credential.

    Usage counters (``max_tokens``, ``token_count``) are common in job data and are
    deliberately not secret: anything with "tokens" or ending in "count" is exempt,
    and so are names of where a secret is kept (``token_file``, ``password_env``).
    Upper-case environment names ending in ``_PASS``, ``_KEY``, ``_SECRET`` ... are
    secret (public keys excepted).
    """
    norm = _KEY_NOISE.sub("", key.lower())
    if not norm or "tokens" in norm or norm.endswith(_REFERENCE_ENDS):
        return False
    if _ENV_SECRET.fullmatch(key) is not None:
        return not norm.endswith(("publickey", "pubkey"))
    if norm.endswith("pwd"):
        return True
    if any(word in norm for word in _SECRET_WORDS):
        return True
    # "pass" or "pw" as the last word: db_pass, --db-pass, dbPass, --pass (not bypass,
    # compass, nor a test summary's PASS=3)
    words = _KEY_NOISE.split(_CAMEL.sub(r"\1 \2", key).strip("-_. ").lower())
    if words[-1] not in ("pass", "pw"):
        return False
    return len(words) > 1 or not key.isupper()


def _norm_key(key: str) -> str:
    return _KEY_NOISE.sub("", key.lower())


# --------------------------------------------------------------------------- free text

_PEM = LazyPattern(
    r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----).*?"
    r"(-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# A line that is nothing but base64: a PEM body line when a log stores a key one
# line at a time (the BEGIN line, then each body line on its own). Which of these
# are masked is decided in _mask_b64_line, so that ids stay readable.
_B64_LINE = LazyPattern(r"^([ \t]*)([A-Za-z0-9+/]{6,}={0,2})([ \t]*)$", re.MULTILINE)

_URL = LazyPattern(
    r"(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://)"
    r"(?P<userinfo>[^\s/?#@\"'<>]*@)?"
    r"(?P<rest>[^\s?#\"'<>]*)"
    r"(?P<query>\?[^\s#\"'<>]*)?"
    r"(?P<fragment>#[^\s\"'<>]*)?"
)
_URL_TRAILING = ".,;:!)]}"
# Webhook URLs whose path is the credential: keep the service, mask the rest.
_WEBHOOK = LazyPattern(
    r"(?i)(?P<base>hooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|discord(?:app)?\.com/api/webhooks/"
    r"|\.webhook\.office\.com/webhookb2/)"
    r"(?P<secret>[A-Za-z0-9_@/\-]+)"
)

# Cookie headers carry several name=value pairs: mask the whole header value.
_COOKIE_HEADER = LazyPattern(r"(?i)\b((?:set-)?cookie[ \t]*:[ \t]*)[^\r\n\"']+")

_SCHEMES = "bearer|basic|apikey|token|digest|negotiate|ntlm"
# Digest credentials are a list of parameters: all of them go.
_DIGEST = LazyPattern(r"(?i)\b(digest[ \t]+)(?=[\w-]+=)[^\r\n\"']+")
_AUTH_SCHEME = LazyPattern(rf"(?i)\b(?P<scheme>{_SCHEMES})[ \t]+(?P<cred>[A-Za-z0-9\-._~+/=:]+)")

# A bare AWS secret access key (40 characters of base64) is only recognisable by
# what stands next to it: its access key id, or its name.
_AWS_SECRET = r"(?<![A-Za-z0-9+/])(?P<secret>[A-Za-z0-9+/]{40})(?![A-Za-z0-9+/=])"
_AWS_ID = r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
_AWS_PAIRS = LazyPattern(
    rf"(?P<id>{_AWS_ID})(?P<gap>[^\n]{{0,40}}?){_AWS_SECRET}"
    rf"|(?i:(?P<kw>secret[ _\-]?access[ _\-]?key|aws[ _\-]?secret(?:[ _\-]?key)?))"
    rf"(?P<kwgap>[^\n]{{0,20}}?){_AWS_SECRET.replace('secret>', 'secret2>')}"
)
_AWS_BEFORE_ID = LazyPattern(rf"{_AWS_SECRET}(?=[^\n]{{0,40}}?{_AWS_ID})")

# Provider key shapes; each is specific enough to be a key wherever it appears.
# Each comes with the plain substrings that must be in a text for it to match, and
# those with one character they all hold: a shape is only tried when they are there.
_SHAPES: dict[str, tuple[tuple[tuple[str, ...], LazyPattern], ...]] = {
    "A": (
        (("AKIA", "ASIA"), LazyPattern(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),  # AWS access key id
        (("AIza",), LazyPattern(r"\bAIza[0-9A-Za-z_\-]{35}")),  # Google API key
        (("AGE-SECRET-KEY-1",), LazyPattern(r"\bAGE-SECRET-KEY-1[0-9A-Z]{50,}")),  # age
    ),
    "_": (
        (
            ("gho_", "ghp_", "ghs_", "ghu_", "ghr_"),
            LazyPattern(r"\bgh[opsur]_[A-Za-z0-9]{20,}"),  # GitHub tokens
        ),
        (("github_pat_",), LazyPattern(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
        (("k_live_", "k_test_"), LazyPattern(r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}")),  # Stripe
        (("whsec_",), LazyPattern(r"\bwhsec_[0-9A-Za-z]{16,}")),  # Stripe webhook secret
        (("npm_",), LazyPattern(r"\bnpm_[A-Za-z0-9]{36}\b")),  # npm
        (("hf_",), LazyPattern(r"\bhf_[A-Za-z0-9]{30,}")),  # Hugging Face
        (("dop_v1_",), LazyPattern(r"\bdop_v1_[a-f0-9]{64}\b")),  # DigitalOcean
        (
            ("shpat_", "shpss_", "shpca_", "shppa_"),
            LazyPattern(r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b"),  # Shopify
        ),
    ),
    "-": (
        # A provider's own half-masked echo of a key ("sk-abcd****wxyz", "sk-ant-...xyz9"):
        # the ends it keeps are still part of the key.
        (("sk-",), LazyPattern(r"\bsk-[\w\-]*(?:\*{3,}[\w\-*]*|(?:\.{3}|…)[\w\-]{2,})")),
        (("sk-",), LazyPattern(r"\bsk-[A-Za-z0-9_\-]{16,}")),  # OpenAI, Anthropic: _mask_token
        (("xox",), LazyPattern(r"\bxox[abeprs]-[A-Za-z0-9\-]{10,}")),  # Slack
        (("xapp-",), LazyPattern(r"\bxapp-[0-9]-[A-Za-z0-9\-]{10,}")),  # Slack app-level
        (
            ("glpat-", "glrt-", "gldt-", "glptt-", "glcbt-"),
            LazyPattern(r"\bgl(?:pat|rt|dt|ptt|cbt)-[A-Za-z0-9_\-]{20,}"),  # GitLab
        ),
        (("pypi-AgE",), LazyPattern(r"\bpypi-AgE[A-Za-z0-9_\-]{30,}")),  # PyPI upload token
        (("sq0atp-", "sq0csp-"), LazyPattern(r"\bsq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}")),  # Square
    ),
    ".": (
        (("hvs.", "hvb.", "hvr."), LazyPattern(r"\bhv[sbr]\.[A-Za-z0-9_\-]{20,}")),  # Vault
        (("SG.",), LazyPattern(r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}")),  # SendGrid
        # JWT: header.payload.signature, both JSON parts start with '{"' -> eyJ
        (
            ("eyJ",),
            LazyPattern(
                r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"
            ),
        ),
    ),
}

# Command lines. A secret-named flag's value, after "=" or a space (--api-key=V,
# --password V, -Dtrust.password=V); flags that name a file are not secret.
_FLAG = LazyPattern(
    r"(?<![^\s\"'=(\[{,;|&])(?P<name>--?[A-Za-z][\w.\-]*)(?P<sep>=|[ \t]+)"
    r"(?P<val>\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"'<>|&;]+)"
)
# -pSECRET of the mysql family (a lone -p asks for the password, its next word is the
# database); sshpass -p SECRET; curl -u user:SECRET (uid:gid pairs are not secret).
_MYSQL = LazyPattern(r"\b(?:mysql\w*|mariadb\w*|mycli)\b")
_MYSQL_P = LazyPattern(r"(?<!\S)-p(?P<val>\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"']+)")
_SSHPASS_P = LazyPattern(r"(?<!\S)-p[ \t]*(?P<val>\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"']+)")
_USER_PASS = LazyPattern(
    r"(?<!\S)(?:-[uU]|--user|--proxy-user)(?:[ \t]+|=)?"
    r"(?:(?P<q>[\"'])[^:\"'\n]*:(?P<qval>[^\"'\n]*)(?P=q)|[^\s:\"']+:(?P<val>[^\s\"']+))"
)

# Key and value are matched in two steps so that a key which is not secret costs
# only its own length: scanning stays linear even on text like "a=a=a=...".
_PAIR_KEY = LazyPattern(
    r"(?<![\w.\-])(?P<kq>[\"']?)(?P<key>[A-Za-z_][\w.\-]*)(?P=kq)(?P<sep>[ \t]*[:=][ \t]*)"
)
# An unterminated quoted value is masked to the end of its line.
_PAIR_VALUE = LazyPattern(
    rf"(?P<scheme>(?i:{_SCHEMES})[ \t]+)?"
    r"(?P<val>(?P<q>[\"'])(?:(?!(?P=q))[^\\\n]|\\.)*(?P=q)?|[^\s,;&\"'<>)\]}]+)"
)
# An Azure SAS is a query string of its own (sv=...&sig=...): all of it, to the ";".
_SAS_VALUE = LazyPattern(r"(?P<scheme>)(?P<val>(?P<q>)[^\s;\"'<>]+)")
# After "key: " a value ends the line ("password: changeme"), or it reads on as prose.
_LINE_END = LazyPattern(r"[ \t.,;:!?)\]}]*(?:\n|\r|$)")


# Which maskings can apply to a text is decided first, with plain substring checks:
# most strings (ids, names, timestamps) need none, and these cost a microsecond or
# two where running every masking costs tens. A masking only ever puts "***" where
# it removes something, so it cannot make a later one apply that did not before.
#
# Words are looked for in the text lower-cased and without "-", "_", "." and " ":
# a field or flag name is secret (is_secret_key) only if its name, squashed the
# same way, holds one of these words, or is an upper-case environment name.
_NAME_WORDS = (
    "secret", "pass", "pw", "token", "authorization", "apikey", "accesskey", "accountkey",
    "sharedaccess", "privatekey", "signedurl", "signature", "cookie", "credential",
    "sessionid", "bearer",
)  # fmt: skip
_ENV_HINTS = ("PASS", "_KEY", "_SECRET", "_TOKEN", "_AUTH", "_CRED")
_SCHEME_WORDS = tuple(_SCHEMES.split("|"))
_COMMANDS = ("mysql", "mariadb", "mycli", "sshpass", "-u", "-U")

# The quick test in front of the plan, for the common case of none at all: every
# hint of the plan, or a shorter substring of it, with early exits.
_QUICK_WORDS = (
    "secret", "pass", "token", "auth", "apikey", "accesskey", "accountkey", "privatekey",
    "sharedaccess", "signedurl", "signature", "cookie", "cred", "sessionid", "bearer", "pw", "hook",
    "basic", "digest", "negotiate", "ntlm",
)  # fmt: skip
_QUICK_DASH = ("sk-", "xox", "xapp-", "gl", "pypi-", "sq0", "-----BEGIN", "-u", "-U")


def _maybe_secret(text: str) -> bool:
    """False only when :func:`_plan` would find nothing to do for ``text``."""
    if "\n" in text or "://" in text or "eyJ" in text or "_KEY" in text:
        return True
    squashed = text.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")
    for word in _QUICK_WORDS:
        if word in squashed:
            return True
    if "A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text):
        return True
    if "_" in text:
        for hints, _ in _SHAPES["_"]:
            for hint in hints:
                if hint in text:
                    return True
    if "-" in text:
        for hint in _QUICK_DASH:
            if hint in text:
                return True
    if "." in text and ("hvs." in text or "hvb." in text or "hvr." in text or "SG." in text):
        return True
    if "mysql" in text or "mariadb" in text or "mycli" in text:
        return True
    return len(text) >= 8 and _B64_LINE.match(text) is not None


Step = Callable[[str], str]


def _plan(text: str) -> list[Step]:
    """The maskings that may change ``text``, in the order they run."""
    steps: list[Step] = []
    squashed = text.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")
    if "-----BEGIN" in text:
        steps.append(_mask_pem)
    if "\n" in text or (len(text) >= 8 and _B64_LINE.match(text) is not None):
        steps.append(_mask_b64_lines)
    if "://" in text:
        steps.append(_mask_urls)
    if "hook" in squashed:
        steps.append(_mask_webhooks)
    if "cookie" in squashed:
        steps.append(_mask_cookies)
    if any(word in squashed for word in _SCHEME_WORDS):
        steps.append(_mask_auth_schemes)
    if "AKIA" in text or "ASIA" in text or "secret" in squashed:
        steps.append(_mask_aws)
    shapes = [
        pattern
        for gate, group in _SHAPES.items()
        if gate in text or (gate == "." and "eyJ" in text)
        for hints, pattern in group
        if any(hint in text for hint in hints)
    ]
    if shapes:
        steps.append(lambda t: _mask_shapes(t, shapes))
    if any(hint in text for hint in _COMMANDS):
        steps.append(_mask_commands)
    names = any(word in squashed for word in _NAME_WORDS) or any(h in text for h in _ENV_HINTS)
    if names and "-" in text:
        steps.append(_mask_flags)
    if names and ("=" in text or ":" in text):
        steps.append(_mask_pairs)
    return steps


def _credential_like(value: str) -> bool:
    """Tell "Basic dXNlcjpwYXNz" from prose such as "Basic setup" or "Token expired"."""
    if len(value) < 4:
        return False
    if any(c.isdigit() or c in "-._~+/=:" for c in value):
        return True
    tail = value[1:]
    return any(c.isupper() for c in tail) and any(c.islower() for c in tail)


def _reads_like_credential(value: str) -> bool:
    """A value after "key: " in free text: "abc123XYZ" is one, "send the header" is not.

    Four characters with a digit, or six with two kinds of character (capitals past
    the first letter, small letters, digits, symbols)."""
    digits = any(c.isdigit() for c in value)
    if digits and len(value) >= 4:
        return True
    if len(value) < 6:
        return False
    tail = value[1:]
    kinds = (
        any(c.isupper() for c in tail)
        + any(c.islower() for c in tail)
        + digits
        + any(not c.isalnum() for c in value)
    )
    return kinds >= 2


# Words that follow a scheme's name in prose ("a bearer token is required").
_SCHEME_PROSE = frozenset(
    {"token", "tokens", "auth", "authentication", "authorization", "scheme", "header",
     "credential", "credentials", "is", "was", "required", "missing", "expected"}
)  # fmt: skip


def _mask_auth(m: re.Match[str]) -> str:
    scheme, cred = m["scheme"], m["cred"]
    if cred == REDACTED or cred.lower() in _SCHEME_PROSE:
        return m[0]
    if scheme.lower() != "bearer" and not _credential_like(cred):
        return m[0]
    return f"{scheme} {REDACTED}"


def _masked_query(query: str) -> str:
    body = query.rstrip(_URL_TRAILING)
    return (f"?{REDACTED}" if len(body) > 1 else body) + query[len(body) :]


def _masked_fragment(fragment: str) -> str:
    """``#section`` is an anchor; ``#access_token=...`` (OAuth's implicit flow) is not."""
    body = fragment.rstrip(_URL_TRAILING)
    if "=" in body or "%3d" in body.lower():
        return f"#{REDACTED}" + fragment[len(body) :]
    return fragment


def _mask_url_match(m: re.Match[str]) -> str:
    out = m["scheme"] + (f"{REDACTED}@" if m["userinfo"] is not None else "") + m["rest"]
    if m["query"]:
        out += _masked_query(m["query"])
    if m["fragment"]:
        out += _masked_fragment(m["fragment"])
    return out


def _mask_b64_line(m: re.Match[str]) -> str:
    """Mask a whole-line base64 run that is a key's body, not an id or a word.

    PEM body lines are 64 characters (70 for OpenSSH, 76 for MIME): a line of 40 or
    more with capitals, small letters and a digit or symbol is masked. A block's
    last line is shorter, but its length is a multiple of 4 and it is often padded
    with "="; such a line is masked when it also reads like random text (it changes
    between capitals, small letters, digits and symbols at most steps, where
    "BuildAndTest2024" does not) or holds "+" or "/". A Salesforce id (15 or 18
    characters) has the wrong length. An unpadded line under 16 characters cannot
    be told from an id and is kept.
    """
    body = m[2]
    core = body.rstrip("=")
    if not (_has_upper(core) and _has_lower(core)):
        return m[0]  # hex digests, words in one case
    size = len(body)
    digit = any(c.isdigit() for c in core)
    symbol = "+" in core or ("/" in core and not core.startswith("/"))
    if size >= 40:
        masked = digit or symbol
    elif size >= 8 and body.endswith("="):
        masked = _looks_random(core)
    elif size >= 16:
        masked = digit and (symbol or (size % 4 == 0 and _looks_random(core)))
    else:
        masked = False
    return f"{m[1]}{REDACTED}{m[3]}" if masked else m[0]


def _has_upper(text: str) -> bool:
    return any(c.isupper() for c in text)


def _has_lower(text: str) -> bool:
    return any(c.islower() for c in text)


def _kind(c: str) -> int:
    return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3


def _looks_random(text: str) -> bool:
    """Random base64 changes character class at about two steps in three; words and
    CamelCase names at well under half of them."""
    kinds = [_kind(c) for c in text]
    changes = sum(a != b for a, b in itertools.pairwise(kinds))
    return changes * 5 > (len(text) - 1) * 2


def _mask_aws_pair(m: re.Match[str]) -> str:
    secret = m["secret"] if m["secret"] is not None else m["secret2"]
    if not (any(c.isupper() for c in secret) and any(c.islower() for c in secret)):
        return m[0]  # a hex digest or an upper-case id, not a base64 secret
    start = m.start("secret") if m["secret"] is not None else m.start("secret2")
    return m[0][: start - m.start()] + REDACTED


def _mask_aws_before(m: re.Match[str]) -> str:
    secret = m["secret"]
    if any(c.isupper() for c in secret) and any(c.islower() for c in secret):
        return REDACTED
    return secret


def _mask_token(m: re.Match[str]) -> str:
    # "sk-" keys always carry a digit or a capital; hyphenated words such as
    # "sk-learn-compatibility-layer" do not and stay readable.
    token = m[0]
    fragment = "*" in token or "..." in token or "…" in token
    if (
        token.startswith("sk-")
        and not fragment
        and not any(c.isdigit() or c.isupper() for c in token)
    ):
        return token
    return REDACTED


def _quoted_mask(value: str) -> str:
    quote = value[0] if value[:1] in ("'", '"') else ""
    close = quote if len(value) > 1 and value.endswith(quote) else ""
    return f"{quote}{REDACTED}{close}"


def _mask_flags(text: str) -> str:
    parts: list[str] = []
    pos = 0
    while (m := _FLAG.search(text, pos)) is not None:
        val = m["val"]
        name = m["name"].lstrip("-")
        spaced = m["sep"] != "="
        if not is_secret_key(name) or val.startswith(REDACTED) or (spaced and val.startswith("-")):
            # not this one; the value may itself be a flag, so look again from there
            parts.append(text[pos : m.start("val")])
            pos = m.start("val")
            continue
        parts.append(text[pos : m.start("val")])
        parts.append(_quoted_mask(val))
        pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


def _mask_group(m: re.Match[str], group: str) -> str:
    """The match with one group's value masked (quotes around it kept)."""
    start, end = m.span(group)
    return m[0][: start - m.start()] + _quoted_mask(m[group]) + m[0][end - m.start() :]


def _mask_commands(text: str) -> str:
    if _MYSQL.search(text) is not None:
        text = _MYSQL_P.sub(lambda m: _mask_group(m, "val"), text)
    if "sshpass" in text:
        text = _SSHPASS_P.sub(lambda m: _mask_group(m, "val"), text)

    def user_pass(m: re.Match[str]) -> str:
        group = "qval" if m["qval"] is not None else "val"
        value = m[group]
        if not value or value.isdigit() or value.startswith((REDACTED, "//")):
            return m[0]  # uid:gid, a URL, or already masked
        return _mask_group(m, group)

    if "-u" in text or "-U" in text:
        text = _USER_PASS.sub(user_pass, text)
    return text


def _mask_pairs(text: str) -> str:
    # A hand-driven loop rather than re.sub: after a key that is not secret the
    # search resumes right behind it, so "user:password=x" still finds "password=x".
    parts: list[str] = []
    pos = 0
    while (m := _PAIR_KEY.search(text, pos)) is not None:
        end = m.end()
        key = m["key"]
        value = None
        if is_secret_key(key):
            sas = key.lower().endswith("sharedaccesssignature")
            value = (_SAS_VALUE if sas else _PAIR_VALUE).match(text, end)
        if value is None or not _pair_is_secret(text, m["sep"], value):
            parts.append(text[pos:end])
            pos = end
            continue
        quote = value["q"] or ""  # a quoted value keeps its quotes
        parts.append(text[pos : value.start("val")])
        parts.append(f"{quote}{REDACTED}{quote}")
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _pair_is_secret(text: str, sep: str, value: re.Match[str]) -> bool:
    """``password=x`` and ``token:x`` always are; after ``token: `` (a colon and a
    space, as prose has it) only a quoted value, one that looks like a credential,
    or one that ends its line ("password: changeme") is masked. So jobwatch's own
    "missing or wrong token: send the Authorization header" reads as written."""
    val = value["val"]
    if val == REDACTED or val in ('""', "''"):
        return False
    if "=" in sep or not sep.endswith((" ", "\t")) or value["q"]:
        return True
    return _reads_like_credential(val) or _LINE_END.match(text, value.end()) is not None


def redact_text(text: str) -> str:
    """Mask credential values inside free text, keeping the text around them.

    Only values are masked, never the names next to them, so a log line still says
    what was there. Ordinary ids (UUIDs, commit hashes, timestamps, paths) survive.
    """
    if not _maybe_secret(text):
        return text
    for step in _plan(text):
        text = step(text)
    return text


def _mask_pem(text: str) -> str:
    return _PEM.sub(lambda m: m[1] + REDACTED + m[2], text)


def _mask_b64_lines(text: str) -> str:
    return _B64_LINE.sub(_mask_b64_line, text)


def _mask_urls(text: str) -> str:
    return _URL.sub(_mask_url_match, text)


def _mask_webhooks(text: str) -> str:
    return _WEBHOOK.sub(lambda m: m["base"] + REDACTED, text)


def _mask_cookies(text: str) -> str:
    return _COOKIE_HEADER.sub(lambda m: m[1] + REDACTED, text)


def _mask_auth_schemes(text: str) -> str:
    text = _DIGEST.sub(lambda m: m[1] + REDACTED, text)
    return _AUTH_SCHEME.sub(_mask_auth, text)


def _mask_aws(text: str) -> str:
    text = _AWS_PAIRS.sub(_mask_aws_pair, text)
    return _AWS_BEFORE_ID.sub(_mask_aws_before, text)


def _mask_shapes(text: str, patterns: Iterable[LazyPattern]) -> str:
    for pattern in patterns:
        text = pattern.sub(_mask_token, text)
    return text


_EVERY_STEP: tuple[Step, ...] = (
    _mask_pem,
    _mask_b64_lines,
    _mask_urls,
    _mask_webhooks,
    _mask_cookies,
    _mask_auth_schemes,
    _mask_aws,
    lambda t: _mask_shapes(t, [p for group in _SHAPES.values() for _, p in group]),
    _mask_commands,
    _mask_flags,
    _mask_pairs,
)


def _mask_all(text: str) -> str:
    """Every masking, whatever the text holds: what :func:`redact_text` must equal
    (its plan only skips maskings that cannot change anything)."""
    for step in _EVERY_STEP:
        text = step(text)
    return text


# --------------------------------------------------------------------------- e-mail, URLs

_EMAIL = LazyPattern(r"[A-Za-z0-9._%+\-]+@(?=[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})")


def mask_email(text: str) -> str:
    """Every e-mail address in ``text`` as ``***@example.com``: the domain says
    whose, not who. Addresses are personal data, not credentials, so only callers
    that hold people's profiles (the vendor adapters) ask for this."""
    return _EMAIL.sub(f"{REDACTED}@", text) if "@" in text else text


def mask_url(url: str) -> str:
    """One URL as it may be shown: no userinfo, no query string, no fragment that
    carries parameters, no webhook secret path; cleaned. Unlike the URL masking
    inside :func:`clean` it needs no scheme (``user:pw@proxy:8080`` too)."""
    text = url.strip()
    cut = len(text)
    for mark in ("?", "#"):
        at = text.find(mark)
        if at != -1:
            cut = min(cut, at)
    base, tail = text[:cut], text[cut:]
    scheme, sep, rest = base.partition("://")
    if not sep:
        scheme, rest = "", base
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = f"{REDACTED}@{host.rpartition('@')[2]}"
    query, _, fragment = tail.partition("#")
    out = f"{scheme}{sep}{host}{slash}{path}"
    if query:
        out += f"?{REDACTED}" if len(query) > 1 else query
    if fragment:
        out += _masked_fragment("#" + fragment)
    return clean(_WEBHOOK.sub(lambda m: m["base"] + REDACTED, out))


# --------------------------------------------------------------------------- entry points


def clean(text: Any, *, keep_newlines: bool = False) -> str:
    """The one call for any outside string before it reaches the screen or stdout."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return redact_text(sanitize(text, keep_newlines=keep_newlines))


class _Policy(NamedTuple):
    keys: frozenset[str] = frozenset()
    """Normalized field names whose values are masked besides :func:`is_secret_key`'s."""
    url_keys: frozenset[str] = frozenset()
    """Normalized field names whose string values go through :func:`mask_url`."""
    emails: bool = False


_DEFAULT = _Policy()


def redact(
    obj: Any,
    *,
    keys: Iterable[str] = (),
    url_keys: Iterable[str] = (),
    emails: bool = False,
) -> Any:
    """A redacted, sanitized deep copy of JSON-like data; the input is not touched.

    Values under secret-looking keys become ``"***"`` (``None`` and booleans are kept:
    they say whether something is set without revealing it); every value of a
    ``headers`` mapping is masked (a ``headers`` value of another shape entirely);
    in a list of command-line arguments the value after a secret flag is masked;
    every other string goes through :func:`clean`. Unknown types are returned as
    they are.

    A vendor adapter adds what only its system has: ``keys``, field names that are
    secret or personal there (compared without case, ``-``, ``_``, ``.``);
    ``url_keys``, fields holding URLs (:func:`mask_url`); ``emails``, addresses
    masked in every string (:func:`mask_email`).
    """
    if not keys and not url_keys and not emails:
        return _redact(obj, _DEFAULT)
    policy = _Policy(
        frozenset(_norm_key(k) for k in keys), frozenset(_norm_key(k) for k in url_keys), emails
    )
    return _redact(obj, policy)


def _redact(obj: Any, policy: _Policy) -> Any:
    if isinstance(obj, str):
        text = clean(obj, keep_newlines=True)  # structured values may be multi-line
        return mask_email(text) if policy.emails else text
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                out[key] = _redact(value, policy)
                continue
            safe_key = sanitize(key)
            norm = _norm_key(safe_key) if policy is not _DEFAULT else ""
            if safe_key.strip().lower() == "headers":
                if isinstance(value, dict):
                    out[safe_key] = {
                        (sanitize(k) if isinstance(k, str) else k): REDACTED for k in value
                    }
                else:
                    out[safe_key] = None if value is None else REDACTED
            elif is_secret_key(safe_key) or norm in policy.keys:
                out[safe_key] = value if value is None or isinstance(value, bool) else REDACTED
            elif norm in policy.url_keys and isinstance(value, str):
                out[safe_key] = mask_url(value)
            else:
                out[safe_key] = _redact(value, policy)
        return out
    if isinstance(obj, list):
        return _redact_items(obj, policy)
    if isinstance(obj, tuple):
        return tuple(_redact_items(obj, policy))
    return obj


def _redact_items(items: Sequence[Any], policy: _Policy) -> list[Any]:
    """Each item redacted; an argv-like list (``["--token", "X"]``) also loses the
    value after a secret-named flag, which no single item shows."""
    out: list[Any] = []
    hide_next = False
    for item in items:
        if hide_next and isinstance(item, str) and not item.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = isinstance(item, str) and _is_secret_flag(item)
        out.append(_redact(item, policy))
    return out


_LONE_FLAG = LazyPattern(r"--?([A-Za-z][\w.\-]*)")


def _is_secret_flag(item: str) -> bool:
    if not item.startswith("-"):
        return False
    m = _LONE_FLAG.fullmatch(item)
    return m is not None and is_secret_key(m[1])


def mask_values(obj: Any) -> Any:
    """Every value masked, keys kept (``None`` and booleans too are kept): for
    settings that may be secrets under any name, such as a connector's properties."""
    if isinstance(obj, dict):
        return {sanitize(str(key)): mask_values(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [mask_values(item) for item in obj]
    return obj if obj is None or isinstance(obj, bool) else REDACTED
