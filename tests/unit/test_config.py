"""The TOML config: sources by kind, defaults, warnings, and how the CLI finds it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import run_cli
from jobwatch.config import ConfigError, load_config, parse_config
from jobwatch.config.schema import (
    SOURCE_KINDS,
    JobwatchSourceConfig,
    SourceConfig,
    SqliteSourceConfig,
    register_kind,
)
from jobwatch.core.errors import SourceError
from jobwatch.sources.http.client import HttpSource
from jobwatch.sources.local import SqliteStore
from jobwatch.sources.select import open_sources

EXAMPLE = """
default_sources = ["local", "build-server"]
refresh = 2.5
theme = "nord"
bell = false

[sources.local]
kind = "sqlite"
path = "~/.local/share/jobwatch/runs.db"

[sources.build-server]
kind = "jobwatch"
url = "https://build.example.internal:8787"
token_env = "BUILD_JOBWATCH_TOKEN"
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_example_from_the_issue(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.toml", EXAMPLE))
    assert config.default_sources == ["local", "build-server"]
    assert (config.refresh, config.theme, config.bell, config.read_only) == (
        2.5,
        "nord",
        False,
        False,
    )
    local = config.sources["local"]
    assert isinstance(local, SqliteSourceConfig)
    assert local.path == Path("~/.local/share/jobwatch/runs.db").expanduser()
    remote = config.sources["build-server"]
    assert isinstance(remote, JobwatchSourceConfig)
    assert remote.verify is True and remote.timeout == 10.0
    assert config.warnings == []  # token_env is a reference, not a secret

    built = open_sources(config, [])
    assert [s.name for s in built] == ["local", "build-server"]
    assert isinstance(built[0], SqliteStore) and isinstance(built[1], HttpSource)


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config()  # XDG_CONFIG_HOME points at an empty folder
    assert config.sources == {} and config.refresh == 1.0 and config.bell and config.path is None
    with pytest.raises(ConfigError, match="no config file at"):
        load_config(tmp_path / "missing.toml")


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "elsewhere.toml", "refresh = 3\n")
    monkeypatch.setenv("JOBWATCH_CONFIG", str(path))
    assert load_config().refresh == 3
    assert load_config(write(tmp_path / "given.toml", "refresh = 4\n")).refresh == 4  # wins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refresh = [", "not valid TOML"),
        ("refresh = 0", "refresh"),
        ('default_sources = ["nope"]', "unknown sources: nope"),
        ('[sources.x]\nkind = "ftp"\n', "kind 'ftp' is not one of"),
        (
            '[sources.x]\nkind = "jobwatch"\nurl = "https://u:pw@h:1"\n',
            "must not carry credentials",
        ),
        ('[sources.x]\nkind = "jobwatch"\nurl = "https://h/?token=abc"\n', "query string"),
        ('[sources.x]\nkind = "jobwatch"\nurl = "ftp://h"\n', "http:// or https://"),
        ('[sources.x]\nkind = "sqlite"\n', "path"),
        ('[sources."bad name"]\nkind = "sqlite"\npath = "a"\n', "source name"),
        (
            '[sources.x]\nkind = "jobwatch"\nurl = "https://h"\n'
            'token_env = "A"\ntoken_file = "f"\n',
            "only one of",
        ),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.toml", text))


def test_unknown_settings_are_warned_about(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "c.toml",
            'refrsh = 2\n[sources.a]\nkind = "sqlite"\npath = "a.db"\npth = "x"\n',
        )
    )
    assert any("'refrsh'" in w for w in config.warnings)
    assert any("'pth' in [sources.a]" in w for w in config.warnings)


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "c.toml",
            '[sources.a]\nkind = "sqlite"\npath = "a.db"\n'
            '[sources.b]\nkind = "jobwatch"\n'
            'url = "http://127.0.0.1:1"\n'
            'token_file = "tok"\n',
        )
    )
    assert config.sources["a"].path == tmp_path / "a.db"  # type: ignore[attr-defined]
    assert config.sources["b"].token_file == tmp_path / "tok"  # type: ignore[attr-defined]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_secrets_in_a_readable_file_get_a_warning(tmp_path: Path) -> None:
    text = '[sources.b]\nkind = "jobwatch"\nurl = "http://127.0.0.1:1"\ntoken = "s3cr3t-value"\n'
    private = load_config(write(tmp_path / "private.toml", text, 0o600))
    assert private.warnings == []
    shared = load_config(write(tmp_path / "shared.toml", text, 0o644))
    assert len(shared.warnings) == 1
    assert "sources.b.token" in shared.warnings[0] and "chmod 600" in shared.warnings[0]
    assert "s3cr3t-value" not in shared.warnings[0]
    no_secret = load_config(write(tmp_path / "plain.toml", EXAMPLE, 0o644))
    assert no_secret.warnings == []

    token_file = write(tmp_path / "tok", "abc\n", 0o644)
    ref = load_config(
        write(
            tmp_path / "ref.toml",
            '[sources.b]\nkind = "jobwatch"\n'
            f'url = "http://127.0.0.1:1"\ntoken_file = "{token_file}"\n',
        )
    )
    assert any("token file" in w and "readable by other users" in w for w in ref.warnings)


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_cli_prints_config_warnings_on_stderr(tmp_path: Path, store_path: Path) -> None:
    text = '[sources.b]\nkind = "jobwatch"\nurl = "http://127.0.0.1:1"\ntoken = "s3cr3t-value"\n'
    config = write(tmp_path / "shared.toml", text, 0o644)
    result = run_cli(store_path, "--config", str(config), "list")
    assert "readable by other users" in result.stderr and "s3cr3t" not in result.stderr


async def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = '[sources.b]\nkind = "jobwatch"\nurl = "http://127.0.0.1:9"\n'
    missing = load_config(write(tmp_path / "a.toml", base + 'token_env = "MY_TOKEN"\n'))
    source = open_sources(missing, ["b"])[0]
    with pytest.raises(SourceError, match="MY_TOKEN is not set"):
        await source.open()  # fails this source only, when it opens
    monkeypatch.setenv("MY_TOKEN", "tok-from-env")
    loader = missing.sources["b"].token_loader()  # type: ignore[attr-defined]
    assert loader() == "tok-from-env"
    token_file = write(tmp_path / "tok", "tok-from-file\n")
    from_file = load_config(write(tmp_path / "f.toml", base + f'token_file = "{token_file}"\n'))
    assert from_file.sources["b"].token_loader()() == "tok-from-file"  # type: ignore[attr-defined]
    assert "tok-from" not in repr(open_sources(from_file, ["b"])[0])


def test_read_only_everywhere(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", "read_only = true\n" + EXAMPLE))
    assert all(s.read_only for s in open_sources(config, []))


def test_a_new_kind_plugs_in_without_touching_the_loader() -> None:
    @register_kind
    class EchoConfig(SourceConfig):
        KIND: ClassVar[str] = "echo-test"
        greeting: str

    try:
        config = parse_config('[sources.e]\nkind = "echo-test"\ngreeting = "hi"\n')
        assert isinstance(config.sources["e"], EchoConfig)
        assert config.sources["e"].greeting == "hi"
    finally:
        SOURCE_KINDS.pop("echo-test")


def test_unknown_source_names_and_tokens_on_argv(store_path: Path) -> None:
    result = run_cli(store_path, "show", "x", "--source", "nope")
    assert result.returncode == 1
    assert "unknown source 'nope'" in result.stderr
    assert "--token" not in run_cli(store_path, "list", "--help").stdout


def test_per_source_refresh_paces_that_source(tmp_path: Path) -> None:
    from jobwatch.sources.select import source_from_spec
    from jobwatch.sources.vendors.modzy import ModzySource

    config = parse_config(
        f"""
[sources.fast]
kind = "sqlite"
path = "{tmp_path / "a.db"}"
refresh = 30

[sources.models]
kind = "modzy"
url = "https://modzy.example.internal"
token_env = "MODZY_KEY"
""",
        path=tmp_path / "config.toml",
    )
    assert source_from_spec("fast", config).pace == 30
    models = source_from_spec("models", config)
    assert isinstance(models, ModzySource) and models.pace == 15.0
    with pytest.raises(ConfigError, match="refresh"):
        parse_config('[sources.x]\nkind = "sqlite"\npath = "x.db"\nrefresh = 0\n')


def test_notify_and_a_keys_table_are_settings() -> None:
    """``[keys]`` was rejected as an unknown setting; now it is read (its ids and key
    names are checked by the monitor) and a value that is not a key is named."""
    config = parse_config('notify = false\n[keys]\n"run.abort" = "ctrl+a"\n"log.save" = 5\n')
    assert config.notify is False and config.bell is True
    assert config.keys == {"run.abort": "ctrl+a"}
    assert config.warnings == ["config: [keys] 'log.save' must be a key name (ignored)"]
    assert parse_config("").notify is True and parse_config("").keys == {}
