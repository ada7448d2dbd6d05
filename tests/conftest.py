"""Session-wide real parts (broker, PostgreSQL) and per-test isolation (schema, app id)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url

from tests.support.broker import session_broker
from tests.support.postgres import NoDatabase, session_database
from tests.support.schemas import app_id, fresh_schema
from tests.support.workers import Stack

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its tier, the folder it is in: `pytest -m unit`."""
    for item in items:
        tier = next((part for part in item.path.parts if part in TIERS), None)
        if tier is not None:
            item.add_marker(tier)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with session_broker(str(tmp_path_factory.mktemp("broker"))) as (servers, kind):
        print(f"\nKafka for this session: {servers} ({kind})")
        yield servers


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    try:
        with session_database() as (url, kind):
            print(f"\nPostgreSQL for this session: {make_url(url).render_as_string()} ({kind})")
            yield url
    except NoDatabase as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture
def schema_url(database_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, as a URL whose search_path selects it."""
    with fresh_schema(database_url) as url:
        yield url


@pytest.fixture
def db(schema_url: str) -> Iterator[Engine]:
    engine = create_engine(schema_url)
    yield engine
    engine.dispose()


@pytest.fixture
def stack(kafka_bootstrap: str, schema_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, schema_url, app_id(), tmp_path)
    yield s
    s.stop_all()
