"""How an input message is read: its job, its row, and what fails it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.intake.messages import (
    BEGIN,
    END,
    MAX_SEQ,
    RECORD,
    IntakeMessage,
    Refused,
    choice_of,
    job_id_of,
    read_message,
)

pytestmark = pytest.mark.unit
DAY_MS = 1_796_000_000_000  # 2026-11-30 (UTC)


def read(value: Any = None, partition: int = 0, offset: int = 7, **headers: str) -> IntakeMessage:
    raw = (
        json.dumps(value).encode() if value is not None and not isinstance(value, bytes) else value
    )
    return read_message(
        job_type="user-import",
        headers={name.replace("_", "-"): text.encode() for name, text in headers.items()},
        value=raw,
        partition=partition,
        offset=offset,
        timestamp_ms=DAY_MS,
        default_tenant="default",
        allowed_tenants=frozenset({"default", "alice"}),
    )


def test_a_batch_names_one_job_per_tenant_type_and_batch_id() -> None:
    one = read({"email": "a@x.org"}, sluice_batch="b-1", sluice_tenant="alice")
    two = read({"email": "b@x.org"}, partition=3, sluice_batch="b-1", sluice_tenant="alice")
    assert one.kind == RECORD and one.job_id == two.job_id
    assert one.job_id == job_id_of("alice", "user-import", "b-1", "ignored")
    assert read({}, sluice_batch="b-1").job_id != one.job_id  # the default tenant's b-1
    assert read({}, sluice_batch="b-2", sluice_tenant="alice").job_id != one.job_id


def test_records_without_a_batch_join_the_standing_job_of_their_day() -> None:
    message = read({"email": "a@x.org"})
    assert message.batch is None and message.tenant == "default"
    assert message.job_id == job_id_of("default", "user-import", None, "2026-11-30")


def test_the_row_is_the_producers_seq_else_where_the_record_was_read() -> None:
    assert read({}, sluice_seq="42").row == 42
    derived = read({}, partition=2, offset=9).row
    assert derived > MAX_SEQ and derived != read({}, partition=3, offset=9).row
    bad = read({"email": "a@x.org"}, sluice_seq="0")
    assert bad.fields is None and bad.error is not None and "sluice-seq" in bad.error


@pytest.mark.parametrize(
    ("value", "says"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not valid JSON")],
)
def test_an_unreadable_record_fails_alone_saying_where_it_was(value: bytes, says: str) -> None:
    message = read(value, partition=1, offset=5, sluice_batch="b")
    assert message.kind == RECORD and message.fields is None
    assert message.error is not None and says in message.error and "[1]@5" in message.error


def test_begin_and_end_carry_options_and_count() -> None:
    begin = read({"options": {"skipDuplicates": True}}, sluice_batch="b", sluice_control="begin")
    assert (begin.kind, begin.options) == (BEGIN, {"skipDuplicates": True})
    end = read({"count": 3}, sluice_batch="b", sluice_control="end")
    assert (end.kind, end.count) == (END, 3)
    assert end.job_id == begin.job_id == read({}, sluice_batch="b").job_id


@pytest.mark.parametrize(
    ("value", "headers", "says"),
    [
        ({}, {"sluice_tenant": "mallory"}, "may not be named"),
        ({}, {"sluice_tenant": "bad tenant"}, "not a tenant name"),
        ({}, {"sluice_batch": "x" * 201}, "1-200 characters"),
        ({}, {"sluice_batch": "a\x00b"}, "NUL"),
        ({"count": 1}, {"sluice_control": "end"}, "needs a sluice-batch"),
        ({"count": -1}, {"sluice_control": "end", "sluice_batch": "b"}, "count"),
        ({"options": []}, {"sluice_control": "begin", "sluice_batch": "b"}, "options"),
        ({}, {"sluice_control": "pause", "sluice_batch": "b"}, "begin or end"),
        (
            {"options": {}},
            {"sluice_control": "begin", "sluice_batch": "b", "sluice_outcome_format": "xml"},
            "sluice-outcome-format must be json or avro",
        ),
    ],
)
def test_a_message_no_job_can_take_is_refused_with_the_reason(
    value: Any, headers: dict[str, str], says: str
) -> None:
    with pytest.raises(Refused, match=says):
        read(value, **headers)


def test_a_record_without_a_batch_carries_its_standing_jobs_day() -> None:
    assert read({"email": "a@x.org"}).day == "2026-11-30"
    assert read({"email": "a@x.org"}, sluice_batch="b").day is None
    assert read({"count": 1}, sluice_batch="b", sluice_control="end").day is None


AVRO_VALUE = b"\xc3\x01" + bytes(8) + b"\x00"  # read as JSON here: only its first bytes count


def test_what_a_message_chooses_for_its_jobs_outcome_form() -> None:
    begin = {"options": {}}
    plain = read(begin, sluice_batch="b", sluice_control="begin")
    assert choice_of(plain) is None  # a begin without the header leaves it to the records
    named = read(begin, sluice_batch="b", sluice_control="begin", sluice_outcome_format=" Avro ")
    assert choice_of(named) == "avro"
    assert choice_of(read({"email": "a@x.org"}, sluice_batch="b")) == "json"
    assert choice_of(read(AVRO_VALUE, sluice_batch="b")) == "avro"  # a batch: the record's form
    assert choice_of(read(AVRO_VALUE)) == "json"  # a standing job: JSON unless chosen
    assert choice_of(read(AVRO_VALUE, sluice_outcome_format="avro")) == "avro"
    chosen = read({"email": "a@x.org"}, sluice_batch="b", sluice_outcome_format="avro")
    assert choice_of(chosen) == "avro" and chosen.fields == {"email": "a@x.org"}
    end = read({"count": 1}, sluice_batch="b", sluice_control="end", sluice_outcome_format="x")
    assert end.kind == END and choice_of(end) is None  # an end chooses nothing, nor fails


def test_a_record_with_a_bad_outcome_format_header_fails_alone() -> None:
    bad = read({"email": "a@x.org"}, sluice_batch="b", sluice_outcome_format="protobuf")
    assert bad.kind == RECORD and bad.fields is None
    assert bad.error is not None and "sluice-outcome-format" in bad.error
    assert choice_of(bad) == "json"  # it still counts, as the record it is
