"""Settings from the environment: one typed, frozen object, the only reader of the environment.

Each field is one variable (`SLUICE_<NAME>`, and `KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`),
documented in the README's configuration table: keep the two in step. An empty variable means
its default; a malformed one is a ConfigError naming the variable. Secrets are `SecretStr`:
they never show in a repr, a log line or `sluice config`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.access import key_problem
from streams.exceptions import ConfigError

DEFAULT_SQLITE_URL = "sqlite:///sluice.db"
DEV_BROKER_HOST = "127.0.0.1"  # where `sluice run` starts the dev broker, and what it advertises
MIN_SIGNING_KEY_CHARS = 32
CHECKOUT_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def mask_url(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLUICE_",
        env_ignore_empty=True,
        str_strip_whitespace=True,
        frozen=True,
        populate_by_name=True,
        extra="forbid",
    )

    # Kafka. Empty bootstrap servers: `sluice run` starts the embedded dev broker on
    # DEV_BROKER_HOST:dev_broker_port, a fixed port so that upstream clients can be pointed at it.
    bootstrap_servers: str = Field("", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    dev_broker_port: int = Field(9092, ge=1, le=65535)
    app_id: str = "sluice"
    partitions: int = Field(8, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)
    # Faust group timing: short by default because the dev broker waits the whole rebalance
    # timeout on every join (shared/BROKER.md); raise them on a real cluster.
    rebalance_timeout: float = Field(4.0, gt=0)
    session_timeout: float = Field(6.0, gt=0)
    heartbeat_interval: float = Field(1.0, gt=0)
    # Database: SQLAlchemy URL; a SQLite file when unset.
    database_url: SecretStr = Field(SecretStr(DEFAULT_SQLITE_URL), validation_alias="DATABASE_URL")
    # Every PostgreSQL session Sluice opens: how long a statement may run, a lock be waited for
    # and a transaction sit idle before the server ends it (a client that vanished leaves no
    # locks behind for longer), TCP keepalives on both ends, and how long a connection may
    # take. The worker abandons a connection that gives no answer for db_statement_timeout +
    # 10 s (docs/operations.md).
    db_statement_timeout: float = Field(120.0, gt=0)
    db_lock_timeout: float = Field(30.0, gt=0)
    db_idle_in_transaction_timeout: float = Field(60.0, gt=0)
    db_connect_timeout: int = Field(10, ge=1, le=3600)
    db_keepalives_idle: int = Field(10, ge=1, le=3600)
    db_keepalives_interval: int = Field(5, ge=1, le=3600)
    db_keepalives_count: int = Field(3, ge=1, le=100)
    # HTTP API served by every worker, and the one the CLI talks to (default: this host's).
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_url: str = ""
    # API keys (docs/security.md): the key the CLI sends (else the one in config_file, which
    # `sluice keys create` writes), and a development key every worker makes sure exists.
    api_key: SecretStr = SecretStr("")
    config_file: Path = Field(default_factory=lambda: _config_home() / "sluice" / "config.json")
    dev_api_key: SecretStr = SecretStr("")
    # The tenants records on the input topics may belong to, comma-separated (the first: that
    # of records without a sluice-tenant header); also those an unmarked chunk on the internal
    # chunk topic may name (streams/wire/origin.py).
    upstream_tenants: str = "default"
    # seconds a batch's records wait for its begin message before it opens with default options
    batch_wait: float = Field(10.0, ge=0, le=600)
    # seconds after its UTC day ends before a standing job may close (records of the day still
    # on their way, producer clocks a little behind; docs/upstream.md)
    standing_grace: float = Field(900.0, ge=0, le=7 * 86400)
    # A Confluent schema registry (http://host:8081) whose ids frame Avro values on input
    # topics (00 + 4-byte id + body); empty: such values fail, Avro single-object still works.
    schema_registry_url: str = ""
    data_dir: Path = Path(".sluice")
    # How `sluice run` and `sluice worker` log (streams/logs.py): human lines or JSON objects.
    log_format: Literal["human", "json"] = "human"
    # Chunk processing. A writer process applying one chunk for longer than chunk_timeout is
    # stopped and the chunk retried; chunks in flight (and partitions without progress) for
    # longer than stall_seconds are logged and counted in metrics.
    writers: int = Field(2, ge=1, le=64)
    chunk_timeout: float = Field(180.0, gt=0)
    stall_seconds: float = Field(60.0, gt=0)
    batch_chunks: int = Field(8, ge=1, le=256)
    submit_timeout: float = Field(10.0, gt=0)
    idle_seconds: float = Field(5.0, ge=0)
    # What one request may send; past a limit the answer is a 413 (or 400) naming it. Bytes
    # count after a gzip or deflate body is inflated.
    max_inline_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=1 << 30)
    max_upload_bytes: int = Field(1 << 30, ge=1024, le=1 << 40)
    max_records: int = Field(10_000_000, ge=1, le=1 << 40)
    max_columns: int = Field(200, ge=1, le=100_000)
    max_record_chars: int = Field(1 << 20, ge=256, le=1 << 30)
    max_json_depth: int = Field(32, ge=2, le=1000)
    max_form_parts: int = Field(64, ge=2, le=10_000)
    max_field_bytes: int = Field(64 * 1024, ge=64, le=1 << 24)
    body_timeout: float = Field(60.0, gt=0)
    header_timeout: float = Field(30.0, gt=0)
    # Retention: how long a finished job's results and metadata are kept, and how often the
    # periodic task looks for expired ones.
    retain_completed_seconds: int = Field(7 * 86400, ge=0, le=1 << 40)
    retain_failed_seconds: int = Field(30 * 86400, ge=0, le=1 << 40)
    retention_interval: float = Field(300.0, gt=0)
    # Exports: where finished files live (shared by every worker; default: data_dir/exports),
    # the key signing their download URLs (empty: a key file created once in export_dir), and
    # how long URLs last.
    export_dir: Path = Path(".sluice/exports")
    signing_key: SecretStr = SecretStr("")  # empty, or at least 32 characters
    export_url_seconds: int = Field(86400, ge=1, le=1 << 31)
    schema_dir: Path = CHECKOUT_SCHEMAS

    @model_validator(mode="before")
    @classmethod
    def _exports_under_data_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("export_dir"):
            data["export_dir"] = Path(data.get("data_dir") or ".sluice") / "exports"
        return data

    @field_validator("dev_api_key", "api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr) -> SecretStr:
        problem = key_problem(key.get_secret_value()) if key.get_secret_value() else None
        if problem is not None:
            raise ValueError(problem)
        return key

    @field_validator("signing_key")
    @classmethod
    def _strong_signing_key(cls, key: SecretStr) -> SecretStr:
        if key.get_secret_value() and len(key.get_secret_value()) < MIN_SIGNING_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY_CHARS} characters (or unset: a random key "
                "is created in the export directory)"
            )
        return key

    @property
    def upstream_default_tenant(self) -> str:
        """The tenant of input messages without a sluice-tenant header: the first listed."""
        names = [name.strip() for name in self.upstream_tenants.split(",") if name.strip()]
        return names[0] if names else ""

    @property
    def upstream_tenant_names(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.upstream_tenants.split(",") if name.strip())

    @property
    def dev_broker_servers(self) -> str:
        """The bootstrap address of the dev broker `sluice run` starts."""
        return f"{DEV_BROKER_HOST}:{self.dev_broker_port}"

    @property
    def database_url_masked(self) -> str:
        return mask_url(self.database_url.get_secret_value())

    def shown(self) -> dict[str, Any]:
        """Every setting as `sluice config` prints it: secrets masked."""
        values = self.model_dump()
        if not self.bootstrap_servers:
            dev = f"{self.dev_broker_servers} (the dev broker of sluice run)"
            values["bootstrap_servers"] = dev
        values["database_url"] = self.database_url_masked
        for secret in ("signing_key", "api_key", "dev_api_key"):
            values[secret] = "***" if getattr(self, secret).get_secret_value() else ""
        return values


SECRETS = ("DATABASE_URL", "SLUICE_SIGNING_KEY", "SLUICE_API_KEY", "SLUICE_DEV_API_KEY")


def _config_home() -> Path:
    """Where per-user configuration lives: $XDG_CONFIG_HOME, else ~/.config."""
    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else Path.home() / ".config"


def _variable(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"SLUICE_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and `overrides`, which win) into Settings; raises ConfigError
    naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        name = _variable(field) if field in Settings.model_fields else field
        shown = "(hidden)" if name in SECRETS else repr(error.get("input"))
        raise ConfigError(f"{name}: {error['msg']}, got {shown}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings, read once (writer processes read their own environment)."""
    return load_settings()
