"""The config file's schema: its top level and one pydantic model per source kind.

Kept apart from :mod:`jobwatch.config` so pydantic loads only when there is a file
to validate (or a source kind to build), never on the way to the monitor's first
paint with no config file. Each ``kind`` is one :class:`SourceConfig` subclass
registered in :data:`SOURCE_KINDS`, so a vendor adapter adds its kind with one
decorator and no change here.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobwatch.config import (
    DEFAULTS,
    Config,
    ConfigError,
    ConfigValueError,
    check_url,
    read_token_file,
    readable_by_others,
)
from jobwatch.core.redact import clean, is_secret_key

if TYPE_CHECKING:
    from jobwatch.sources.protocol import SourceBase

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_REFERENCE_SUFFIXES = ("_env", "_file", "_path", "_cmd", "_command")


class SourceConfig(BaseModel):
    """What every kind of source has. Subclasses add their settings and ``build``."""

    # NaN and infinities pass range checks in surprising ways (and TOML has them)
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    KIND: ClassVar[str] = ""

    kind: str
    read_only: bool = False
    refresh: float | None = Field(default=None, ge=0.1, le=86_400)
    """Seconds between polls of this source; unset: the kind's own default (the
    monitor's refresh for jobwatch stores, 15 s for vendor APIs, whose request
    quotas a monitor left open all night must not use up)."""

    def build(self, name: str, *, read_only: bool = False) -> SourceBase:
        """The (not yet opened) :class:`~jobwatch.sources.protocol.Source` it describes."""
        raise NotImplementedError

    def make(self, name: str, *, read_only: bool = False) -> SourceBase:
        """:meth:`build`, with this source's own ``refresh`` as its pace."""
        source = self.build(name, read_only=read_only)
        if self.refresh is not None:
            source.pace = self.refresh
        return source

    def rebase(self, base: Path) -> SourceConfig:
        """Resolve relative paths against the config file's folder."""
        return self

    def check(self) -> list[str]:
        """Warnings about this source that do not stop it from working."""
        return []


S = TypeVar("S", bound=type[SourceConfig])
SOURCE_KINDS: dict[str, type[SourceConfig]] = {}
"""``kind`` → its config class; extended by :func:`register_kind`."""


def register_kind(cls: S) -> S:
    """Class decorator: make ``kind = cls.KIND`` valid in config files."""
    if not cls.KIND:
        raise ValueError(f"{cls.__name__} has no KIND")
    SOURCE_KINDS[cls.KIND] = cls
    return cls


def rebase_path(path: Path, base: Path) -> Path:
    """``path`` as written in the config file, taken relative to the file's folder."""
    path = path.expanduser()
    return path if path.is_absolute() else base / path


@register_kind
class SqliteSourceConfig(SourceConfig):
    """A local jobwatch store file."""

    KIND: ClassVar[str] = "sqlite"

    path: Path

    @field_validator("path")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def rebase(self, base: Path) -> SourceConfig:
        return self.model_copy(update={"path": rebase_path(self.path, base)})

    def build(self, name: str, *, read_only: bool = False) -> SourceBase:
        from jobwatch.sources.local.store import SqliteStore

        read_only = read_only or self.read_only
        return SqliteStore(self.path, name=name, mode="read" if read_only else "write")


class RemoteSourceConfig(SourceConfig):
    """A source reached over HTTP(S) with a token: ``jobwatch serve`` or a vendor API."""

    url: str
    token_env: str | None = None
    token_file: Path | None = None
    token: str | None = Field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @model_validator(mode="after")
    def _one_token(self) -> RemoteSourceConfig:
        given = [k for k in ("token_env", "token_file", "token") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give only one of token_env, token_file, token (got {given})")
        return self

    def rebase(self, base: Path) -> SourceConfig:
        changes: dict[str, Any] = {}
        if self.token_file is not None:
            changes["token_file"] = rebase_path(self.token_file, base)
        if isinstance(self.verify, str):
            changes["verify"] = str(rebase_path(Path(self.verify), base))
        return self.model_copy(update=changes) if changes else self

    def check(self) -> list[str]:
        if self.token_file is not None and readable_by_others(self.token_file):
            return [
                f"token file {self.token_file} is readable by other users; "
                f"chmod 600 {self.token_file}"
            ]
        return []

    def token_loader(self) -> Callable[[], str | None]:
        """Reads the token when the source opens, so a rotated token file is picked
        up by the next reconnect and a missing variable only fails this source."""

        def load() -> str | None:
            if self.token is not None:
                return self.token
            if self.token_file is not None:
                return read_token_file(self.token_file)
            if self.token_env is not None:
                value = os.environ.get(self.token_env, "").strip()
                if not value:
                    raise ConfigError(f"environment variable {self.token_env} is not set")
                return value
            return None

        return load


@register_kind
class JobwatchSourceConfig(RemoteSourceConfig):
    """Another machine's ``jobwatch serve``."""

    KIND: ClassVar[str] = "jobwatch"

    def build(self, name: str, *, read_only: bool = False) -> SourceBase:
        from jobwatch.sources.http.client import HttpSource

        return HttpSource(
            self.url,
            name=name,
            token_loader=self.token_loader(),
            verify=self.verify,
            timeout=self.timeout,
            read_only=read_only or self.read_only,
        )


@register_kind
class PostgresSourceConfig(SourceConfig):
    """The shared PostgreSQL store, beside vendors in one config. ``dsn`` is what
    libpq takes (``postgresql://db/jobs``, ``host=db dbname=jobs``,
    ``service=jobs``) and everything libpq reads comes with it: ``PG*`` variables,
    ``~/.pgpass``, service files. Never a password: a config file is copied and
    shown around; it goes in ``passfile`` (a libpq password file), ``PGPASSFILE``,
    ``PGPASSWORD`` or a service file, as for ``--store``."""

    KIND: ClassVar[str] = "postgres"

    dsn: str
    passfile: Path | None = None

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        from jobwatch.core.errors import UsageError
        from jobwatch.sources.postgres.dsn import check_dsn, is_dsn

        if not is_dsn(value):
            raise ValueError("not a PostgreSQL connection string (postgresql://… or key=value)")
        try:
            return check_dsn(value, where="dsn")
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        except ModuleNotFoundError:  # no postgres extra: building the source says so
            return value.strip()

    @field_validator("passfile")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def rebase(self, base: Path) -> SourceConfig:
        if self.passfile is None:
            return self
        return self.model_copy(update={"passfile": rebase_path(self.passfile, base)})

    def check(self) -> list[str]:
        if self.passfile is not None and readable_by_others(self.passfile):
            # libpq ignores such a file, so the connection would fail without a password
            return [
                f"password file {self.passfile} is readable by other users (libpq ignores "
                f"it); chmod 600 {self.passfile}"
            ]
        return []

    def connection_string(self) -> str:
        """The DSN with ``passfile`` in it (libpq reads the file when it connects)."""
        if self.passfile is None:
            return self.dsn
        from psycopg import conninfo

        return conninfo.make_conninfo(self.dsn, passfile=str(self.passfile))

    def build(self, name: str, *, read_only: bool = False) -> SourceBase:
        from jobwatch.sources.protocol import SourceBase
        from jobwatch.sources.select import store_source

        try:
            dsn = self.connection_string()
        except ModuleNotFoundError:
            dsn = self.dsn  # store_source says which extra is missing
        source = store_source(dsn, read_only=read_only or self.read_only, name=name)
        assert isinstance(source, SourceBase)  # the PostgreSQL store is one
        return source


def _is_name(name: str) -> bool:
    return bool(name) and set(name) <= _NAME_CHARS and not name.startswith("-")


class ConfigFile(BaseModel):
    """The file's top level, validated; :func:`parse` turns it into a ``Config``."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    default_sources: list[str] = Field(default_factory=list)
    refresh: float = Field(default=DEFAULTS.refresh, ge=0.1, le=3600)
    theme: str | None = DEFAULTS.theme
    read_only: bool = DEFAULTS.read_only
    bell: bool = DEFAULTS.bell
    notify: bool = DEFAULTS.notify
    keys: dict[str, Any] = Field(default_factory=dict)
    """Binding id → key; only its shape is checked here (the ids and key names
    belong to the monitor, which warns about a bad entry and ignores it)."""
    columns: list[str] | None = DEFAULTS.columns
    """The monitor's columns, in order (the column chooser writes it)."""
    stuck_after: Any = None
    schedules: Any = None
    hooks: Any = None
    terminal_notify: Any = None
    """Checked by :mod:`jobwatch.config.live_schema` (stuck runs, late jobs, hooks)."""

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: list[str] | None) -> list[str] | None:
        from jobwatch.core.columns import BY_NAME

        unknown = [n for n in value or () if n not in BY_NAME]
        if unknown:
            raise ValueError(
                f"unknown column(s) {', '.join(unknown)} (one of {', '.join(BY_NAME)})"
            )
        return list(dict.fromkeys(value)) if value else None

    @field_validator("sources", mode="before")
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, raw in value.items():
            if not _is_name(str(name)):
                raise ValueError(
                    f"source name {name!r}: use letters, digits, '-', '_' and '.' only"
                )
            if isinstance(raw, SourceConfig):
                out[name] = raw
                continue
            if not isinstance(raw, dict):
                raise ValueError(f"[sources.{name}] must be a table")
            kind = raw.get("kind")
            if kind not in SOURCE_KINDS:
                import jobwatch.sources.vendors  # noqa: F401 - registers the vendor kinds
            if kind not in SOURCE_KINDS:
                known = ", ".join(sorted(SOURCE_KINDS))
                raise ValueError(f"[sources.{name}] kind {kind!r} is not one of: {known}")
            out[name] = SOURCE_KINDS[kind].model_validate(raw)
        return out

    @field_validator("default_sources", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _defaults_exist(self) -> ConfigFile:
        missing = [n for n in self.default_sources if n not in self.sources]
        if missing:
            raise ValueError(f"default_sources names unknown sources: {', '.join(missing)}")
        return self


def _secret_keys(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys holding a credential value (not ``token_env``-style references)."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{prefix}{key}"
            if (
                isinstance(value, str)
                and value
                and is_secret_key(str(key))
                and not str(key).lower().endswith(_REFERENCE_SUFFIXES)
            ):
                yield where
            else:
                yield from _secret_keys(value, where + ".")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _secret_keys(item, f"{prefix}{i}.")


def _describe_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    more = f" (and {len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return "; ".join(problems) + more


def parse(text: str, *, path: Path | None = None) -> Config:
    """Validate TOML text; ``path`` is only used for messages and relative paths."""
    where = str(path) if path else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigValueError(f"{where}: not valid TOML: {exc}") from None
    try:
        checked = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigValueError(f"{where}: {clean(_describe_error(exc))}") from None

    from jobwatch.config.live_schema import LiveFile

    try:
        live = LiveFile.model_validate(
            {k: data[k] for k in LiveFile.model_fields if k in data}
        ).build()
    except ValidationError as exc:
        raise ConfigValueError(f"{where}: {clean(_describe_error(exc))}") from None
    warnings: list[str] = []
    base = path.parent if path else Path.cwd()
    sources = {name: src.rebase(base) for name, src in checked.sources.items()}
    for key in checked.model_extra or {}:
        warnings.append(f"{where}: unknown setting {key!r} (ignored)")
    for name, src in sources.items():
        for key in src.model_extra or {}:
            warnings.append(f"{where}: unknown setting {key!r} in [sources.{name}] (ignored)")
        warnings += src.check()
    keys: dict[str, str] = {}
    for binding, value in checked.keys.items():
        if isinstance(value, str):
            keys[binding] = value
        else:
            warnings.append(f"{where}: [keys] {clean(binding)!r} must be a key name (ignored)")
    secrets = list(_secret_keys(data))
    if secrets and path is not None and readable_by_others(path):
        warnings.append(
            f"{where} holds secrets ({', '.join(secrets)}) and is readable by other users; "
            f"chmod 600 {where} or move them to token_env / token_file"
        )
    return Config(
        sources=sources,
        default_sources=checked.default_sources,
        refresh=checked.refresh,
        theme=checked.theme,
        read_only=checked.read_only,
        bell=checked.bell,
        notify=checked.notify,
        keys=keys,
        columns=checked.columns,
        live=live,
        path=path,
        warnings=warnings,
    )
