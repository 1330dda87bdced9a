"""A corpus of secret shapes that must be masked and look-alikes that must not.

Every case goes through :func:`clean` (as a table cell, a log line, an error
message) and through :func:`redact` inside JSON (as ``--json``, the HTTP API and
a saved record show it). A masked case must lose its secret and keep the text
around it: the key or flag name stays, only the value goes.
"""

from __future__ import annotations

import base64
import json
import random

import pytest

from jobwatch.core.redact import REDACTED, clean, redact

# (text, the secret that must disappear, text around it that must survive)
SECRETS: list[tuple[str, str, str]] = []


def add(text: str, secret: str, kept: str) -> None:
    SECRETS.append((text, secret, kept))


# CLI flags
add("deploy --api-key=Zx9Qw8Er7Ty6 --region eu", "Zx9Qw8Er7Ty6", "--api-key=")
add("deploy --api-key Zx9Qw8Er7Ty6 --region eu", "Zx9Qw8Er7Ty6", "--region eu")
add("gh auth --token ghx9f8e7d6c5b4a3 ok", "ghx9f8e7d6c5b4a3", "--token ")
add("login --token=plainwordtoken done", "plainwordtoken", "--token=")
add("oauth --client-secret=cs_8f7e6d5c4b3a --scope read", "cs_8f7e6d5c4b3a", "--scope read")
add("oauth --client-secret 'with space 9' --x", "with space 9", "--client-secret '")
add("psql --password hunter2 -h db", "hunter2", "-h db")
add('run --password="quoted secret" next', "quoted secret", "next")
add("app -password SuperSecret1 -v", "SuperSecret1", "-password ")
add("java -Djavax.net.ssl.keyStorePassword=changeit -jar app.jar", "changeit", "-jar app.jar")
add("cli --db-pass=pg_S3cret --verbose", "pg_S3cret", "--verbose")
add("tool --secret=abcdefgh --dry-run", "abcdefgh", "--dry-run")
add("tool --auth-token ZZZ999yyy --out x", "ZZZ999yyy", "--out x")
add("docker login --password Dk3rP4ss -u bob", "Dk3rP4ss", "-u bob")
add("terraform apply -var api_key=tfK3yValue1", "tfK3yValue1", "-var api_key=")
add("mysql -u root -pS3cr3tPw db1", "S3cr3tPw", "mysql -u root -p")
add("mysqldump -uadmin -phunter2 --all-databases", "hunter2", "--all-databases")
add("mariadb -h db.internal -p'pa ss w0rd' app", "pa ss w0rd", "app")
add("curl -u alice:hunter2 https://api.example.com", "hunter2", "curl -u alice:")
add("curl --user deploy:Tk9xYz12 -X POST", "Tk9xYz12", "-X POST")
add("curl -u 'bob:s3cret word' https://x", "s3cret word", "curl -u 'bob:")
add("curl -U proxyuser:pr0xyPw https://x", "pr0xyPw", "proxyuser:")
add("sshpass -p MyS3cret ssh user@host", "MyS3cret", "ssh user@host")
add("sshpass -p'quoted pw' scp a b", "quoted pw", "scp a b")
add("sshpass -pplain ssh host", "plain", "ssh host")
# env-style
add("export DB_PASS=s3cretpass", "s3cretpass", "export DB_PASS=")
add("DB_PASS=plain psql", "plain", "psql")
add("SMTP_PASSWORD=mailpw123 sendmail", "mailpw123", "sendmail")
add("APP_SECRET=longsecretvalue start", "longsecretvalue", "start")
add("GITHUB_TOKEN=ghtokenvalue99 make", "ghtokenvalue99", "make")
add("STRIPE_KEY=stripekeyvalue node", "stripekeyvalue", "node")
add("ENCRYPTION_KEY=0a1b2c3d4e5f6a7b8c9d run", "0a1b2c3d4e5f6a7b8c9d", "run")
add("env REDIS_AUTH=r3disAuth ./srv", "r3disAuth", "./srv")
add("SSHPASS=sshpw99 sshpass -e ssh h", "sshpw99", "sshpass -e ssh h")
add(
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "wJalrXUtnFEMI",
    "AWS_SECRET_ACCESS_KEY=",
)
add("DB_PASS: yamlvalue", "yamlvalue", "DB_PASS: ")
add("MY_API_TOKEN='abc def 123' ./run", "abc def 123", "./run")
# Azure
add(
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
    "Eby8vdM02xNOcqFl",
    "EndpointSuffix=core.windows.net",
)
add(
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=abcDEF123ghiJKL456=",
    "abcDEF123ghiJKL456",
    "SharedAccessKeyName=RootManageSharedAccessKey",
)
add(
    "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020-08-04&ss=b&sig=XyZ123",
    "XyZ123",
    "BlobEndpoint=",
)
add(
    "Server=tcp:db.database.windows.net;Database=app;User ID=admin;"
    "Password=Az#Pa55word;Encrypt=true",
    "Az#Pa55word",
    "Encrypt=true",
)
# vault, sendgrid, slack
add(
    "VAULT_TOKEN is hvs.CAESIJqm0x5GZfG1aaBbCcDdEeFfGgHh set",
    "hvs.CAESIJqm0x5GZfG1aaBbCcDdEeFfGgHh",
    "set",
)
add(
    "batch hvb.AAAAAQJ0aGlzaXNhYmF0Y2h0b2tlbjEyMzQ1 used",
    "hvb.AAAAAQJ0aGlzaXNhYmF0Y2h0b2tlbjEyMzQ1",
    "used",
)
add(
    "mail via 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 now",
    "ngeVfQFYQlKU0ufo8x5d1A",
    "now",
)
add(
    "post https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX done",
    "XXXXXXXXXXXXXXXXXXXXXXXX",
    "done",
)
add(
    "hook hooks.slack.com/services/T024BE7LD/B01234567/abcdEFGHijklMNOPqrstUVWX",
    "abcdEFGHijklMNOPqrstUVWX",
    "hooks.slack.com/services/",
)
add(
    "discord https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIjKl_MnOp ok",
    "AbCdEf-GhIjKl_MnOp",
    "discord.com/api/webhooks/",
)
# AWS bare secret
add(
    "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "",
)
add(
    "AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,us-east-1",
    "bPxRfiCYEXAMPLEKEY",
    "us-east-1",
)
add(
    "aws configure set aws_secret_access_key je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "je7MtGbClwBF",
    "aws_secret_access_key ",
)
add(
    "Secret access key: je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY (keep it)",
    "je7MtGbClwBF",
    "(keep it)",
)
add("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY for AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", " for ")
add(
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "wJalrXUtnFEMI",
    "aws_secret_access_key = ",
)
# token: pairs
add("token: abc123XYZ", "abc123XYZ", "token: ")
add("token: plainword", "plainword", "token: ")
add("password: hunter2 (rotated)", "hunter2", "(rotated)")
add("secret: 'quoted value here' next", "quoted value here", "next")
add("api_key:tightvalue rest", "tightvalue", "rest")
add('{"client_secret": "cs-123", "n": 1}', "cs-123", '"n": 1')
add("X-Auth-Token: 4f3e2d1c0b9a", "4f3e2d1c0b9a", "X-Auth-Token:")
# URL fragments / queries
add(
    "open https://app.example.com/#access_token=ya29.a0AfH6SMB&token_type=Bearer now",
    "ya29.a0AfH6SMB",
    "now",
)
add(
    "cb https://app.example.com/cb#id_token=eyJhbGciOi.x.y ok",
    "eyJhbGciOi",
    "https://app.example.com/cb#",
)
add("cb https://app.example.com/#/done?code=AUTHCODE42 ok", "AUTHCODE42", "ok")
add("cb https://app.example.com/p?api_key=QWERTY123 ok", "QWERTY123", "https://app.example.com/p?")
add("redis://default:r3dispw@cache:6379", "r3dispw", "@cache:6379")
add("postgres://app:pg%40ss@db/app", "pg%40ss", "@db/app")
# providers
for token, _ in [
    ("ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "x"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "x"),
    ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", "x"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "x"),
    ("xoxb-1234567890-0987654321-AbCdEfGhIjKl", "x"),
    ("xoxp-1234567890-0987654321-AbCdEfGhIjKl", "x"),
    ("xapp-1-A0123456789-0123456789012-abcdef0123", "x"),
    ("glpat-abcdefghij0123456789", "x"),
    ("glrt-abcdefghij0123456789xyz", "x"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "x"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "x"),
    ("rk_test_51H8abcdEFGHijklMNOP0000", "x"),
    ("whsec_1234567890abcdefghijABCDEFGHIJ", "x"),
    ("sk-proj-abc123DEF456ghi789JKL", "x"),
    ("sk-ant-api03-AbCdEf0123456789xyz", "x"),
    ("npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "x"),
    ("pypi-AgEIcHlwaS5vcmcCJDEyMzQ1Njc4LTkwYWItY2RlZi0xMjM0", "x"),
    ("hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "x"),
    ("dop_v1_" + "0123456789abcdef" * 4, "x"),
    ("shpat_" + "0123456789abcdef" * 2, "x"),
    ("sq0atp-" + "A1b2C3d4E5f6G7h8I9j0K1", "x"),
    ("AGE-SECRET-KEY-1" + "QQQQ2Q3Q4Q5Q6Q7Q8Q9QAQSQDQFQGQHQJQKQLQZQXQCQVQBQNQM", "x"),
    ("AKIAIOSFODNN7EXAMPLE", "x"),
    ("ASIAY34FZKBOKMUTVV7A", "x"),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "x",
    ),
]:
    add(f"using {token} here", token, "using ")
# schemes
add("Authorization: Bearer abc123def456ghi", "abc123def456ghi", "Authorization: Bearer ")
add("auth Basic dXNlcjpwYXNzd29yZA== sent", "dXNlcjpwYXNzd29yZA==", "auth Basic ")
add("Cookie: sid=abc123; theme=dark", "sid=abc123", "Cookie: ")
add("Set-Cookie: session=xyz789; Path=/", "session=xyz789", "Set-Cookie: ")
add(
    "Authorization: Digest username=x, response=6629fae49393a05397450978507c4ef1",
    "6629fae49393a05397450978507c4ef1",
    "Authorization:",
)
# PEM blocks in one text
add(
    "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\nok",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    "ok",
)
add(
    "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBYr9wN2xm+S3Qz-----END EC PRIVATE KEY-----",
    "MHcCAQEEIBYr9wN2xm",
    "-----END EC PRIVATE KEY-----",
)
add(
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0abcdEFGH1234\n"
    "-----END PGP PRIVATE KEY BLOCK-----",
    "lQOYBF0abcdEFGH1234",
    "-----END PGP PRIVATE KEY BLOCK-----",
)
# single base64 lines (PEM body line by line)
add(
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "",
)
add("    VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK", "VTLw7onLRnrq0", "    ")
add("bwKfBstIs+bMY2Zkp18gnTxK==", "bwKfBstIs+bMY2Zkp18gnTxK", "")
# misc
add("private_key: MIIEvQIBADANBgkqhkiG9w0B end", "MIIEvQIBADANBgkqhkiG9w0B", "end")
add("passwd='quoted pass' next", "quoted pass", "next")
add("refresh_token = 1//0gAbCdEfGh next", "1//0gAbCdEfGh", "next")
add("session_id=abc123xyz path=/tmp", "abc123xyz", "path=/tmp")
add("PGPASSWORD=pgS3cret psql -h db", "pgS3cret", "psql -h db")
add("connect https://admin:hunter2@db.example.com/x now", "hunter2", "@db.example.com/x now")
add("fetch https://s3.example.com/o?X-Amz-Signature=deadbeef done", "deadbeef", "done")
add('credentials="u:p" rest', "u:p", "rest")
add("x-api-key: 0123456789abcdef trace=t1", "0123456789abcdef", "trace=t1")
add("pass\u200bword=zerowidth1 ok", "zerowidth1", "ok")


@pytest.mark.parametrize(("text", "secret", "kept"), SECRETS)
def test_secret_is_masked_in_text(text: str, secret: str, kept: str) -> None:
    out = clean(text, keep_newlines=True)
    assert secret not in out
    assert kept in out
    assert REDACTED in out
    if "\n" not in text:
        one_line = clean(text)
        assert secret not in one_line and kept in one_line


@pytest.mark.parametrize(("text", "secret", "kept"), SECRETS)
def test_secret_is_masked_in_json(text: str, secret: str, kept: str) -> None:
    data = {"message": text, "lines": [text], "nested": {"detail": text}}
    out = redact(data)
    assert secret not in json.dumps(out)
    for value in (out["message"], out["lines"][0], out["nested"]["detail"]):
        assert kept in value and REDACTED in value
    assert data["message"] == text  # the input is not touched


# Ordinary text that reads a bit like a secret: ids, hashes, counters, prose, paths.
LOOKALIKES: list[str] = [
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 merged",
    "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "run 123e4567-e89b-12d3-a456-426614174000 started",
    "123E4567-E89B-12D3-A456-426614174000",
    "run-123e4567-e89b-12d3-a456-426614174000",
    "jobwatch serve --token-file /etc/jobwatch/token",
    "pass --token-file=~/.config/jw/token to the server",
    "psql --password-file PATH -h db",
    "mysql --password-file=/run/secrets/db -u app",
    'token_file = "/home/app/token"',
    'token_env = "GITHUB_TOKEN"',
    "--token-env JOBWATCH_TOKEN",
    "max_tokens=4096",
    "max_tokens: 4096 temperature=0.2",
    "token_count: 12",
    "prompt_tokens=12 total_tokens=40 completion_tokens=28",
    "--max-tokens 1024",
    "the token expired; ask for a new token",
    "wrong password, try again",
    "the secret to a good pipeline is idempotence",
    "press any key to continue",
    "primary key violation on table orders",
    "rotate the API key every 90 days",
    "Token expired, token refresh ok, Basic setup done",
    "password reset email sent",
    "/var/lib/jobwatch/runs/2024/05/out.parquet",
    "C:\\Users\\alice\\jobs\\out.csv",
    "/home/User/data2/File.csv",
    "at 2024-05-01T12:30:00Z and 2024-05-01T12:30:00.123+02:00",
    "2026-11-28 16:46:15,123 INFO start",
    "time 12:30:45 ratio 3:2",
    "v1.2.3",
    "upgraded jobwatch 0.9.12 -> 1.0.0-rc.1+build.5",
    "python 3.11.7 (main, Dec  4 2023, 18:10:11)",
    "job id dGhpcyBpcyBhbiBpZA returned",
    "cursor eyJwYWdlIjoyfQ in the response",
    "sk-learn-compatibility-layer installed",
    "sk-the-lazy-dog-jumps-over",
    "0Xj5jkdfGH93kdlQpwz",
    "7073000000ABCDEfAAB",
    "DailyReport2024A",
    "BuildAndTest2024",
    "ProcessingComplete",
    "Done",
    "author: Alice, key: value, status: FAILED",
    "see https://example.com/docs/page#section",
    "GET http://localhost:8080/api/v1/runs",
    "https://github.com/org/repo/blob/main/README.md#L10-L20",
    "user@example.com opened a ticket",
    "processed 1024 rows in 3.5 s, exit 0",
    "héllo wörld — 日本語 テキスト 🚀✨",
    "docker run -u 1000:1000 image",
    "git push -u origin main",
    "mysql -p app_db",
    "gcc -pthread -pedantic -O2 main.c",
    "mysql -u root -p mydb < dump.sql",
    "PASS=3 FAIL=0 SKIP=1",
    "bypass=true compass=north",
    "SSH_PUBLIC_KEY=ssh-ed25519",
    "SharedAccessKeyName=RootManageSharedAccessKey",
    "secret_name: db-credentials",
    "token_type: bearer",
    "input image: done",
    "stepwise regression finished",
]

# jobwatch's own messages that name tokens, passwords and secrets (from the source,
# with sample values); they must read exactly as written.
JOBWATCH_MESSAGES: list[str] = [
    "missing or wrong token: send the Authorization header, scheme 'Bearer'",
    "jobwatch serve: no token: anyone on this machine can read and abort runs "
    "(set JOBWATCH_TOKEN or --token-file)",
    "cannot read token file /tmp/tok: No such file or directory",
    "token file /tmp/tok is empty",
    "token file /tmp/tok is readable by other users; chmod 600 /tmp/tok",
    "the token is short (12 characters); use at least 16, e.g. `openssl rand -hex 32`",
    "refusing to listen on 0.0.0.0 without a token: anyone who can reach it could read "
    "and abort runs. Set JOBWATCH_TOKEN or pass --token-file FILE (or keep --host 127.0.0.1)",
    "serving 0.0.0.0 over plain HTTP: the token and the runs travel unencrypted; "
    "use --tls-cert/--tls-key or put a TLS proxy in front",
    "jobwatch serve: listening on http://127.0.0.1:8787/api/v1 (source local, token required)",
    "src: http://127.0.0.1:9 refused the token (missing or wrong token: send the "
    "Authorization header, scheme 'Bearer'); check the source's token_env or token_file",
    "x: Matatika rejected the API token (401) while reading jobs; check token_env / token_file",
    "x: no API token; set token_env or token_file in [sources.x]",
    "give only one of token_env, token_file, token (got ['token_env', 'token'])",
    "must not carry credentials; put the token in an environment variable (token_env) "
    "or a file (token_file)",
    "must not have a query string or fragment (tokens never go in URLs)",
    "config.toml holds secrets (sources.x.token) and is readable by other users; "
    "chmod 600 config.toml or move them to token_env / token_file",
    "environment variable GITHUB_TOKEN is not set",
    "The model ran out of output tokens.",
    "bearer token clients must send (default: $JOBWATCH_TOKEN)",
]


@pytest.mark.parametrize("text", LOOKALIKES + JOBWATCH_MESSAGES)
def test_lookalike_is_not_masked(text: str) -> None:
    assert clean(text) == text
    assert redact({"value": text, "items": [text]}) == {"value": text, "items": [text]}


def test_corpus_sizes() -> None:
    assert len({s for _, s, _ in SECRETS}) >= 100
    assert len(set(LOOKALIKES)) >= 50


def test_the_servers_401_message_is_not_over_masked() -> None:
    """``token:`` followed by prose is not a token; followed by a credential it is."""
    said = "missing or wrong token: send the Authorization header, scheme 'Bearer'"
    assert clean(said) == said
    assert clean("token: abc123XYZ") == "token: ***"
    assert clean("token: abc123XYZ rest of line") == "token: *** rest of line"
    assert clean("wrong token: send it again") == "wrong token: send it again"
    assert clean("password: changeme") == "password: ***"  # a value that ends its line
    assert clean('token: "two words"') == 'token: "***"'


# ----------------------------------------------------------------------- PEM, line by line


def _pem_lines(size: int, rng: random.Random) -> list[str]:
    body = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(size))).decode()
    return (
        ["-----BEGIN PRIVATE KEY-----"]
        + [body[i : i + 64] for i in range(0, len(body), 64)]
        + ["-----END PRIVATE KEY-----"]
    )


def test_a_key_logged_one_line_at_a_time_loses_every_full_body_line() -> None:
    """A log stores each line of a PEM block as its own line; every view (the log
    pane, ``jobwatch logs``, the API, a saved log) cleans them one at a time."""
    rng = random.Random(42)
    last_lines = masked_last = 0
    for size in range(1100, 1400, 7):  # RSA and EC keys, PKCS#1 and PKCS#8 sizes
        lines = _pem_lines(size, rng)
        shown = [clean(line) for line in lines]
        assert shown[0].startswith("-----BEGIN PRIVATE KEY-----")
        assert shown[-1] == "-----END PRIVATE KEY-----"
        assert all(out == REDACTED for out in shown[1:-2]), size  # every full line
        if len(lines[-2]) >= 16:
            last_lines += 1
            masked_last += shown[-2] == REDACTED
    # A block's last, shorter line is masked when padded, holding "+" or "/", or
    # random-looking; a rare one that reads like an id stays (see the next test).
    assert masked_last >= last_lines * 0.95


def test_what_cannot_be_told_from_an_id_is_kept() -> None:
    """Known limit of masking one line at a time: a short unpadded line of letters
    and digits may be a key's last line or an id, and ids must stay readable."""
    for text in ("jftFVvRZ", "M1Ri08XWXivi", "0XjAbCdEfGh123456X", "BuildAndTest2024"):
        assert clean(text) == text


def test_last_body_lines_of_a_real_looking_key_are_masked() -> None:
    # the final, shorter lines of PEM blocks: padded, with "+" or "/", or random-looking
    for line in (
        "bwKfBstIs+bMY2Zkp18gnTxK",
        "WuEktw==",
        "M1Ri08XWXivi0aQ=",
        "8Hn3kJx9QpLmN2bVc4Rt",
    ):
        assert clean(line) == REDACTED, line
        assert clean("  " + line) == "  " + REDACTED


def test_openssh_and_mime_width_lines_are_masked() -> None:
    rng = random.Random(7)
    for width in (70, 76):
        line = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(width))).decode()[:width]
        assert clean(line) == REDACTED
