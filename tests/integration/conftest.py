"""Fixtures of the integration tier: a database URL of each kind Sluice runs on."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh PostgreSQL schema, then a fresh SQLite file: the test runs on both."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("schema_url"))
    return f"sqlite:///{tmp_path / 'sluice.db'}"
