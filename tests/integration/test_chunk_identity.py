"""A chunk's identity against real PostgreSQL, in-process: the ledger tells a redelivery (or a
replay) from another chunk reusing its (job, chunk index); ids that do not fit the ledger are
poison before any database work; a record whose values do not match the columns fails alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, text

from streams.models import Chunk
from streams.processing.policy import DeadLetter, decide
from streams.processing.writer import Applied, ApplyFailed, apply_raw
from streams.sink.database import make_engine
from streams.sink.results import record_dead_lettered
from streams.sink.tables import create_tables
from streams.wire.chunks import encode_chunk
from streams.wire.codec import CHUNK, codec

OPTIONS = {"chunkSize": 100, "retryAttempts": 3, "validate": True, "stopOnError": False}


@pytest.fixture
def engine(schema_url: str) -> Iterator[Engine]:
    engine = make_engine(schema_url, pool_size=1)  # creates Sluice's tables in the schema
    yield engine
    engine.dispose()


def a_chunk(job_id: str, *emails: str, first_row: int = 1) -> Chunk:
    records = [
        {"row": row, "fields": {"email": email, "name": f"User {row}"}, "error": None}
        for row, email in enumerate(emails, first_row)
    ]
    return Chunk(job_id, "user-import", "t", 0, 2, 0, OPTIONS, records)


def query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def ledger_of(engine: Engine, job_id: str) -> list[Any]:
    return query(
        engine,
        "SELECT chunk_index, records, successful, failed FROM sluice_chunks WHERE job_id = :j",
        j=job_id,
    )


def test_a_reused_pair_with_other_content_is_dead_lettered_and_the_first_outcome_stands(
    engine: Engine,
) -> None:
    job_id = str(uuid.uuid4())
    first = apply_raw(encode_chunk(a_chunk(job_id, "a@example.com", "b@example.com")), engine)
    assert isinstance(first, Applied) and first.fresh
    other = encode_chunk(a_chunk(job_id, "mallet@example.com"))
    with pytest.raises(ApplyFailed) as caught:
        apply_raw(other, engine)
    failure = caught.value.failure
    assert failure.error_class == "ChunkConflict"
    assert f"chunk 0 of job {job_id} was already applied with different content" in str(failure)
    assert (failure.reason, failure.retryable, failure.counts_in_job) == ("poison", False, False)
    assert isinstance(decide(failure, 1, 3), DeadLetter)  # at once, no retry
    assert caught.value.info is not None and caught.value.info.job_id == job_id  # for its headers
    assert ledger_of(engine, job_id) == [(0, 2, 2, 0)]
    assert query(engine, "SELECT email FROM users ORDER BY email") == [
        ("a@example.com",),
        ("b@example.com",),
    ]
    assert query(engine, "SELECT count(*) FROM sluice_results WHERE job_id = :j", j=job_id) == [
        (2,)
    ]


def test_a_redelivery_and_a_replay_with_a_bumped_attempt_get_the_ledgers_outcome(
    engine: Engine,
) -> None:
    job_id = str(uuid.uuid4())
    chunk = a_chunk(job_id, "c@example.com", "not-an-email")
    data = encode_chunk(chunk, submitted_at_ms=1_000)
    first = apply_raw(data, engine)
    assert isinstance(first, Applied) and first.fresh
    resends = (data, encode_chunk(replace(chunk, attempt=2), submitted_at_ms=99_000))
    for resent in resends:
        again = apply_raw(resent, engine)
        assert isinstance(again, Applied) and not again.fresh
        assert (again.result.successful, again.result.failed) == (1, 1)
    digest = query(engine, "SELECT digest FROM sluice_chunks WHERE job_id = :j", j=job_id)
    assert len(digest[0][0]) == 64


def test_a_ledger_row_from_before_digests_answers_any_chunk_of_its_pair(engine: Engine) -> None:
    """Rows written before the digest column keep the old behaviour: the stored outcome."""
    job_id = str(uuid.uuid4())
    assert isinstance(apply_raw(encode_chunk(a_chunk(job_id, "d@example.com")), engine), Applied)
    with engine.begin() as connection:
        connection.execute(text("UPDATE sluice_chunks SET digest = NULL"))
    again = apply_raw(encode_chunk(a_chunk(job_id, "other@example.com")), engine)
    assert isinstance(again, Applied) and not again.fresh
    assert query(engine, "SELECT email FROM users") == [("d@example.com",)]


def test_a_ledger_without_the_digest_column_gets_it(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE sluice_chunks DROP COLUMN digest"))
    create_tables(engine)
    columns = query(
        engine,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'sluice_chunks' AND column_name = 'digest' "
        "AND table_schema = current_schema()",
    )
    assert columns == [("digest",)]


def framed(**overrides: Any) -> bytes:
    record = {
        "jobId": str(uuid.uuid4()),
        "jobType": "user-import",
        "tenant": "t",
        "chunkIndex": 0,
        "partition": 0,
        "partitionSeq": 0,
        "options": json.dumps(OPTIONS),
        "records": [{"row": 1, "values": ["e@example.com", "Eve"]}],
        "columns": ["email", "name"],
        **overrides,
    }
    return codec().encode(CHUNK, record)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jobId", "5b0c5d1e-7f3a-4c2e-9d8b-1a2b3c4d5e6f-extra-id"),
        ("chunkIndex", -1),
        ("partitionSeq", 2**31),
        ("tenant", "a" * 65),
    ],
)
def test_ids_that_do_not_fit_are_poison_before_any_database_work(
    engine: Engine, field: str, value: object
) -> None:
    if field == "jobId":
        assert len(str(value)) == 45
    with pytest.raises(ApplyFailed) as caught:
        apply_raw(framed(**{field: value}), engine)
    failure = caught.value.failure
    assert failure.reason == "poison" and not failure.retryable
    assert failure.message.startswith(f"{field} ")
    assert caught.value.info is None  # counted in no job: nothing names one that fits
    assert query(engine, "SELECT count(*) FROM sluice_chunks") == [(0,)]
    assert query(engine, "SELECT count(*) FROM users") == [(0,)]


def test_a_record_with_the_wrong_field_count_fails_alone(engine: Engine) -> None:
    records = [
        {"row": 7, "values": ["f@example.com", "Fay"]},
        {"row": 8, "values": ["g@example.com", "Gus", "GB"]},
        {"row": 9, "values": ["h@example.com", "Hal"]},
    ]
    data = framed(records=records)
    applied = apply_raw(data, engine)
    assert isinstance(applied, Applied) and applied.fresh
    result = applied.result
    assert (result.records, result.successful, result.failed) == (3, 2, 1)
    reason = "record has 3 values, the chunk's columns are 2"
    assert [(e.row, e.reason) for e in result.errors] == [(8, reason)]
    assert query(engine, "SELECT email FROM users ORDER BY email") == [
        ("f@example.com",),
        ("h@example.com",),
    ]
    failed = query(engine, "SELECT row_no, reason FROM sluice_results WHERE outcome = 'failed'")
    assert failed == [(8, reason)]


def test_a_chunk_repeating_a_row_is_poison_counted_in_its_job(engine: Engine) -> None:
    job_id = str(uuid.uuid4())
    data = encode_chunk(
        replace(
            a_chunk(job_id, "i@example.com", "j@example.com"),
            records=[
                {"row": 3, "fields": {"email": "i@example.com", "name": "I"}, "error": None},
                {"row": 3, "fields": {"email": "j@example.com", "name": "J"}, "error": None},
            ],
        )
    )
    with pytest.raises(ApplyFailed) as caught:
        apply_raw(data, engine)
    assert caught.value.failure.reason == "poison"
    assert "records: row 3 appears twice" in caught.value.failure.message
    assert caught.value.info is not None and caught.value.failure.counts_in_job
    assert ledger_of(engine, job_id) == [] and query(engine, "SELECT count(*) FROM users") == [(0,)]


def test_an_intake_chunk_applied_after_its_dead_letter_replaces_the_failures_it_left(
    any_database_url: str,
) -> None:
    """An intake chunk drops records that already have a result (read again), but not the
    failures it left itself when it was dead-lettered: a replay applies them. Another chunk
    holding one of those records again still drops it (the dead letter counted it)."""
    engine = make_engine(any_database_url, pool_size=1)
    job_id = str(uuid.uuid4())
    intake = replace(a_chunk(job_id, "k@example.com", "l@example.com"), lane=0, json_values=True)
    dead = replace(intake, chunk_index=5, partition_seq=5)
    record_dead_lettered(engine, job_id, 5, [1, 2], "chunk dead-lettered: Boom")
    again = replace(intake, chunk_index=6, partition_seq=6, records=intake.records[1:])

    other = apply_raw(encode_chunk(again), engine)
    assert isinstance(other, Applied) and other.result.records == 0
    replayed = apply_raw(encode_chunk(dead), engine)
    assert isinstance(replayed, Applied) and replayed.fresh
    assert (replayed.result.records, replayed.result.successful) == (2, 2)
    assert query(engine, "SELECT email FROM users ORDER BY email") == [
        ("k@example.com",),
        ("l@example.com",),
    ]
    rows = "SELECT row_no, outcome, dead_chunk FROM sluice_results WHERE job_id = :j ORDER BY 1"
    assert query(engine, rows, j=job_id) == [(1, "created", None), (2, "created", None)]
    engine.dispose()


def test_a_dead_lettered_intake_chunk_counts_only_the_records_no_other_chunk_holds(
    any_database_url: str,
) -> None:
    """An intake chunk holding a record read again (another chunk applied it) and then
    dead-lettered counts as failed only its own records, so the job's total is not passed."""
    engine = make_engine(any_database_url, pool_size=1)
    job_id = str(uuid.uuid4())
    intake = replace(a_chunk(job_id, "m@example.com", "n@example.com"), lane=0, json_values=True)
    applied = apply_raw(encode_chunk(replace(intake, records=intake.records[:1])), engine)
    assert isinstance(applied, Applied) and applied.result.successful == 1

    ours = record_dead_lettered(engine, job_id, 7, [1, 2], "chunk dead-lettered: Boom")
    assert ours == [2]  # row 1 is the applied chunk's
    assert record_dead_lettered(engine, job_id, 7, [1, 2], "chunk dead-lettered: Boom") == [2]
    rows = "SELECT row_no, outcome, dead_chunk FROM sluice_results WHERE job_id = :j ORDER BY 1"
    assert query(engine, rows, j=job_id) == [(1, "created", None), (2, "failed", 7)]
    engine.dispose()
