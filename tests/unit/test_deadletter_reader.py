"""Dead-letter ids, filters and `--since`: the pure parts of listing and replaying."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.deadletter_views import dead_letter_view, replay_view
from streams.deadletter import dead_letter_headers
from streams.deadletter.reader import DeadLetter, Filters, Position, parse_since
from streams.deadletter.replay import MAX_LISTED_IDS, ReplayReport
from streams.exceptions import RequestError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _letter(offset: int = 7, **headers: object) -> DeadLetter:
    values = {
        "error-class": "OperationalError",
        "attempts": 4,
        "last-failure-at": NOW_MS - 90_000,
        "job-id": "job-1",
        "chunk-index": 3,
        "source-topic": "sluice.chunks",
        "source-partition": 2,
        "source-offset": 41,
        **headers,
    }
    return DeadLetter(
        Position("sluice.chunks.dlq", 1, offset),
        NOW_MS - 80_000,
        b"k",
        b"v",
        {f"sluice-{k}": str(v) for k, v in values.items()},
    )


def test_an_id_names_topic_partition_and_offset_and_round_trips() -> None:
    position = Position.parse("my.app.chunks.dlq:3:1200")
    assert position == Position("my.app.chunks.dlq", 3, 1200)
    assert Position.parse(position.id) == position


@pytest.mark.parametrize(
    "text", ["", "3:4", "sluice.chunks:1:2", "sluice.chunks.dlq:x:2", "sluice.chunks.dlq:1:-2"]
)
def test_a_malformed_id_is_a_request_error_naming_the_field(text: str) -> None:
    with pytest.raises(RequestError) as raised:
        Position.parse(text, "cursor")
    assert raised.value.field == "cursor"


@pytest.mark.parametrize(
    ("text", "back_ms"), [("90s", 90_000), ("15m", 900_000), ("2h", 7_200_000), ("7d", 604_800_000)]
)
def test_since_takes_a_duration_back_from_now(text: str, back_ms: int) -> None:
    assert parse_since(text, NOW) == NOW_MS - back_ms


def test_since_takes_an_iso_time_naive_means_utc() -> None:
    assert parse_since("2026-11-28T11:00:00Z", NOW) == NOW_MS - 3_600_000
    assert parse_since("2026-11-28T11:00:00", NOW) == NOW_MS - 3_600_000
    assert parse_since("2026-11-28T12:00:00+01:00", NOW) == NOW_MS - 3_600_000


@pytest.mark.parametrize("text", ["yesterday", "15 minutes", "-5m", "2026-13-01"])
def test_a_bad_since_names_the_field(text: str) -> None:
    with pytest.raises(RequestError) as raised:
        parse_since(text, NOW)
    assert raised.value.field == "since"


def test_filters_match_job_error_class_case_insensitively_and_failure_time() -> None:
    letter = _letter()
    assert Filters().matches(letter)
    assert Filters(job="job-1", error="operationalerror").matches(letter)
    assert not Filters(job="job-2").matches(letter)
    assert not Filters(error="PoisonMessage").matches(letter)
    assert Filters(since_ms=NOW_MS - 100_000).matches(letter)
    assert not Filters(since_ms=NOW_MS - 60_000).matches(letter)


def test_without_a_failure_time_header_the_record_timestamp_counts() -> None:
    letter = DeadLetter(Position("t.dlq", 0, 0), NOW_MS - 5_000, None, b"", {})
    assert letter.failed_at_ms == NOW_MS - 5_000
    assert letter.error_class == "unknown" and letter.source is None
    assert Filters(since_ms=NOW_MS - 10_000).matches(letter)


def test_the_view_reads_every_header() -> None:
    view = dead_letter_view(_letter(), NOW_MS)
    assert view["id"] == "sluice.chunks.dlq:1:7"
    assert (view["jobId"], view["chunkIndex"], view["attempts"]) == ("job-1", 3, 4)
    assert view["ageSeconds"] == 90
    assert view["lastFailureAt"] == "2026-11-28T11:58:30Z"
    assert view["source"] == {"topic": "sluice.chunks", "partition": 2, "offset": 41}
    assert view["replayedAt"] is None


def test_a_broker_that_counts_offsets_from_zero_again_makes_a_new_dead_letter() -> None:
    # the replay mark is keyed by position and time, not position alone
    assert (
        _letter().dedup_key
        != DeadLetter(Position("sluice.chunks.dlq", 1, 7), NOW_MS, b"k", b"v", {}).dedup_key
    )


def test_the_replay_report_lists_a_bounded_number_of_ids() -> None:
    report = ReplayReport(dry_run=False)
    for offset in range(MAX_LISTED_IDS + 5):
        report.add(_letter(offset))
    view = replay_view(report)
    assert view["replayed"] == MAX_LISTED_IDS + 5
    assert len(view["deadLetters"]) == MAX_LISTED_IDS and view["truncated"]
    assert view["jobs"] == {"job-1": MAX_LISTED_IDS + 5}


def test_a_dead_letter_of_a_replay_names_the_dead_letter_it_came_from() -> None:
    headers = dict(
        dead_letter_headers(
            error=ValueError("x"),
            attempts=1,
            first_failure_ms=1,
            source_topic="t",
            source_partition=0,
            source_offset=5,
            job_id=None,
            chunk_index=None,
            schema_id=None,
            replay_of="t.dlq:0:1",
        )
    )
    assert headers["sluice-replay-of"] == b"t.dlq:0:1"
