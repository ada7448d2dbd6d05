"""Job options, the chunk codec and its schema evolution, failure policy, dead-letter text."""

from __future__ import annotations

import json
import random
import struct
from dataclasses import replace

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from streams.deadletter import MAX_MESSAGE_CHARS, dead_letter_headers, sanitize
from streams.exceptions import OptionError, PoisonMessage, TransientError
from streams.jobtypes.user_import import UserImport
from streams.models import Chunk
from streams.processing.policy import classify
from streams.retry import RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, backoff_delay
from streams.wire import events
from streams.wire.chunks import decode_chunk, encode_chunk
from streams.wire.codec import CHUNK, codec

USER_IMPORT = UserImport()
JOB = "0f8e2a52-1111-4222-8333-944445555666"


def option_error(raw: dict[str, object]) -> OptionError:
    with pytest.raises(OptionError) as caught:
        USER_IMPORT.parse_options(raw)
    return caught.value


# -- options -------------------------------------------------------------------------------------


def test_defaults() -> None:
    assert USER_IMPORT.parse_options({}) == {
        "chunkSize": 1000,
        "concurrency": 5,
        "retryAttempts": 3,
        "validate": True,
        "stopOnError": False,
        "priority": 0,
        "skipDuplicates": False,
        "updateDuplicates": False,
    }


def test_options_from_query_string_values() -> None:
    options = USER_IMPORT.parse_options(
        {"chunkSize": " 250 ", "concurrency": "7", "validate": "no", "skipDuplicates": "TRUE"}
    )
    assert (options["chunkSize"], options["concurrency"]) == (250, 7)
    assert (options["validate"], options["skipDuplicates"]) == (False, True)


def test_options_from_json_values() -> None:
    options = USER_IMPORT.parse_options(
        {"chunkSize": 10000, "retryAttempts": 0, "stopOnError": True, "updateDuplicates": True}
    )
    assert (options["chunkSize"], options["retryAttempts"]) == (10000, 0)
    assert (options["stopOnError"], options["updateDuplicates"]) == (True, True)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[("true", True), ("1", True), ("yes", True), ("On", True), (True, True)],
        *[("false", False), ("0", False), ("NO", False), (" off ", False), (False, False)],
    ],
)
def test_bool_spellings(raw: object, value: bool) -> None:
    assert USER_IMPORT.parse_options({"validate": raw})["validate"] is value


@pytest.mark.parametrize("raw", ["maybe", "", 1, 0, None, "tru"])
def test_bad_bools_name_the_option(raw: object) -> None:
    error = option_error({"stopOnError": raw})
    assert error.field == "stopOnError"
    assert "true or false" in str(error)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("chunkSize", 100, 10000), ("concurrency", 1, 20), ("retryAttempts", 0, 10)],
)
def test_integer_ranges_are_inclusive(name: str, low: int, high: int) -> None:
    assert USER_IMPORT.parse_options({name: low})[name] == low
    assert USER_IMPORT.parse_options({name: str(high)})[name] == high
    for outside in (low - 1, high + 1, str(high + 1)):
        error = option_error({name: outside})
        assert error.field == name
        assert str(error) == f"option {name!r} must be between {low} and {high}"
        assert error.status == 400


@pytest.mark.parametrize("raw", ["abc", "1e3", "100.0", 100.0, True, None, ""])
def test_non_integers_are_rejected(raw: object) -> None:
    error = option_error({"chunkSize": raw})
    assert error.field == "chunkSize"
    assert "must be an integer" in str(error)


def test_an_unknown_option_is_named() -> None:
    error = option_error({"chunkSize": "100", "colour": "blue"})
    assert error.field == "colour"
    assert "'colour' is not a known option" in str(error)
    assert "chunkSize" in str(error)  # the known ones are listed


def test_user_import_rejects_skip_and_update_duplicates_together() -> None:
    error = option_error({"skipDuplicates": "true", "updateDuplicates": "true"})
    assert error.field == "updateDuplicates"
    assert "skipDuplicates" in str(error)
    # one at a time is fine
    assert USER_IMPORT.parse_options({"skipDuplicates": True})["skipDuplicates"] is True
    assert USER_IMPORT.parse_options({"updateDuplicates": True})["updateDuplicates"] is True


# -- the chunk codec -----------------------------------------------------------------------------

RECORDS = [
    {"row": 1, "fields": {"email": "a@example.com", "name": "A", "age": 42}, "error": None},
    {"row": 2, "fields": None, "error": "expected 5 fields, found 3"},
    {"row": 3, "fields": {"email": "b@example.com", "ok": True, "score": 1.5, "x": None}},
]


def v1_chunk_bytes(**overrides: object) -> bytes:
    record = {
        "jobId": "0f8e2a52-1111-4222-8333-944445555666",
        "jobType": "user-import",
        "chunkIndex": 3,
        "partitionSeq": 1,
        "options": json.dumps({"chunkSize": 100, "skipDuplicates": True}),
        "records": RECORDS,
        **overrides,
    }
    return codec().encode(CHUNK, record, schema_id=1)


def test_a_version_1_chunk_decodes_with_version_2_defaults() -> None:
    data = v1_chunk_bytes()
    assert data[:5] == b"\x00\x00\x00\x00\x01"
    assert codec().schema_id_of(data) == 1
    chunk = decode_chunk(data)
    assert chunk == Chunk(
        job_id="0f8e2a52-1111-4222-8333-944445555666",
        job_type="user-import",
        tenant="default",
        chunk_index=3,
        partition=-1,
        partition_seq=1,
        options={"chunkSize": 100, "skipDuplicates": True},
        records=[{**RECORDS[0]}, RECORDS[1], {**RECORDS[2], "error": None}],
        attempt=0,
    )


def test_a_version_3_chunk_round_trips() -> None:
    chunk = Chunk(JOB, "user-import", "acme", 12, 3, 4, {"chunkSize": 500}, RECORDS[:2], 2)
    data = encode_chunk(chunk, submitted_at_ms=1_700_000_000_000)
    assert codec().schema_id_of(data) == 4  # version 3's layout, and a lane
    decoded = decode_chunk(data)
    assert (decoded.columns, decoded.json_values) == (("email", "name", "age"), True)
    assert replace(decoded, columns=(), json_values=False) == chunk


def test_typed_json_values_and_unreadable_records_round_trip() -> None:
    records = [
        {"row": 1, "fields": {"email": "a@x.io", "age": 42, "vip": True}, "error": None},
        {"row": 2, "fields": None, "error": "invalid JSON: Expecting value"},
        {"row": 3, "fields": {"email": "b@x.io", "score": 1.5, "name": None}, "error": None},
    ]
    chunk = Chunk(JOB, "user-import", "default", 0, 1, 0, {}, records)
    decoded = decode_chunk(encode_chunk(chunk))
    assert decoded.records[0]["fields"] == {
        "email": "a@x.io",
        "age": 42,
        "vip": True,
        "score": None,
        "name": None,
    }
    assert decoded.records[1] == records[1]
    assert decoded.records[2]["fields"] == {
        "email": "b@x.io",
        "age": None,
        "vip": None,
        "score": 1.5,
        "name": None,
    }


def test_the_newest_chunk_schema_is_version_4() -> None:
    latest = codec().latest(CHUNK)
    assert (latest.schema_id, latest.version) == (4, 4)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\x00\x00", "shorter than the Avro frame header"),
        (b"this is not avro at all", "unknown magic byte"),
        (b"\x01\x00\x00\x00\x02" + b"\x02", "unknown magic byte 1"),
        (b"\x00\x00\x00\x00\x63" + b"\x02", "unknown schema id 99"),
        (b"\x00\x00\x00\x00\x02", "corrupt Avro body"),
        (b"\x00\x00\x00\x00\x02" + b"\xff" * 40, "corrupt Avro body"),
    ],
)
def test_unreadable_bytes_are_poison(data: bytes | None, says: str) -> None:
    with pytest.raises(PoisonMessage, match=says):
        decode_chunk(data)


def test_a_truncated_chunk_is_poison() -> None:
    data = v1_chunk_bytes()
    with pytest.raises(PoisonMessage, match="corrupt Avro body"):
        decode_chunk(data[:-7])


def test_a_progress_event_given_as_a_chunk_is_poison() -> None:
    frame = events.split_failed("job-1", "boom")
    assert codec().schema_id_of(frame) == 108
    with pytest.raises(PoisonMessage, match=r"is a sluice\.ProgressEvent, expected sluice\.Chunk"):
        decode_chunk(frame)


@pytest.mark.parametrize(
    ("options", "says"), [("{not json", "not JSON"), ("[1, 2]", "not a JSON object")]
)
def test_chunk_options_must_be_a_json_object(options: str, says: str) -> None:
    with pytest.raises(PoisonMessage, match=says):
        decode_chunk(v1_chunk_bytes(options=options))


def test_random_bodies_behind_a_valid_header_decode_or_are_poison() -> None:
    rng = random.Random(5)
    outcomes = []
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        data = struct.pack(">bI", 0, rng.choice([1, 2])) + body
        try:  # any other exception fails the test: it would escape the chunk agent's policy
            outcomes.append(type(decode_chunk(data)).__name__)
        except PoisonMessage:
            outcomes.append("poison")
    assert set(outcomes) <= {"Chunk", "poison"}
    assert outcomes.count("poison") > 250


# -- failure policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry", "reason"),
    [
        (PoisonMessage("bad bytes"), False, "poison"),
        (TransientError("deadlock", delay=1.0), True, "transient"),
        (OperationalError("SELECT 1", {}, Exception("server closed")), True, "unavailable"),
        (ConnectionError("reset"), True, "transient"),
        (TimeoutError(), True, "transient"),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), True, "conflict"),
        (
            DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
            True,
            "unavailable",
        ),
        (DBAPIError("SELECT 1", {}, Exception("syntax")), True, "error"),
        (ValueError("a bug"), True, "error"),
    ],
)
def test_classify(error: BaseException, retry: bool, reason: str) -> None:
    failure = classify(error)
    assert (failure.retryable, failure.reason) == (retry, reason)
    assert failure.error_class == type(error).__name__


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_delay_stays_under_its_ceiling(attempt: int) -> None:
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, rng) for _ in range(200)]
    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling / 2  # full jitter: the whole range is used


class Extremes(random.Random):
    """uniform() returns its upper bound: the ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_delay(attempt, Extremes()) for attempt in range(1, 11)]
    assert ceilings[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert ceilings[-1] == RETRY_CAP_SECONDS
    assert ceilings == sorted(ceilings)


def test_backoff_delay_is_capped_for_any_attempt() -> None:
    assert 0 <= backoff_delay(2_000, Extremes()) <= RETRY_CAP_SECONDS


# -- dead-letter text -----------------------------------------------------------------------------


def test_sanitize_redacts_urls_with_credentials_and_keeps_one_line() -> None:
    message = (
        "could not connect to postgresql+psycopg2://sluice:s3cret@db.internal:5432/app now\n"
        "Traceback (most recent call last):\n  kafka://admin:hunter2@broker:9092"
    )
    assert sanitize(message) == "could not connect to <redacted-url> now"


def test_sanitize_keeps_urls_without_credentials() -> None:
    text = "see https://sqlalche.me/e/20/e3q8 and postgresql://db.internal:5432/app"
    assert sanitize(text) == text


def test_sanitize_redacts_several_urls_and_token_only_userinfo() -> None:
    text = "a redis://:pw@cache:6379/0 b https://ghp_token@github.com/org/repo c"
    assert sanitize(text) == "a <redacted-url> b <redacted-url> c"


def test_sanitize_first_non_blank_line_and_bound() -> None:
    assert sanitize("\n\n  first line\nsecond") == "first line"
    assert sanitize("   ") == ""
    assert len(sanitize("x" * 5_000)) == MAX_MESSAGE_CHARS


def test_sanitize_redacts_before_cutting() -> None:
    secret_at_the_edge = "x" * (MAX_MESSAGE_CHARS - 30) + " postgresql://u:topsecret@host/db"
    cleaned = sanitize(secret_at_the_edge)
    assert "topsecret" not in cleaned
    assert "u:top" not in cleaned


def test_sanitize_redacts_a_password_containing_a_slash() -> None:
    cleaned = sanitize("connection to postgresql://sluice:ab/cd@db:5432/app failed")
    assert "ab/cd" not in cleaned


def test_dead_letter_headers_name_the_source_and_the_error() -> None:
    headers = dict(
        dead_letter_headers(
            error=PoisonMessage("unknown magic byte 116\nmore"),
            attempts=1,
            first_failure_ms=123,
            source_topic="app.chunks",
            source_partition=2,
            source_offset=41,
            job_id=None,
            chunk_index=None,
            schema_id=None,
        )
    )
    assert headers["sluice-error-class"] == b"PoisonMessage"
    assert headers["sluice-error-message"] == b"unknown magic byte 116"
    assert headers["sluice-source-topic"] == b"app.chunks"
    assert (headers["sluice-source-partition"], headers["sluice-source-offset"]) == (b"2", b"41")
    assert "sluice-job-id" not in headers  # unknown values are left out, not "None"
    assert "sluice-schema-id" not in headers
