"""What a chunk off the wire must be before it is applied: identity fields that fit the ledger,
records that fail alone when their values cannot be read, rows that name one record each, and
a content digest that tells a resend of the same chunk from another chunk reusing its pair."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from streams.exceptions import ChunkConflict, PoisonMessage
from streams.models import Chunk
from streams.processing.policy import classify
from streams.processing.transaction import check_rows
from streams.sink.ledger import content_digest
from streams.wire.chunks import decode_chunk, encode_chunk
from streams.wire.codec import CHUNK, codec

JOB = "0f8e2a52-1111-4222-8333-944445555666"


def framed(**overrides: Any) -> bytes:
    """A version 3 chunk record framed by hand, as an upstream producer might."""
    record = {
        "jobId": JOB,
        "jobType": "user-import",
        "tenant": "default",
        "chunkIndex": 0,
        "partition": 1,
        "partitionSeq": 0,
        "options": json.dumps({"chunkSize": 100}),
        "records": [
            {"row": 1, "values": ["a@example.com", "Ada"]},
            {"row": 2, "values": ["b@example.com", "Bo", "GB"]},
            {"row": 3, "values": ["c@example.com", "Cy"]},
        ],
        "columns": ["email", "name"],
        **overrides,
    }
    return codec().encode(CHUNK, record)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("jobId", JOB + "-12345678", "jobId '0f8e2a52-.*' \\(45 characters\\) is not a canonical"),
        ("jobId", JOB.upper(), "jobId .* is not a canonical UUID"),
        ("jobId", "job-1", "jobId 'job-1'"),
        ("chunkIndex", -1, "chunkIndex -1 is out of range"),
        ("chunkIndex", 2**31, "chunkIndex 2147483648 is out of range"),
        ("partitionSeq", -3, "partitionSeq -3 is out of range"),
        ("partition", -2, "partition -2 is out of range"),
        ("tenant", "t" * 65, "tenant 't{64}' \\(65 characters\\)"),
        ("tenant", "bad tenant!", "tenant 'bad tenant!'"),
    ],
)
def test_a_chunk_whose_identity_does_not_fit_is_poison_naming_the_field(
    field: str, value: object, says: str
) -> None:
    with pytest.raises(PoisonMessage, match=says) as caught:
        decode_chunk(framed(**{field: value}))
    assert classify(caught.value).retryable is False


def test_an_unknown_partition_is_allowed() -> None:
    """Version 1 chunks carry no partition: they read as -1."""
    assert decode_chunk(framed(partition=-1)).partition == -1


def test_a_record_with_the_wrong_number_of_values_fails_alone() -> None:
    chunk = decode_chunk(framed())
    assert chunk.records == [
        {"row": 1, "fields": {"email": "a@example.com", "name": "Ada"}, "error": None},
        {"row": 2, "fields": None, "error": "record has 3 values, the chunk's columns are 2"},
        {"row": 3, "fields": {"email": "c@example.com", "name": "Cy"}, "error": None},
    ]


def test_a_record_whose_value_is_not_json_fails_alone() -> None:
    records = [{"row": 1, "values": ['"a@x.io"']}, {"row": 2, "values": ["{not json"]}]
    chunk = decode_chunk(framed(records=records, columns=["email"], jsonValues=True))
    assert chunk.records[0]["fields"] == {"email": "a@x.io"}
    assert chunk.records[1] == {
        "row": 2,
        "fields": None,
        "error": "record has a value that is not JSON",
    }


@pytest.mark.parametrize(
    ("rows", "says"),
    [([1, 2, 2], "row 2 appears twice"), ([0, 1], "row 0 is out of range"), ([-4], "row -4")],
)
def test_rows_must_be_positive_and_distinct_within_a_chunk(rows: list[int], says: str) -> None:
    records = [{"row": row, "fields": {"email": f"{row}@x.io"}, "error": None} for row in rows]
    chunk = Chunk(JOB, "user-import", "default", 0, 0, 0, {}, records)
    with pytest.raises(PoisonMessage, match=says):
        check_rows(chunk)


def test_the_digest_is_the_same_for_a_resend_and_differs_for_other_content() -> None:
    records = [{"row": 1, "fields": {"email": "a@x.io", "name": "A"}, "error": None}]
    chunk = Chunk(JOB, "user-import", "default", 0, 1, 0, {"chunkSize": 10}, records)
    digest = content_digest(decode_chunk(encode_chunk(chunk)))
    assert len(digest) == 64
    # a replay re-sends the same chunk, perhaps with a bumped attempt and another submittedAt
    resent = encode_chunk(replace(chunk, attempt=3), submitted_at_ms=1_700_000_000_000)
    assert content_digest(decode_chunk(resent)) == digest
    # columns in another order encode the same content
    swapped = [{"row": 1, "fields": {"name": "A", "email": "a@x.io"}, "error": None}]
    assert content_digest(decode_chunk(encode_chunk(replace(chunk, records=swapped)))) == digest
    changed = [{"row": 1, "fields": {"email": "a@x.io", "name": "B"}, "error": None}]
    for other in (
        replace(chunk, records=changed),
        replace(chunk, tenant="acme"),
        replace(chunk, options={"chunkSize": 11}),
        replace(chunk, records=[{**records[0], "row": 2}]),
    ):
        assert content_digest(decode_chunk(encode_chunk(other))) != digest


def test_a_conflict_is_poison_that_counts_in_no_job() -> None:
    failure = classify(ChunkConflict("chunk 0 of job j was already applied with different content"))
    assert (failure.reason, failure.retryable, failure.counts_in_job) == ("poison", False, False)
    assert classify(PoisonMessage("bad")).counts_in_job is True
