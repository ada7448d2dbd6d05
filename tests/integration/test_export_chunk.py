"""An export chunk against real PostgreSQL: rows written, ids gone since the split skipped,
applied once (the ledger), and the file assembled once (result.json), in a real export directory.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from streams import config
from streams.exports import export_storage
from streams.exports.assemble import finish_export
from streams.exports.storage import part_name
from streams.jobtypes.user_export import UserExport
from streams.models import Chunk
from streams.processing.transaction import apply_once
from streams.sink import jobs as job_registry
from streams.sink.database import driver_url
from streams.sink.tables import create_tables

EXPORT = UserExport()
KEY = b"integration-key"


@pytest.fixture
def engine(schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("SLUICE_EXPORT_DIR", str(tmp_path / "exports"))
    config.settings.cache_clear()
    engine = create_engine(driver_url(schema_url))
    create_tables(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, name, country, age) "
                "SELECT 'u' || i || '@example.com', 'User ' || i, 'DE', 30 "
                "FROM generate_series(1, 30) AS i"
            )
        )
    yield engine
    engine.dispose()
    config.settings.cache_clear()


def chunk(
    job_id: str, index: int, ids: list[Any], options: dict[str, Any], tenant: str = "default"
) -> Chunk:
    return Chunk(
        job_id=job_id,
        job_type=EXPORT.name,
        tenant=tenant,
        chunk_index=index,
        partition=index % 4,
        partition_seq=index // 4,
        options=options,
        records=[
            {"row": 10 * index + n, "fields": {"id": i}, "error": None}
            for n, i in enumerate(ids, 1)
        ],
        json_values=True,
    )


def part_lines(job_id: str, index: int) -> list[str]:
    with export_storage().open(job_id, part_name(index)) as part:
        return gzip.decompress(part.read()).decode().splitlines()


def test_source_streams_the_filtered_ids_in_order(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET age = 70 WHERE id % 3 = 0"))
    options = EXPORT.parse_options({"filter": {"ageMax": 60}})
    assert list(EXPORT.source(engine, "default", options)) == [
        {"id": str(i)} for i in range(1, 31) if i % 3 != 0
    ]


def test_a_chunk_writes_its_rows_skips_vanished_ids_and_applies_once(engine: Engine) -> None:
    job_id = str(uuid.uuid4())
    options = EXPORT.parse_options({"format": "ndjson", "filter": {"country": "DE"}})
    with engine.begin() as connection:  # since the split: one deleted, one no longer matching
        connection.execute(text("DELETE FROM users WHERE id = 5"))
        connection.execute(text("UPDATE users SET country = 'US' WHERE id = 6"))
    first = chunk(job_id, 0, [*range(1, 11), 999, "x"], options)

    result, fresh = apply_once(engine, first)
    assert fresh
    assert (result.records, result.successful, result.skipped, result.failed) == (12, 8, 3, 1)
    assert [e.field for e in result.errors] == ["id"]
    written = [line.split(",")[0] for line in part_lines(job_id, 0)]
    assert written == [f'{{"id":{i}' for i in (1, 2, 3, 4, 7, 8, 9, 10)]

    # redelivered after more changes: the ledger answers, the part is not touched
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE id = 1"))
    before = export_storage().open(job_id, part_name(0)).read()
    again, fresh = apply_once(engine, first)
    assert not fresh and (again.successful, again.skipped) == (8, 3)
    assert export_storage().open(job_id, part_name(0)).read() == before


def test_finishing_assembles_once_and_removes_the_parts(engine: Engine) -> None:
    job_id = str(uuid.uuid4())
    options = EXPORT.parse_options({"format": "json"})
    job_registry.insert_job(engine, job_id, "t", EXPORT.name, options)
    job_registry.record_split(engine, job_id, 30, 3)
    for index in range(3):
        ids = list(range(1 + 10 * index, 11 + 10 * index))
        apply_once(engine, chunk(job_id, index, ids, options))
    storage = export_storage()

    result = finish_export(engine, storage, job_id, "json", 3600, now=1_000)
    assert result["recordCount"] == 30
    assert result["expiresAt"] == "1970-01-01T01:16:40Z"
    assert not any(storage.exists(job_id, part_name(i)) for i in range(3))
    # made again (a crash before its event was published): the same result, nothing copied
    assert finish_export(engine, storage, job_id, "json", 3600, now=2_000) == result
    with storage.open(job_id, "users.json.gz") as file:
        data = file.read()
    assert len(data) == result["bytes"]
    assert [row["id"] for row in json.loads(gzip.decompress(data))] == list(range(1, 31))


def test_another_tenants_users_are_neither_listed_nor_written(engine: Engine) -> None:
    with engine.begin() as connection:  # mallory's users: same emails, same country
        connection.execute(
            text(
                "INSERT INTO users (tenant, email, name, country, age) "
                "SELECT 'mallory', 'u' || i || '@example.com', 'M ' || i, 'DE', 30 "
                "FROM generate_series(1, 5) AS i"
            )
        )
        mallory_ids = list(
            connection.scalars(text("SELECT id FROM users WHERE tenant = 'mallory' ORDER BY id"))
        )
    options = EXPORT.parse_options({"format": "ndjson"})
    assert [r["id"] for r in EXPORT.source(engine, "mallory", options)] == [
        str(i) for i in mallory_ids
    ]
    assert len(list(EXPORT.source(engine, "default", options))) == 30

    # a chunk of mallory's export naming the default tenant's ids writes none of them
    job_id = str(uuid.uuid4())
    result, _ = apply_once(engine, chunk(job_id, 0, [1, 2, mallory_ids[0]], options, "mallory"))
    assert (result.successful, result.skipped) == (1, 2)
    (line,) = part_lines(job_id, 0)
    assert json.loads(line)["id"] == mallory_ids[0] and json.loads(line)["name"] == "M 1"
