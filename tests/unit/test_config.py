"""Settings: one typed, frozen object read from the environment, failing loudly by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.config import load_settings
from streams.exceptions import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("SLUICE_")]:
        monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bootstrap_servers == ""
    assert settings.database_url.get_secret_value() == "sqlite:///sluice.db"
    assert (settings.partitions, settings.writers, settings.api_port) == (8, 2, 8000)
    assert settings.export_dir == Path(".sluice/exports")
    assert settings.api_url == ""  # the CLI then talks to http://127.0.0.1:$SLUICE_API_PORT
    assert settings.dev_broker_port == 9092


def test_variables_are_read_typed_and_empty_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", " broker:9092 ")
    monkeypatch.setenv("SLUICE_PARTITIONS", "12")
    monkeypatch.setenv("SLUICE_SUBMIT_TIMEOUT", "2.5")
    monkeypatch.setenv("SLUICE_DATA_DIR", "/var/sluice")
    monkeypatch.setenv("SLUICE_API_PORT", "")
    settings = load_settings()
    assert settings.bootstrap_servers == "broker:9092"
    assert (settings.partitions, settings.submit_timeout, settings.api_port) == (12, 2.5, 8000)
    assert settings.export_dir == Path("/var/sluice/exports")  # follows the data directory


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SLUICE_PARTITIONS", "0"),
        ("SLUICE_PARTITIONS", "many"),
        ("SLUICE_API_PORT", "70000"),
        ("SLUICE_DEV_BROKER_PORT", "0"),
        ("SLUICE_DEV_BROKER_PORT", "65536"),
        ("SLUICE_DEV_BROKER_PORT", "kafka"),
        ("SLUICE_SUBMIT_TIMEOUT", "soon"),
        ("SLUICE_WRITERS", "1.5"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: .*{value}"):
        load_settings()


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://sluice:hunter2@db/sluice")
    monkeypatch.setenv("SLUICE_SIGNING_KEY", "s3cret-key-" + "x" * 24)
    settings = load_settings()
    shown = settings.shown()
    assert shown["database_url"] == "postgresql://sluice:***@db/sluice"
    assert shown["signing_key"] == "***"
    for text in (repr(settings), str(shown)):
        assert "hunter2" not in text and "s3cret-key" not in text
    assert settings.signing_key.get_secret_value().startswith("s3cret-key")


def test_a_short_signing_key_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_SIGNING_KEY", "a")
    with pytest.raises(ConfigError, match=r"^SLUICE_SIGNING_KEY: .*at least 32") as caught:
        load_settings()
    assert "'a'" not in str(caught.value)


def test_overrides_win_and_settings_are_frozen() -> None:
    settings = load_settings(api_port=9100, bootstrap_servers="k:1")
    assert (settings.api_port, settings.bootstrap_servers) == (9100, "k:1")
    with pytest.raises(ValueError, match="frozen"):
        settings.api_port = 1  # type: ignore[misc]


def test_config_shows_the_bootstrap_address_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DEV_BROKER_PORT", "19092")
    shown = load_settings().shown()
    assert shown["bootstrap_servers"] == "127.0.0.1:19092 (the dev broker of sluice run)"
    assert shown["dev_broker_port"] == 19092
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    assert load_settings().shown()["bootstrap_servers"] == "broker:9092"
