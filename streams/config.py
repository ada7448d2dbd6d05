"""Settings from the environment: one frozen object, read once, failing loudly.

Every variable is documented in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from streams.exceptions import ConfigError

DEFAULT_SQLITE_PATH = "sluice.db"


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else raw.strip()


def mask_url(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Settings:
    # Kafka. Empty bootstrap servers means "start or reuse the embedded dev broker".
    bootstrap_servers: str = ""
    app_id: str = "sluice"
    partitions: int = 8
    replication_factor: int = 1
    # Faust group timing: short by default because the dev broker waits the whole rebalance
    # timeout on every join (shared/BROKER.md); raise them on a real cluster.
    rebalance_timeout: float = 4.0
    session_timeout: float = 6.0
    heartbeat_interval: float = 1.0
    # Database: SQLAlchemy URL; a SQLite file when unset.
    database_url: str = field(default="", repr=False)
    # HTTP API served by every worker.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    data_dir: Path = Path(".sluice")
    # Chunk processing.
    writers: int = 2
    batch_chunks: int = 8
    submit_timeout: float = 10.0
    idle_seconds: float = 5.0
    max_inline_bytes: int = 16 * 1024 * 1024
    # Retention: how long a finished job's results and metadata are kept, and how often the
    # periodic task looks for expired ones.
    retain_completed_seconds: int = 7 * 86400
    retain_failed_seconds: int = 30 * 86400
    retention_interval: float = 300.0
    # Exports: where finished files live (shared by every worker), the key signing their
    # download URLs (empty: a key file created once in export_dir), and how long URLs last.
    export_dir: Path = Path(".sluice/exports")
    signing_key: str = field(default="", repr=False)
    export_url_seconds: int = 86400

    @property
    def database_url_masked(self) -> str:
        return mask_url(self.database_url)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in ("database_url", "signing_key")
        )
        key = "***" if self.signing_key else ""
        return f"Settings({shown}, database_url={self.database_url_masked!r}, signing_key={key!r})"


def load_settings() -> Settings:
    """Read the environment into a Settings; raises ConfigError naming a bad variable."""
    return Settings(
        bootstrap_servers=_str("KAFKA_BOOTSTRAP_SERVERS", ""),
        app_id=_str("SLUICE_APP_ID", "sluice"),
        partitions=_int("SLUICE_PARTITIONS", 8, 1, 1024),
        replication_factor=_int("SLUICE_REPLICATION_FACTOR", 1, 1, 16),
        rebalance_timeout=_float("SLUICE_REBALANCE_TIMEOUT", 4.0),
        session_timeout=_float("SLUICE_SESSION_TIMEOUT", 6.0),
        heartbeat_interval=_float("SLUICE_HEARTBEAT_INTERVAL", 1.0),
        database_url=_str("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}"),
        api_host=_str("SLUICE_API_HOST", "127.0.0.1"),
        api_port=_int("SLUICE_API_PORT", 8000, 1, 65535),
        data_dir=Path(_str("SLUICE_DATA_DIR", ".sluice")),
        writers=_int("SLUICE_WRITERS", 2, 1, 64),
        batch_chunks=_int("SLUICE_BATCH_CHUNKS", 8, 1, 256),
        submit_timeout=_float("SLUICE_SUBMIT_TIMEOUT", 10.0),
        idle_seconds=_float("SLUICE_IDLE_SECONDS", 5.0),
        max_inline_bytes=_int("SLUICE_MAX_INLINE_BYTES", 16 * 1024 * 1024, 1024, 1 << 30),
        retain_completed_seconds=_int("SLUICE_RETAIN_COMPLETED_SECONDS", 7 * 86400, 0, 1 << 40),
        retain_failed_seconds=_int("SLUICE_RETAIN_FAILED_SECONDS", 30 * 86400, 0, 1 << 40),
        retention_interval=_float("SLUICE_RETENTION_INTERVAL", 300.0),
        export_dir=Path(
            _str("SLUICE_EXPORT_DIR", str(Path(_str("SLUICE_DATA_DIR", ".sluice")) / "exports"))
        ),
        signing_key=_str("SLUICE_SIGNING_KEY", ""),
        export_url_seconds=_int("SLUICE_EXPORT_URL_SECONDS", 86400, 1, 1 << 31),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
