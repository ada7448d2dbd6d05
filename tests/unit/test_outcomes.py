"""Outcome events: when a job's status changes, what the event says, and its Avro form read
with the published schema by fastavro alone."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.agents.outcomes import known_of, status_change
from streams.progress import apply_event
from streams.sink.jobs import JobRecord
from streams.wire.events import ACCEPTED, CHUNK_OUTCOME, SPLIT_COMPLETED
from streams.wire.outcomes import (
    AVRO,
    JSON,
    OUTCOME_RECORD,
    SCHEMA,
    batch_reused_event,
    outcome_event,
    outcome_headers,
    outcome_schema,
)

pytestmark = pytest.mark.unit
JOB = "0b8e2f9c-1d2e-4f3a-8b4c-5d6e7f8a9b0c"


def outcome(partition: int, seq: int, successful: int, failed: int) -> dict:
    return {
        "chunkIndex": seq,
        "partition": partition,
        "partitionSeq": seq,
        "records": successful + failed,
        "successful": successful,
        "failed": failed,
        "skipped": 0,
        "created": successful,
        "updated": 0,
        "deadLettered": False,
        "stopped": None,
        "errors": [],
    }


def test_a_jobs_life_is_told_by_its_status_changes_only() -> None:
    accepted = {"jobType": "user-import", "tenant": "alice", "options": "{}"}
    queued = apply_event(None, JOB, 1, ACCEPTED, accepted)
    assert status_change(None, queued) == (None, "queued")
    active = apply_event(queued, JOB, 2, CHUNK_OUTCOME, outcome(0, 0, 2, 1))
    assert status_change(queued, active) == ("queued", "active")
    same = apply_event(active, JOB, 3, CHUNK_OUTCOME, outcome(1, 0, 1, 0))
    assert status_change(active, same) is None  # counts moved, the status did not
    split = {"totalRecords": 4, "totalChunks": 2, "unknownColumns": []}
    done = apply_event(same, JOB, 4, SPLIT_COMPLETED, split)
    assert status_change(same, done) == ("active", "completed")

    event = json.loads(outcome_event(JOB, done, ("active", "completed", True), 4_000))
    assert event == {
        "schema": SCHEMA,
        "event": "status",
        "jobId": JOB,
        "batchId": None,
        "type": "user-import",
        "tenant": "alice",
        "status": "completed",
        "previousStatus": "active",
        "final": True,
        "at": "1970-01-01T00:00:04Z",
        "counts": {
            "total": 4,
            "processed": 4,
            "successful": 3,
            "failed": 1,
            "skipped": 0,
            "created": 3,
            "updated": 0,
            "deadLettered": 0,
        },
        "error": None,
    }


SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas/outcomes/job_outcome.v1.avsc"
DOCS = Path(__file__).resolve().parents[2] / "docs/upstream.md"


def published() -> tuple[Any, int]:
    """The published outcome schema and its fingerprint, computed here with fastavro alone."""
    parsed = parse_schema(json.loads(SCHEMA_FILE.read_text()))
    hex_le = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")  # little-endian
    return parsed, int.from_bytes(bytes.fromhex(hex_le), "little")


def read_avro_event(value: bytes) -> dict[str, Any]:
    """As docs/upstream.md's consumer reads it: the 10-byte header, then the body."""
    parsed, fp = published()
    assert value[:2] == b"\xc3\x01" and int.from_bytes(value[2:10], "little") == fp
    body = io.BytesIO(value[10:])
    event = schemaless_reader(body, parsed)
    assert body.read() == b""  # the body is the rest of the value
    assert isinstance(event, dict)
    return event


def states() -> list[tuple[dict, tuple[str | None, str, bool]]]:
    accepted = {"jobType": "user-import", "tenant": "alice", "options": "{}"}
    queued = apply_event(None, JOB, 1, ACCEPTED, accepted)  # no total yet
    active = apply_event(queued, JOB, 2, CHUNK_OUTCOME, outcome(0, 0, 2, 1))
    early = apply_event(None, JOB, 3, CHUNK_OUTCOME, outcome(0, 0, 1, 0))  # before acceptance
    failed = {**active, "error": "the upload broke off"}
    return [
        (queued, (None, "queued", False)),
        (active, ("queued", "active", False)),
        (early, (None, "active", False)),
        (failed, ("active", "failed", True)),
    ]


@pytest.mark.parametrize("batch", [None, "Lieferung №7 ✓"])
def test_an_avro_event_reads_back_as_its_json_twin_with_the_published_schema(
    batch: str | None,
) -> None:
    for state, change in states():
        as_json = json.loads(outcome_event(JOB, state, change, 5_001, batch, JSON))
        assert read_avro_event(outcome_event(JOB, state, change, 5_001, batch, AVRO)) == as_json
    reused = ("user-import", "alice", "b-9", "completed", 6_000)
    as_json = json.loads(batch_reused_event(JOB, *reused))
    assert as_json["event"] == "batchReused" and as_json["counts"] is None
    assert read_avro_event(batch_reused_event(JOB, *reused, AVRO)) == as_json


def test_sluice_writes_with_the_schema_and_fingerprint_it_publishes() -> None:
    _, fp = published()
    schema = outcome_schema()
    assert (schema.full_name, schema.fingerprint) == (OUTCOME_RECORD, fp)
    assert f"{OUTCOME_RECORD}/{schema.version}" == SCHEMA  # the JSON's "schema" names it
    assert outcome_headers(AVRO) == [("sluice-format", b"avro")]


def test_the_docs_print_the_real_fingerprint() -> None:
    _, fp = published()
    docs = DOCS.read_text()
    assert "schemas/outcomes/job_outcome.v1.avsc" in docs
    found = re.search(r"job_outcome\.v1\.avsc`[^`]*`0x([0-9a-f]{16})`[^`]*`([0-9a-f ]{23})`", docs)
    assert found is not None, "docs/upstream.md names the outcome schema's fingerprint"
    assert int(found.group(1), 16) == fp
    assert bytes.fromhex(found.group(2)) == fp.to_bytes(8, "little")
    assert f'bytes.fromhex("{fp.to_bytes(8, "little").hex()}")' in docs  # the consumer's


def row(**fields: Any) -> JobRecord:
    base: dict[str, Any] = {
        "id": JOB,
        "tenant": "alice",
        "type": "user-import",
        "options": {},
        "created_at": datetime.now(UTC),
        "total_records": None,
        "total_chunks": None,
        "error": None,
        "stopped": None,
    }
    return JobRecord(**{**base, **fields})


def test_the_registry_row_says_the_form_and_when_it_is_not_settled() -> None:
    assert known_of(None) == (None, None)  # not registered yet (an end read first): ask again
    assert known_of(row(origin="api")) == (None, JSON)  # an API job: always JSON
    assert known_of(row()) == (None, JSON)  # a row from before the columns
    assert known_of(row(origin="topic")) == (None, JSON)  # a standing job, not chosen
    assert known_of(row(origin="topic", batch_id="b", outcome_format=AVRO)) == ("b", AVRO)
    assert known_of(row(origin="topic", outcome_format=AVRO)) == (None, AVRO)
    assert known_of(row(origin="topic", batch_id="b")) == ("b", None)  # not settled yet
