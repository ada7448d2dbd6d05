"""What a request may send: limits while streaming, inflated bodies, and strict values."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator

import pytest

from api.bodies import BodyLimits, body_blocks, read_whole
from streams.exceptions import LimitExceeded, OptionError, RequestError
from streams.jobtypes.user_import import UserImport
from streams.jobtypes.user_rules import FieldError, User, identity, validate_user
from streams.parse import CsvParser, NdjsonParser, ParseLimits, json_body
from streams.parse.json_records import json_depth
from streams.sink.jobs import valid_job_id

LIMITS = BodyLimits(max_bytes=1000, idle_seconds=0.2)


def reader(data: bytes, block: int = 100, stall_after: int | None = None):  # type: ignore[no-untyped-def]
    """A `read(n)` over `data`, `block` bytes at a time; it goes quiet after `stall_after`."""
    position = 0

    async def read(size: int) -> bytes:
        nonlocal position
        if stall_after is not None and position >= stall_after:
            await asyncio.sleep(10)
        chunk = data[position : position + min(size, block)]
        position += len(chunk)
        return chunk

    return read


async def collect(blocks: AsyncIterator[bytes]) -> bytes:
    return b"".join([block async for block in blocks])


def test_a_body_within_the_limit_is_read_whole_however_it_is_split() -> None:
    data = b"x" * 1000
    assert asyncio.run(read_whole(reader(data, block=7), LIMITS, None)) == data


def test_a_body_past_the_limit_is_a_413_naming_the_setting() -> None:
    with pytest.raises(LimitExceeded, match="SLUICE_MAX_UPLOAD_BYTES") as caught:
        asyncio.run(read_whole(reader(b"x" * 1001), LIMITS, None))
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "compress", [gzip.compress, zlib.compress, lambda d: zlib.compress(d)[2:-4]]
)
def test_gzip_and_deflate_are_inflated(compress) -> None:  # type: ignore[no-untyped-def]
    data = b"email,name\n" + b"a@b.co,A\n" * 50
    encoding = "gzip" if compress is gzip.compress else "deflate"
    assert asyncio.run(read_whole(reader(compress(data)), LIMITS, encoding)) == data


def test_the_limit_counts_inflated_bytes() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)  # ~10 KB that inflates to 10 MB
    with pytest.raises(LimitExceeded):
        asyncio.run(collect(body_blocks(reader(bomb), LIMITS, "gzip")))


def test_a_body_that_is_not_what_it_says_is_a_400() -> None:
    with pytest.raises(RequestError, match="cannot be inflated") as caught:
        asyncio.run(read_whole(reader(b"not deflate at all" * 10), LIMITS, "gzip"))
    assert caught.value.status == 400


def test_a_client_that_stops_sending_gets_a_408() -> None:
    with pytest.raises(RequestError, match="SLUICE_BODY_TIMEOUT") as caught:
        asyncio.run(read_whole(reader(b"x" * 500, stall_after=200), LIMITS, None))
    assert caught.value.status == 408


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[{{{", "b": [1, {"c": []}]}') == 4
    assert json_depth("[]") == 1 and json_depth('"x"') == 0


def test_a_deep_inline_body_is_a_400_not_a_crash() -> None:
    with pytest.raises(RequestError, match="deeper than 34"):
        json_body(b"[" * 10_000 + b"]" * 10_000, 34)
    with pytest.raises(RequestError, match="not UTF-8"):
        json_body(b"\xff\xfe{}", 34)
    assert json_body(b'{"data": [{"a": 1}]}', 34) == {"data": [{"a": 1}]}


def test_a_deep_or_wide_ndjson_record_fails_alone() -> None:
    parser = NdjsonParser(ParseLimits(max_columns=3, max_json_depth=3))
    deep = b'{"a": [[[[1]]]]}\n'
    wide = b'{"a": 1, "b": 2, "c": 3, "d": 4}\n'
    records = parser.feed(deep + wide + b'{"email": "x@y.co"}\n') + parser.close()
    assert [r.error for r in records] == ["nested deeper than 3 levels", "more than 3 fields", None]


def test_a_csv_with_too_many_columns_is_refused_before_any_job() -> None:
    parser = CsvParser(ParseLimits(max_columns=3))
    with pytest.raises(LimitExceeded, match="SLUICE_MAX_COLUMNS") as caught:
        parser.feed(b"a,b,c,d\n1,2,3,4\n")
    assert caught.value.status == 400


@pytest.mark.parametrize("raw", ["\u0663\u0660\u0660", "1_000", "+ 500", "5e2", "٣"])
def test_integers_take_ascii_digits_only(raw: str) -> None:
    with pytest.raises(OptionError, match="ASCII digits"):
        UserImport().parse_options({"chunkSize": raw})


def test_an_email_is_one_user_however_its_letters_are_composed() -> None:
    composed, decomposed = "\u00c4nne@example.com", "A\u0308nne@example.com"
    assert identity({"email": composed}) == identity({"email": decomposed})
    one, two = (validate_user({"email": e, "name": "Ä"}) for e in (composed, decomposed))
    assert isinstance(one, User) and isinstance(two, User) and one.email == two.email


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "a\x00@example.com", "name": "A"}, "email"),
        ({"email": "a@example.com", "name": "A\x00"}, "name"),
        ({"email": "a@example.com", "name": "A", "country": "D\x00"}, "country"),
    ],
)
def test_a_nul_character_fails_its_record_not_its_chunk(fields: dict, field: str) -> None:
    outcome = validate_user(fields)
    assert outcome == FieldError(field, "contains a NUL character")


@pytest.mark.parametrize("email", ["a\u200b@example.com", "a\u202e@example.com", "a\x07@b.co"])
def test_invisible_characters_in_an_email_are_refused(email: str) -> None:
    outcome = validate_user({"email": email, "name": "A"})
    assert isinstance(outcome, FieldError) and outcome.field == "email"


def test_job_ids_are_uuids_only() -> None:
    assert valid_job_id("0b9c5f4e-6a0b-4a53-9f0e-3d1f2a7b8c9d")
    assert not valid_job_id("0b9c5f4e-6a0b-4a53-9f0e-3d1f2a7b8c9d\x00")
    assert not valid_job_id("../../etc/passwd") and not valid_job_id("1" * 5000)


def test_an_inline_body_at_its_documented_limit_parses() -> None:
    records = [{"email": f"u{i}@example.com", "name": "x" * 50} for i in range(20_000)]
    body = json.dumps({"type": "user-import", "data": records}).encode()
    assert len(body) > 1_000_000  # far past one 64 KiB read
    limits = BodyLimits(max_bytes=16 << 20, idle_seconds=1)
    whole = asyncio.run(read_whole(reader(body, block=65536), limits, None))
    assert json_body(whole, 34)["data"][-1]["email"] == "u19999@example.com"
