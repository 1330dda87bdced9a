"""Tests for jobwatch.core.redact: control sequences out, secrets masked, ordinary ids kept."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch.core.redact import (
    REDACTED,
    clean,
    is_secret_key,
    redact,
    redact_text,
    sanitize,
    sanitize_many,
)

GOOGLE_KEY = "AIza" + "SyA1234567890" + "abcdefghijklmnopqrstuv"  # AIza + 35 chars
GITHUB_PAT = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" + "K1l2M3n4O5p6Q7r8"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)

# (text, the secret that must disappear, text around it that must survive)
SECRETS: list[tuple[str, str, str]] = [
    ("curl -H 'Authorization: Bearer abc123def456ghi' https://api", "abc123def456ghi", "curl -H"),
    ("auth header Basic dXNlcjpwYXNzd29yZA== sent", "dXNlcjpwYXNzd29yZA==", "auth header"),
    ("Authorization: ApiKey k3y-VALUE-123 ok", "k3y-VALUE-123", "Authorization: ApiKey"),
    ("retrying with Token 9f8e7d6c5b4a3 now", "9f8e7d6c5b4a3", "retrying with Token"),
    ("login password=hunter2 user=alice", "hunter2", "user=alice"),
    ("db_password: s3cr3tValue rows=12", "s3cr3tValue", "rows=12"),
    ('{"api_key": "abcd1234efgh", "limit": 5}', "abcd1234efgh", '"limit": 5'),
    ("client_secret=xyzzy-42&grant_type=client_credentials", "xyzzy-42", "grant_type"),
    ("X-Api-Key: 0123456789abcdef trace=t1", "0123456789abcdef", "trace=t1"),
    (
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done",
        "wJalrXUtnFEMI",
        "export AWS_SECRET_ACCESS_KEY=",
    ),
    ("using key AKIAIOSFODNN7EXAMPLE in eu-west-1", "AKIAIOSFODNN7EXAMPLE", "in eu-west-1"),
    ("temporary creds ASIAY34FZKBOKMUTVV7A issued", "ASIAY34FZKBOKMUTVV7A", "issued"),
    ("openai key sk-proj-abc123DEF456ghi789JKL loaded", "sk-proj-abc123DEF456ghi789JKL", "loaded"),
    ("anthropic sk-ant-api03-AbCdEf0123456789xyz ok", "sk-ant-api03-AbCdEf0123456789xyz", "ok"),
    # A provider's half-masked echo of a key: its kept ends are part of the key.
    ("Incorrect API key provided: sk-abcd****************wxyz. Fix", "abcd****", ". Fix"),
    ("key sk-ant-...Xy9z rejected", "Xy9z", "rejected"),
    (f"git push with {GITHUB_PAT} failed", GITHUB_PAT, "failed"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a and more", "gho_16C7e42F292c", "and more"),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop used", "github_pat_11ABCDEFG", "used"),
    ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKl posted", "xoxb-1234567890", "posted"),
    ("gitlab glpat-abcdefghij0123456789 cloned", "glpat-abcdefghij0123456789", "cloned"),
    (f"maps key={GOOGLE_KEY} ok", GOOGLE_KEY, "maps key="),
    (f"maps {GOOGLE_KEY} inline", GOOGLE_KEY, "inline"),
    ("charge via sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc", "charge via"),
    ("restricted rk_live_51H8abcdEFGHijklMNOP0000 set", "rk_live_51H8abcdEFGH", "set"),
    (f"jwt {JWT} expired", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "expired"),
    (
        f"key file:\n{PEM}\nloaded",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "loaded",
    ),
    ("connect https://admin:hunter2@db.example.com/x now", "hunter2", "@db.example.com/x now"),
    ("fetch https://s3.example.com/o?X-Amz-Signature=deadbeef done", "deadbeef", "done"),
    ("session_id=abc123xyz path=/tmp", "abc123xyz", "path=/tmp"),
    ("Cookie: sid=abc123; theme=dark", "theme=dark", "Cookie:"),
    ("PGPASSWORD=pgS3cret psql -h db", "pgS3cret", "psql -h db"),
    ("private_key: MIIEvQIBADANBgkqhkiG9w0B end", "MIIEvQIBADANBgkqhkiG9w0B", "end"),
    ("passwd='quoted pass' next", "quoted pass", "next"),
    ("refresh_token = 1//0gAbCdEfGh next", "1//0gAbCdEfGh", "next"),
    ("token=sk-abcdefghijklmnopqrstuv", "sk-abcdefghijklmnopqrstuv", "token="),
    ("user:password=x-very-secret y", "x-very-secret", "user:password="),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SECRETS)
def test_secret_shapes_are_masked(text: str, secret: str, kept: str) -> None:
    out = clean(text, keep_newlines=True)
    assert secret not in out
    assert kept in out
    assert REDACTED in out


def test_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("bearer xyz", "bearer ***"),
        ("Basic dXNlcjpwYXNz", "Basic ***"),
        ("https://user:pw@host/p", "https://***@host/p"),
        ("https://h/p?sig=abc&x=1", "https://h/p?***"),
        ("https://h/p?sig=abc#frag", "https://h/p?***#frag"),
        ("see (https://h/p?a=1).", "see (https://h/p?***)."),
        ("redis://:pw@cache:6379/0", "redis://***@cache:6379/0"),
        ('{"password": "p\\"w", "n": 1}', '{"password": "***", "n": 1}'),
        ("password=hunter2&user=bob", "password=***&user=bob"),
        ("a AKIAIOSFODNN7EXAMPLE b", "a *** b"),
        ("Cookie: a=1; b=2", "Cookie: ***"),
        ("Authorization: Negotiate YIIabc123", "Authorization: Negotiate ***"),
    ],
)
def test_redact_text_exact(text: str, expected: str) -> None:
    assert redact_text(text) == expected


# ----------------------------------------------------------------------- false positives

UNCHANGED = [
    "run 123e4567-e89b-12d3-a456-426614174000 started",
    "run-123e4567-e89b-12d3-a456-426614174000",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 merged",
    "at 2024-05-01T12:30:00Z and 2024-05-01T12:30:00.123+02:00",
    "wrote /var/lib/jobwatch/runs/2024/05/out.parquet",
    "C:\\Users\\alice\\jobs\\out.csv",
    "processed 1024 rows in 3.5 s, exit 0",
    "max_tokens: 1024 prompt_tokens=12 total_tokens=40",
    "token_count=17 tokens_used: 99",
    "see https://example.com/docs/page#section",
    "GET http://localhost:8080/api/v1/runs",
    "Basic setup done, Token expired, token refresh ok",
    "sk-learn-compatibility-layer installed",
    "see sk-learn... for details",
    "the password was rotated",
    "author: Alice, key: value, status: FAILED",
    "héllo wörld — 日本語 テキスト 🚀✨",
    "time 12:30:45 ratio 3:2",
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_is_not_redacted(text: str) -> None:
    assert clean(text) == text


def test_max_tokens_key_survives_redact() -> None:
    data = {"max_tokens": 1024, "usage": {"prompt_tokens": 12, "token_count": 3}}
    assert redact(data) == data


# ----------------------------------------------------------------------- escape sequences

ESCAPES: list[tuple[str, str]] = [
    ("\x1b[31mred\x1b[0m text", "red text"),
    ("\x1b[1;38;5;196mbold\x1b[m", "bold"),
    ("\x1b[38;2;255;0;0mrgb\x1b[39m", "rgb"),
    ("a\x1b[2Jb", "ab"),
    ("a\x1b[H\x1b[10;20Hb\x1b[3Ac", "abc"),
    ("\x1b[?1049hswitched\x1b[?1049l", "switched"),
    ("\x1b[?25lhidden cursor", "hidden cursor"),
    ("\x1b]0;pwned\x07title", "title"),
    ("\x1b]2;pwned\x1b\\title", "title"),
    ("\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\", "click me"),
    ("\x1b]8;;https://evil.example/\x07link\x1b]8;;\x07", "link"),
    ("x\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07y", "xy"),
    ("a\x1bP1$r0m\x1b\\b", "ab"),
    ("a\x1b_apc payload\x1b\\b", "ab"),
    ("a\x1b^privacy\x1b\\b\x1bXsos\x1b\\c", "abc"),
    ("a\x9b31mb", "ab"),
    ("a\x9d0;t\x9cb", "ab"),
    ("a\x90dcs\x9cb", "ab"),
    ("ding\x07dong", "dingdong"),
    ("abc\x08\x08\x08xyz", "abcxyz"),
    ("safe\rEVIL", "safeEVIL"),
    ("nul\x00byte", "nulbyte"),
    ("del\x7fete", "delete"),
    ("c1\x85\x8d\x96chars", "c1chars"),
    ("a\x9fapc\x9cb", "ab"),
    ("start \x1b]0;never terminated title", "start "),
    ("\x1bcreset \x1b7saved\x1b8 \x1b(Bcharset \x1b=keypad", "reset saved charset keypad"),
    ("trailing esc\x1b", "trailing esc"),
    ("broken csi \x1b[31", "broken csi "),
    ("\x1b]0;t\x1b[31mred", "red"),
]


@pytest.mark.parametrize(("text", "expected"), ESCAPES)
def test_sanitize_strips_control_sequences(text: str, expected: str) -> None:
    out = sanitize(text)
    assert out == expected
    assert not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in out)


def test_escape_corpus_is_big_enough() -> None:
    assert len(ESCAPES) >= 15


def test_printable_unicode_survives() -> None:
    text = "café naïve 東京 🚀 עברית العربية ok"
    assert sanitize(text) is text  # fast path hands back the very same object
    assert sanitize("\x1b[1m" + text) == text


def test_tabs_become_spaces_on_one_line_and_stay_in_multi_line_text() -> None:
    """A tab in a job name shifted the columns of its row; a log or a description
    shown as a block may keep its tabs."""
    assert sanitize("job\tname") == "job name"
    assert clean("a\tb\tc") == "a b c"
    assert sanitize("col1\tcol2\nx\ty", keep_newlines=True) == "col1\tcol2\nx\ty"


BIDI_AND_ZERO_WIDTH = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # embeddings, overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # isolates
    "\u200e", "\u200f", "\u061c",  # marks
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero width
]  # fmt: skip


@pytest.mark.parametrize("char", BIDI_AND_ZERO_WIDTH)
@pytest.mark.parametrize("keep", [False, True])
def test_bidi_and_zero_width_characters_are_removed(char: str, keep: bool) -> None:
    assert sanitize(f"inv{char}gpj.exe", keep_newlines=keep) == "invgpj.exe"
    assert clean(f"a{char}b{char}", keep_newlines=keep) == "ab"


def test_a_right_to_left_override_cannot_disguise_a_file_name() -> None:
    """ "inv\u202egpj.exe" displays as "invexe.jpg"; shown in stored order it is
    what it is."""
    assert clean("inv\u202egpj.exe") == "invgpj.exe"
    assert redact({"name": "inv\u202egpj.exe", "\u202ekey": 1}) == {"name": "invgpj.exe", "key": 1}


def test_zwj_stays_inside_emoji_sequences_only() -> None:
    technologist = "\U0001f469\u200d\U0001f4bb"  # woman, ZWJ, laptop: one glyph
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    rainbow_flag = "\U0001f3f3\ufe0f\u200d\U0001f308"
    for emoji in (technologist, family, rainbow_flag):
        assert sanitize(f"{emoji} ok") == f"{emoji} ok"
    assert sanitize("pay\u200dpal") == "paypal"
    assert sanitize("\u200d\U0001f4bb") == "\U0001f4bb"


def test_a_hidden_character_cannot_split_a_secret_name() -> None:
    assert clean("pass\u200bword=hunter2") == "password=***"


@pytest.mark.parametrize(
    ("text", "keep", "expected"),
    [
        ("a\nb", False, "ab"),
        ("a\nb", True, "a\nb"),
        ("a\r\nb\r\n", True, "a\nb\n"),
        ("a\r\nb", False, "ab"),
        ("progress 10%\rprogress 90%\n", True, "progress 10%progress 90%\n"),
        ("col1\tcol2\n", True, "col1\tcol2\n"),
        ("\x1b[32mline1\x1b[0m\nline2", True, "line1\nline2"),
    ],
)
def test_keep_newlines(text: str, keep: bool, expected: str) -> None:
    assert sanitize(text, keep_newlines=keep) == expected


def test_clean_combines_sanitize_and_redact() -> None:
    text = "\x1b]0;pwned\x07oops \x1b[2Jtoken=sk-abc\x1b[0mdefghijklmnopqrstuv"
    assert clean(text) == "oops token=***"
    assert clean(None) == ""
    assert clean(42) == "42"
    assert clean("a\nb", keep_newlines=True) == "a\nb"


# ----------------------------------------------------------------------- is_secret_key


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "passwd",
        "pwd",
        "db-pwd",
        "secret",
        "client_secret",
        "clientSecret",
        "access_token",
        "refreshToken",
        "Authorization",
        "X-Api-Key",
        "api_key",
        "apiKey",
        "accessKeyId",
        "secretAccessKey",
        "private_key",
        "signed_url",
        "Cookie",
        "credentials",
        "session_id",
        "bearer",
        "tap-postgres.password",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens",
        "tokens_used",
        "token_count",
        "total_tokens",
        "prompt_tokens",
        "bucket",
        "region",
        "type",
        "version",
        "url",
        "id",
        "author",
        "pwdless_mode",
        "keyboard",
        "",
    ],
)
def test_not_secret_keys(key: str) -> None:
    assert not is_secret_key(key)


# ----------------------------------------------------------------------- redact()

SNAPSHOT = {
    "sink": {
        "type": "s3",
        "bucket": "b",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "region": "us-east-1",
        "headers": {"Authorization": "Bearer abc.def", "X-Trace": "t1"},
    },
    "proxy": {"version": "v1", "url": "http://user:hunter2@proxy.example.com:8080"},
    "results": {"signed_url": "https://s3.example.com/o?X-Amz-Signature=deadbeef"},
}


def test_redact_config_snapshot() -> None:
    result = redact(SNAPSHOT)
    dumped = json.dumps(result)
    for secret in (
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "EXAMPLEKEY",
        "abc.def",
        "hunter2",
        "user:",
        "deadbeef",
        "X-Amz-Signature",
    ):
        assert secret not in dumped, secret
    sink = result["sink"]
    assert sink["type"] == "s3"
    assert sink["bucket"] == "b"
    assert sink["region"] == "us-east-1"
    assert result["proxy"]["version"] == "v1"
    assert result["proxy"]["url"] == "http://***@proxy.example.com:8080"
    assert sink["accessKeyId"] == REDACTED
    assert sink["secretAccessKey"] == REDACTED
    assert sink["headers"] == {"Authorization": REDACTED, "X-Trace": REDACTED}
    assert result["results"]["signed_url"] == REDACTED


def test_redact_does_not_mutate_input() -> None:
    before = copy.deepcopy(SNAPSHOT)
    result = redact(SNAPSHOT)
    assert before == SNAPSHOT
    result["sink"]["bucket"] = "changed"
    assert SNAPSHOT["sink"]["bucket"] == "b"


def test_redact_value_types() -> None:
    data = {
        "password": None,
        "token": True,
        "pin_password": 1234,
        "secret": {"nested": "x"},
        "api_key": ["a", "b"],
        "retries": 3,
        "ratio": 0.5,
        "enabled": False,
        "nothing": None,
    }
    assert redact(data) == {
        "password": None,
        "token": True,
        "pin_password": REDACTED,
        "secret": REDACTED,
        "api_key": REDACTED,
        "retries": 3,
        "ratio": 0.5,
        "enabled": False,
        "nothing": None,
    }


def test_redact_walks_lists_tuples_and_cleans_strings_and_keys() -> None:
    marker = object()
    data = {
        "\x1b[31mname\x1b[0m": "\x1b]0;x\x07job",
        "logs": ["ok", "Bearer abc123", ("t", "password=p")],
        "obj": marker,
        3: "int key",
    }
    result = redact(data)
    assert result == {
        "name": "job",
        "logs": ["ok", "Bearer ***", ("t", "password=***")],
        "obj": marker,
        3: "int key",
    }
    assert result["obj"] is marker
    assert isinstance(result["logs"][2], tuple)


def test_redact_scalars() -> None:
    assert redact("Bearer abc") == "Bearer ***"
    assert redact(5) == 5
    assert redact(None) is None
    assert redact([1, "x"]) == [1, "x"]


_FRAGMENTS = st.sampled_from(
    [
        "password=", "token: ", "Bearer ", "basic ", "https://", "u:p@", "?q=1", "cookie: ",
        "AKIA", "IOSFODNN7EXAMPLE", "sk-", "ghp_", "xoxb-", "glpat-", "AIza", "rk_live_",
        "eyJhbGciOi", ".eyJzdWIi", "-----BEGIN RSA PRIVATE KEY-----", "api_key", "=", ":",
        "'", '"', " ", "\\n", "2026-11-28T16:46:15Z", "d09886ff-40d1", "Named Entity",
        "\n", "\t", "-", "--", "-p", "-u ", "#a=1", "mysql ", "sshpass ", "DB_PASS", "_KEY",
        "pass", "pw", "secret", "to-ken", "pass_word", "--db-", "hvs.", "SG.", "Digest ",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key ", "user:",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "==", "+", "/",
        "hooks.slack.com/services/", "AccountKey=", "SharedAccessSignature=", ";", "&",
    ]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12)), max_size=12).map("".join))
def test_the_fast_path_never_skips_a_mask(text: str) -> None:
    """Skipping the masks for text that cannot match is only an optimisation: the
    result is always what running every mask gives."""
    from jobwatch.core.redact import _mask_all

    assert redact_text(text) == _mask_all(text)


@pytest.mark.parametrize(
    "text",
    [
        "x -----BEGIN RSA PRIVATE KEY-----abc-----END RSA PRIVATE KEY-----",
        "see https://host/x?sig=abc",
        "cookie: session",
        "Bearer abcdef123",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-AbCdEfGh1234567890xyz",
        "ghp_abcdefghijklmnopqrstuv123",
        "github_pat_abcdefghijklmnopqrstu123",
        "xoxb-1234567890-abc",
        "glpat-abcdefghijklmnopqrst12",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "sk_live_abcdefghijklmnop1234",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
        "api_key:abc123",
        "password = hunter2",
        "--api-key=abc123",
        "--password hunter2",
        "-Dtrust.password=changeit",
        "mysql -pS3cret",
        "sshpass -p pw ssh h",
        "curl -u user:pw1 https",
        "curl -u user:pw1",
        "DB_PASS=x",
        "STRIPE_KEY=x",
        "AccountKey=abc==",
        "hvs.CAESIJqm0x5GZfG1aaBbCcDdEeFfGgHh",
        "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8t",
        "hooks.slack.com/services/T0/B0/xyz",
        "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "https://h/#access_token=x",
        "Authorization: Digest username=x, response=y",
        "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ],
)
def test_each_kind_of_secret_takes_the_masking_path(text: str) -> None:
    """One secret of each kind, alone: the quick check must let every one through."""
    from jobwatch.core.redact import _mask_all

    assert _mask_all(text) != text
    assert redact_text(text) == _mask_all(text)


def test_a_log_line_prints_no_escape_from_its_stream_name() -> None:
    """A remote server or vendor names the stream too; it is outside text."""
    from datetime import UTC, datetime

    from jobwatch.core import LogLine
    from jobwatch.core.format import log_line

    line = LogLine(
        run_id="r",
        seq=1,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        stream="\x1b]0;pwn\x07out",
        text="ok",
    )
    printed = log_line(line, timestamps=True)
    assert "\x1b" not in printed and "\x07" not in printed and printed.endswith("ok")


# ----------------------------------------------------------------------- the adapters' helpers


def test_one_e_mail_format() -> None:
    """Four adapters had four maskers in three formats; there is one now."""
    from jobwatch.core.redact import mask_email

    assert mask_email("jane.doe@example.com") == "***@example.com"
    assert mask_email("from jane@example.co.uk and bob+x@mail.example.org") == (
        "from ***@example.co.uk and ***@mail.example.org"
    )
    assert mask_email("no address here, user@localhost") == "no address here, user@localhost"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@proxy:8080/x?token=1", "http://***@proxy:8080/x?***"),
        ("u:p@proxy:8080", "***@proxy:8080"),
        ("https://hooks.example.com/a", "https://hooks.example.com/a"),
        (
            "https://u@hooks.example.com/done?t=1#frag",
            "https://***@hooks.example.com/done?***#frag",
        ),
        ("https://app.example.com/#access_token=abc", "https://app.example.com/#***"),
        ("s3://bucket/prefix/", "s3://bucket/prefix/"),
        ("https://hooks.slack.com/services/T0/B0/abcdef", "https://hooks.slack.com/services/***"),
        (" https://h/p? ", "https://h/p?"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    from jobwatch.core.redact import mask_url

    assert mask_url(url) == shown


def test_redact_with_an_adapters_own_keys() -> None:
    raw = {
        "submittedBy": "api_key=abc",
        "user": {"first_name": "Jane", "email": "jane@example.com", "team": "ops"},
        "sink": {"endpoint": "https://u:p@sink.example.com/x?sig=1", "secretAccessKey": "k"},
        "note": "mail jane@example.com",
        "flag": True,
    }
    out = redact(raw, keys={"submittedBy", "firstName", "email"}, url_keys={"endpoint"})
    assert out["submittedBy"] == out["user"]["first_name"] == out["user"]["email"] == REDACTED
    assert out["user"]["team"] == "ops" and out["flag"] is True
    assert out["sink"] == {
        "endpoint": "https://***@sink.example.com/x?***",
        "secretAccessKey": "***",
    }
    assert out["note"] == "mail jane@example.com"  # addresses only when asked for
    assert redact(raw, emails=True)["note"] == "mail ***@example.com"
    assert redact({"headers": [["Authorization", "Bearer x"]]}) == {"headers": REDACTED}


def test_mask_values_keeps_only_keys() -> None:
    from jobwatch.core.redact import mask_values

    props = {"tap.host": "db", "tap.password": "pw", "n": 3, "on": True, "x": None, "l": ["a"]}
    assert mask_values(props) == {
        "tap.host": "***", "tap.password": "***", "n": "***", "on": True, "x": None, "l": ["***"]
    }  # fmt: skip


def test_an_argument_list_hides_the_value_after_a_secret_flag() -> None:
    argv = ["tap", "--password", "hunter2", "--token-file", "/run/tok", "--api-key=k3y", "-v"]
    assert redact(argv) == [
        "tap",
        "--password",
        "***",
        "--token-file",
        "/run/tok",
        "--api-key=***",
        "-v",
    ]
    assert redact(["--password", "--verbose"]) == ["--password", "--verbose"]


@pytest.mark.parametrize(
    "texts",
    [
        ["run-1", "run-2", "a b\tc"],
        ["run-1", "evil\x1b[2Jid", "zw\u200bsp", "bidi\u202eid", "tab\there"],
        [],
    ],
)
def test_sanitize_many_is_sanitize_of_each(texts: list[str]) -> None:
    """One search over the lot decides; an unsafe one anywhere cleans them each."""
    assert sanitize_many(texts) == [sanitize(t) for t in texts]


_COUNT_COMPILES = """
import re, sys
made = []
original = re.compile
def counting(*args, **kwargs):
    if sys._getframe(1).f_code.co_filename.endswith(("redact.py", "lazy_re.py")):
        made.append(args[0])
    return original(*args, **kwargs)
re.compile = counting
from jobwatch.core.redact import clean
at_import = len(made)
masked = clean("export GITHUB_TOKEN=ghp_" + "a1B2" * 8)
print(at_import, len(made), masked)
"""


def test_secret_shapes_compile_on_first_use_not_at_import() -> None:
    """Compiling some fifty secret patterns at import cost 19-27 ms of CPU at every
    start of every verb; only the few that every ``clean`` needs compile then."""
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_COMPILES], capture_output=True, text=True, timeout=60
    )
    at_import, after, masked = done.stdout.split(maxsplit=2)
    assert int(at_import) <= 8, done.stdout
    assert int(after) > int(at_import) and "ghp_" not in masked and "***" in masked
