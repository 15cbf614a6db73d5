"""Every ``PATCHLINE_*`` setting of the server and the command line, read and checked once.

The command line builds one ``Settings`` at start (``Settings.from_env(os.environ)``) and
passes it down; tests build one from a dict. An invalid value is a ``ConfigError`` naming
the variable. README.md's "Settings" table is ``markdown_rows()``'s output.

Key passphrases (``PATCHLINE_PASSPHRASE_<ROLE>``, ``PATCHLINE_PASSPHRASE``) are not
settings: ``repository.passphrases.PassphraseSource`` reads them when a key is opened and
keeps them nowhere else, so no settings object, repr or error message can carry one. The
enrollment token is a setting (the server compares it on every enrollment) and is held as
a ``SecretStr``, shown as ``**********``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasGenerator, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from patchline.actions import Action, parse_actions
from patchline.errors import ConfigError
from patchline.store.db import default_url

PREFIX = "PATCHLINE_"

#: scrypt cost (log2 of N) for new key files: 2**17 with r=8 is OWASP's recommendation.
DEFAULT_KDF_LOG2N = 17


def _variable(field_name: str) -> str:
    return PREFIX + field_name.upper()


class Settings(BaseSettings):
    """What Patchline reads from ``PATCHLINE_*`` variables; each field's alias is its variable.

    ``Settings(field=value, ...)`` takes values as given (no environment is read);
    ``Settings.from_env(environ)`` reads them from an environment.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_variable),
    )

    home: Path = Field(
        default=Path("."),
        description="the data directory: repository, keys, director, SQLite file "
        "(`--home` overrides it)",
    )
    kdf_log2n: int = Field(
        default=DEFAULT_KDF_LOG2N,
        ge=10,
        le=22,
        validation_alias="PATCHLINE_KEY_KDF_LOG2N",
        description="scrypt cost (log2 of N) for newly written key files, 10 to 22",
    )
    database_url: str | None = Field(
        default=None,
        description="the server's database (SQLAlchemy URL, e.g. `postgresql+psycopg://...`); "
        "unset: `sqlite:///HOME/patchline.db`",
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="the address `patchline serve` binds"
    )
    port: int = Field(
        default=8000, ge=1, le=65535, description="the port `patchline serve` listens on"
    )
    enrollment_token: SecretStr | None = Field(
        default=None,
        description="the token devices present to enroll, 16 characters or more "
        "(unset: enrollment closed; also `agent enroll --token`'s default)",
    )
    public_url: str | None = Field(
        default=None,
        description="the http(s) URL devices reach the server at; unset: `http://HOST:PORT`",
    )
    mirrors: tuple[str, ...] = Field(
        default=(),
        description="comma-separated image repository URLs (http, https, file) handed to "
        "devices, in order; unset: the server's own `/repository`",
    )
    serve_repository: bool = Field(
        default=True,
        description="whether the server serves the public tree at `/repository` "
        "(`0`/`false` when nginx, a CDN or an object store does)",
    )
    credential_recheck_seconds: float = Field(
        default=10.0,
        ge=0,
        allow_inf_nan=False,
        description="how often at most a device credential that misses the cache is checked "
        "in the database again (re-enrollment through another process)",
    )
    device_cache_size: int = Field(
        default=500_000,
        ge=1,
        description="devices a server process keeps in memory: their records and their last "
        "decisions and signed answers, at most this many of each (about 2.9 KiB per device "
        "measured; bench/RESULTS.md)",
    )
    api_max_body_bytes: int = Field(
        default=1 << 20, ge=1, description="largest management API JSON body; 413 past it"
    )
    api_max_upload_bytes: int = Field(
        default=8 << 30, ge=1, description="largest image upload (POST /api/releases); 413 past it"
    )
    api_requests_per_minute_per_token: int = Field(
        default=1200,
        ge=1,
        description="management API requests a token may make a minute per process",
    )
    api_requests_per_minute_per_address: int = Field(
        default=3000,
        ge=1,
        description="management API requests an address may make a minute per process",
    )
    api_failed_signins_per_minute: int = Field(
        default=10,
        ge=1,
        description="failed sign-ins an address may make a minute before it gets 429",
    )
    enrollment_region: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9][A-Z0-9-]{1,15}$",
        description="binds the enrollment token to a region: devices enrolled with it get this "
        "region whatever they say (a differing one is kept as a flagged claim); unset: the "
        "region in the enrollment request",
    )
    enrollment_deployed_on: date | None = Field(
        default=None,
        description="binds the enrollment token to a deployment date (YYYY-MM-DD); unset: the "
        "date in the enrollment request",
    )
    trust_claimed_region: bool = Field(
        default=False,
        description="whether the region a check-in claims becomes the device's region "
        "(audited); off: claims are recorded and flagged only",
    )
    ddi_tenant: str = Field(
        default="DEFAULT",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="the hawkBit tenant the DDI API answers under "
        "(`/TENANT/controller/v1/...`; `docs/ddi.md`)",
    )
    ddi_gateway_token: SecretStr | None = Field(
        default=None,
        description="the hawkBit gateway token (`Authorization: GatewayToken ...`) that acts "
        "for every DDI controller, 16 characters or more; unset: none works",
    )
    ddi_anonymous: bool = Field(
        default=False,
        description="whether DDI controllers may poll, download and report with no token "
        "(hawkBit's anonymous access); off: a target or gateway token is required",
    )
    ddi_poll_seconds: int = Field(
        default=300,
        ge=1,
        le=86399,
        description="how long DDI controllers sleep between polls (`config.polling.sleep`)",
    )
    two_person_actions: tuple[str, ...] = Field(
        default=(),
        description="comma-separated actions that need a second person to approve "
        "(`rule.create`, `rule.amend`, `release.publish-under-rules`, `rollout.start`, "
        "`rollout.widen`; `docs/two-person-rule.md`); unset: none",
    )
    webhook_max_attempts: int = Field(
        default=12, ge=1, le=100, description="attempts to deliver a webhook before it is failed"
    )
    webhook_retry_base_seconds: float = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="wait after a webhook's first failed attempt; doubles each time, jittered",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        allow_inf_nan=False,
        description="longest wait between two attempts to deliver a webhook",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="how long a webhook receiver has to answer one attempt",
    )
    simulated_clock_file: Path | None = Field(
        default=None,
        description="simulations only: the server tells time from this file, which "
        "`patchline simulate` moves (`docs/simulate.md`); unset: the machine's clock",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: the environment is read by ``from_env`` alone."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (``overrides``, by field name, win); raises
        ConfigError naming each invalid variable and what is wrong with it."""
        given = {variable_name(name): value for name, value in overrides.items()}
        return cls._checked({**EnvironSource(cls, environ)(), **given})

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (by field name), checked as ``from_env`` checks."""
        values = {**dict(self), **changes}
        return self._checked({variable_name(name): value for name, value in values.items()})

    @classmethod
    def _checked(cls, values: dict[str, Any]) -> Settings:
        """``values`` (by variable) as settings, or one ConfigError naming each bad one."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            raise ConfigError(
                f"invalid setting: {problems}",
                hint="fix or unset the variable (README.md, Settings, lists each one)",
            ) from None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                make_url(value)
            except ArgumentError:
                # The value is not repeated: a database URL may hold a password.
                raise ValueError("is not a database URL (dialect+driver://...)") from None
        return value

    @field_validator("enrollment_token", "ddi_gateway_token")
    @classmethod
    def _enrollment_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("http", "https"))

    @field_validator("mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(_url(str(m), ("http", "https", "file")) for m in value)
        return value

    @field_validator("two_person_actions", mode="before")
    @classmethod
    def _two_person_actions(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set | frozenset):
            return tuple(sorted(a.value for a in parse_actions([str(v) for v in value])))
        return value

    def second_person_actions(self) -> frozenset[Action]:
        """The actions held for a second person's approval."""
        return parse_actions(list(self.two_person_actions))

    def server_database_url(self) -> str:
        """The database the server and the CLI use: ``database_url`` or the home's SQLite."""
        return self.database_url or default_url(self.home)

    def server_public_url(self) -> str:
        """The URL devices reach the server at: ``public_url`` or ``http://host:port``."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def server_mirrors(self) -> tuple[str, ...]:
        """The mirrors handed to devices: ``mirrors``, or the server's own ``/repository``
        when it serves it, else none."""
        if self.mirrors or not self.serve_repository:
            return self.mirrors
        return (f"{self.server_public_url()}/repository",)


class EnvironSource(PydanticBaseSettingsSource):
    """Each field's raw string from ``PATCHLINE_<FIELD>`` in one mapping, keyed by variable
    (so errors name it); lists are comma-separated, not JSON; an empty value is unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The raw value of ``field``, its variable's name, and False (never JSON)."""
        name = variable_name(field_name)
        return self._environ.get(name) or None, name, False

    def __call__(self) -> dict[str, Any]:
        """The set variables, by name."""
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[name] = value
        return values


def variable_name(field_name: str) -> str:
    """The environment variable of a ``Settings`` field."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else _variable(field_name)


def markdown_rows() -> list[str]:
    """README.md's Settings table rows: variable, default, meaning; one per field."""
    rows = []
    for field_name, field in Settings.model_fields.items():
        default = field.default
        if default is None or default == ():
            shown = "unset"
        elif isinstance(default, bool):
            shown = "`1`" if default else "`0`"
        else:
            shown = f"`{default}`"
        rows.append(f"| `{variable_name(field_name)}` | {shown} | {field.description} |")
    return rows


def _url(value: str, schemes: tuple[str, ...]) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"{value!r} is not a {'/'.join(schemes)} URL")
    if parts.scheme != "file" and not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"{value!r} has a port that is not a number") from None
    return value


def _problem(error: ErrorDetails) -> str:
    """``VARIABLE: what is wrong`` (the value itself is not repeated by pydantic's own
    messages, and ours repeat it only for URLs)."""
    name = str(error["loc"][0]) if error["loc"] else "?"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}: {message[0].lower()}{message[1:]}"
