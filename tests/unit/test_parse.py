"""streams.parse: streaming CSV and NDJSON parsing of uploads, block boundaries anywhere."""

from __future__ import annotations

import pytest

from streams.exceptions import RequestError, UploadError
from streams.models import ParsedRecord
from streams.parse import (
    CsvParser,
    NdjsonParser,
    ParseLimits,
    parser_for,
    records_from_json_items,
)

Parser = CsvParser | NdjsonParser


def run(parser: Parser, data: bytes, block_size: int | None = None) -> list[ParsedRecord]:
    """Feed `data` in blocks of `block_size` bytes (all at once when None), then close."""
    size = block_size or max(len(data), 1)
    out: list[ParsedRecord] = []
    for start in range(0, len(data), size):
        out += parser.feed(data[start : start + size])
    return out + parser.close()


def csv_records(data: bytes, block_size: int | None = None) -> list[ParsedRecord]:
    return run(CsvParser(), data, block_size)


def ndjson_records(data: bytes, block_size: int | None = None) -> list[ParsedRecord]:
    return run(NdjsonParser(), data, block_size)


def ok(row: int, **fields: object) -> ParsedRecord:
    return ParsedRecord(row, dict(fields))


def bad(row: int, error: str) -> ParsedRecord:
    return ParsedRecord(row, None, error)


# --- CSV: records and rows -------------------------------------------------------------------


def test_csv_reads_header_and_records() -> None:
    parser = CsvParser()
    records = run(parser, b"email,name\na@b.co,Ann\nc@d.co,Bob\n")
    assert records == [ok(1, email="a@b.co", name="Ann"), ok(2, email="c@d.co", name="Bob")]
    assert parser.columns == ["email", "name"]


def test_csv_columns_unknown_until_the_header_is_complete() -> None:
    parser = CsvParser()
    assert parser.columns is None
    assert parser.feed(b"email,na") == []
    assert parser.columns is None
    assert parser.feed(b"me\n") == []
    assert parser.columns == ["email", "name"]


def test_csv_columns_is_a_copy() -> None:
    parser = CsvParser()
    parser.feed(b"a,b\n")
    columns = parser.columns
    assert columns is not None
    columns.append("c")
    assert parser.columns == ["a", "b"]


def test_csv_emits_records_as_soon_as_their_line_is_complete() -> None:
    parser = CsvParser()
    assert parser.feed(b"a,b\n1,2\n3,") == [ok(1, a="1", b="2")]
    assert parser.feed(b"4") == []
    assert parser.close() == [ok(2, a="3", b="4")]


def test_csv_last_line_without_newline_is_read_at_close() -> None:
    assert csv_records(b"a,b\n1,2") == [ok(1, a="1", b="2")]


def test_csv_drops_a_leading_bom() -> None:
    parser = CsvParser()
    records = run(parser, b"\xef\xbb\xbfemail,name\nx@y.co,X\n")
    assert parser.columns == ["email", "name"]
    assert records == [ok(1, email="x@y.co", name="X")]


def test_csv_drops_a_bom_split_across_blocks() -> None:
    parser = CsvParser()
    assert run(parser, b"\xef\xbb\xbfa\n1\n", block_size=1) == [ok(1, a="1")]
    assert parser.columns == ["a"]


def test_csv_keeps_a_bom_that_is_not_leading() -> None:
    assert csv_records("a\n\ufeffx\n".encode()) == [ok(1, a="\ufeffx")]


def test_csv_crlf_line_ends() -> None:
    assert csv_records(b"a,b\r\n1,2\r\n3,4\r\n") == [ok(1, a="1", b="2"), ok(2, a="3", b="4")]


def test_csv_quoted_field_with_newline() -> None:
    assert csv_records(b'a,b\n"line 1\nline 2",x\n3,4\n') == [
        ok(1, a="line 1\nline 2", b="x"),
        ok(2, a="3", b="4"),
    ]


def test_csv_quoted_field_with_crlf_keeps_it() -> None:
    assert csv_records(b'a,b\r\n"line 1\r\nline 2",x\r\n3,4\r\n') == [
        ok(1, a="line 1\r\nline 2", b="x"),
        ok(2, a="3", b="4"),
    ]


def test_csv_quoted_field_spanning_several_lines_and_blank_lines() -> None:
    assert csv_records(b'a,b\n"one\n\n   \nfour",x\n') == [ok(1, a="one\n\n   \nfour", b="x")]


def test_csv_quoted_quotes_and_commas() -> None:
    data = b'a,b\n"say ""hi"", please","x,y"\n"""",""\n'
    assert csv_records(data) == [ok(1, a='say "hi", please', b="x,y"), ok(2, a='"', b="")]


def test_csv_blank_lines_are_not_records_and_take_no_row_number() -> None:
    data = b"\n\na,b\n\n1,2\n\n\n3,4\n\n"
    assert csv_records(data) == [ok(1, a="1", b="2"), ok(2, a="3", b="4")]


def test_csv_whitespace_only_lines_are_blank() -> None:
    data = b"a,b\n   \n\t\r\n1,2\r\n \r\n3,4\n"
    assert csv_records(data) == [ok(1, a="1", b="2"), ok(2, a="3", b="4")]


def test_csv_values_are_not_trimmed_but_header_names_are() -> None:
    parser = CsvParser()
    records = run(parser, b" email , name \n a@b.co ,  Ann\t\n")
    assert parser.columns == ["email", "name"]
    assert records == [ok(1, email=" a@b.co ", name="  Ann\t")]


def test_csv_extra_header_columns_are_kept() -> None:
    data = b"email,name,nickname,notes\na@b.co,Ann,annie,\n"
    assert csv_records(data) == [ok(1, email="a@b.co", name="Ann", nickname="annie", notes="")]


def test_csv_wrong_field_counts_fail_only_their_record() -> None:
    data = b"a,b\n1,2,3\n4\n5,6\n,\n"
    assert csv_records(data) == [
        bad(1, "expected 2 fields, found 3"),
        bad(2, "expected 2 fields, found 1"),
        ok(3, a="5", b="6"),
        ok(4, a="", b=""),
    ]


def test_csv_unicode_values() -> None:
    data = "name,city\nJosé Müller 😀,東京\n".encode()
    assert csv_records(data) == [ok(1, name="José Müller 😀", city="東京")]


def test_csv_does_not_split_on_unicode_line_separators() -> None:
    data = "a,b\nx\u2028y,z\x1cw\x85\n".encode()
    assert csv_records(data) == [ok(1, a="x\u2028y", b="z\x1cw\x85")]


def test_csv_multibyte_character_split_across_blocks() -> None:
    parser = CsvParser()
    encoded = "a\né\n".encode()
    split = encoded.index(b"\xc3") + 1  # between the two bytes of "é"
    first, second = parser.feed(encoded[:split]), parser.feed(encoded[split:])
    assert first == []
    assert second == [ok(1, a="é")]
    assert parser.close() == []


def test_csv_invalid_utf8_fails_only_its_record() -> None:
    data = b"a,b\n1,2\n\xff\xfeoops,3\n4,5\n"
    assert csv_records(data) == [
        ok(1, a="1", b="2"),
        bad(2, "not valid UTF-8"),
        ok(3, a="4", b="5"),
    ]


def test_csv_invalid_utf8_among_non_ascii_records() -> None:
    data = "a\nJosé\n".encode() + b"Jos\xe9\n" + "Zoë\n".encode()
    assert csv_records(data) == [ok(1, a="José"), bad(2, "not valid UTF-8"), ok(3, a="Zoë")]


def test_csv_invalid_utf8_in_a_multiline_record_seen_in_an_earlier_block() -> None:
    data = b'a,b\n"x\xff\ny",1\n2,3\n'
    expected = [bad(1, "not valid UTF-8"), ok(2, a="2", b="3")]
    assert csv_records(data) == expected
    assert csv_records(data, block_size=6) == expected


def test_csv_truncated_utf8_at_end_of_upload() -> None:
    assert csv_records(b"a\nok\n\xc3") == [ok(1, a="ok"), bad(2, "not valid UTF-8")]


SAMPLE = (
    b"\xef\xbb\xbf\n email ,name,note\r\n"
    + 'a@b.co,José 😀,"multi\r\nline, ""quoted"""\r\n'.encode()
    + b"\r\n   \n"
    + b"c@d.co,Bad \xff byte,x\n"
    + b'e@f.co,Too,many,fields\n"g@h.co","",""\n'
    + "i@j.co,東京,end".encode()
)
SAMPLE_RECORDS = [
    ok(1, email="a@b.co", name="José 😀", note='multi\r\nline, "quoted"'),
    bad(2, "not valid UTF-8"),
    bad(3, "expected 3 fields, found 4"),
    ok(4, email="g@h.co", name="", note=""),
    ok(5, email="i@j.co", name="東京", note="end"),
]


def test_csv_sample_all_at_once() -> None:
    assert csv_records(SAMPLE) == SAMPLE_RECORDS


def test_csv_one_byte_at_a_time_matches_all_at_once() -> None:
    assert csv_records(SAMPLE, block_size=1) == csv_records(SAMPLE)


@pytest.mark.parametrize("cut", range(len(SAMPLE) + 1))
def test_csv_split_at_every_byte_position(cut: int) -> None:
    parser = CsvParser()
    records = parser.feed(SAMPLE[:cut]) + parser.feed(SAMPLE[cut:]) + parser.close()
    assert records == SAMPLE_RECORDS


def test_csv_unterminated_quote_at_end_fails_the_last_record_only() -> None:
    data = b'a,b\n1,2\n"open,3\n4,5\n'
    assert csv_records(data) == [ok(1, a="1", b="2"), bad(2, "unterminated quoted field")]


def test_csv_stray_carriage_return_fails_only_its_record() -> None:
    assert csv_records(b"a,b\n1,2\nx\ry,3\n4,5\n") == [
        ok(1, a="1", b="2"),
        bad(
            2,
            "malformed CSV: a carriage return (\\r) inside an unquoted field; "
            "lines must end in LF or CRLF",
        ),
        ok(3, a="4", b="5"),
    ]


def test_csv_with_bare_cr_line_ends_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="carriage return"):
        csv_records(b"a,b\r1,2\r3,4\r")


def test_csv_a_quote_opening_late_does_not_swallow_the_next_record() -> None:
    # Two quotes pair up by count, though the second opens a quoted field the csv module
    # would run into the next line: the next record must still be read on its own.
    assert csv_records(b'a,b\nx"y,"z\n1,2\n') == [ok(1, a='x"y', b="z"), ok(2, a="1", b="2")]


def test_csv_header_only_upload_has_no_records() -> None:
    parser = CsvParser()
    assert run(parser, b"email,name\n") == []
    assert parser.columns == ["email", "name"]
    assert csv_records(b"email,name") == []
    assert csv_records(b"email,name\n\n  \n") == []


@pytest.mark.parametrize("data", [b"", b"\n\n", b"  \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
def test_csv_empty_upload_is_an_upload_error_at_close(data: bytes) -> None:
    parser = CsvParser()
    assert parser.feed(data) == []
    with pytest.raises(UploadError, match=r"^the upload is empty$"):
        parser.close()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"email,name,email\n", "'email' more than once"),
        (b"email, name ,name\n", "'name' more than once"),
        (b"email,,name\n", "column 2 has an empty name"),
        (b"email,  \n", "column 2 has an empty name"),
    ],
)
def test_csv_bad_header_names_are_upload_errors(header: bytes, message: str) -> None:
    with pytest.raises(UploadError, match=message):
        CsvParser().feed(header)


@pytest.mark.parametrize("header", [b"ab\x00cd,ef\n", b"\x1f\x8b\x08\x00\x00\n", b"a\x07,b\n"])
def test_csv_binary_header_does_not_look_like_csv(header: bytes) -> None:
    with pytest.raises(UploadError, match="does not look like CSV"):
        csv_records(header)


@pytest.mark.parametrize("data", [b"pr\xe9nom,nom\nx,y\n", b"\x89PNG\r\n\x1a\n\xff\xd8"])
def test_csv_header_with_invalid_utf8_is_an_upload_error(data: bytes) -> None:
    with pytest.raises(UploadError, match=r"does not look like CSV text: .* not valid UTF-8"):
        csv_records(data)


def test_csv_header_with_unterminated_quote_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="unterminated quoted field"):
        csv_records(b'"email,name\nx,y\n')


def test_csv_record_longer_than_the_limit_is_an_upload_error() -> None:
    parser = CsvParser(ParseLimits(max_record_chars=20))
    parser.feed(b'a,b\n"open quote,\n')
    with pytest.raises(UploadError, match="longer than 20 characters"):
        for _ in range(10):
            parser.feed(b"x" * 5 + b"\n")  # each line is short; the open record is not


def test_csv_physical_line_longer_than_the_limit_is_an_upload_error() -> None:
    parser = CsvParser(ParseLimits(max_record_chars=20))
    with pytest.raises(UploadError, match="longer than 20 characters"):
        parser.feed(b"x" * 21)


def test_csv_large_upload_in_64k_blocks() -> None:
    lines = [f"user{i}@example.com,User {i},DE,{20 + i % 50},2024-01-02" for i in range(20_000)]
    data = ("email,name,country,age,signup_ts\n" + "\n".join(lines) + "\n").encode()
    records = csv_records(data, block_size=65536)
    assert len(records) == 20_000
    assert [r.row for r in records] == list(range(1, 20_001))
    assert records[-1] == ok(
        20_000,
        email="user19999@example.com",
        name="User 19999",
        country="DE",
        age="69",
        signup_ts="2024-01-02",
    )


# --- NDJSON ----------------------------------------------------------------------------------


def test_ndjson_keeps_json_types() -> None:
    parser = NdjsonParser()
    records = run(parser, b'{"s": "x", "i": 42, "f": 1.5, "b": true, "n": null}\n')
    assert records == [ok(1, s="x", i=42, f=1.5, b=True, n=None)]
    fields = records[0].fields
    assert fields is not None
    assert type(fields["i"]) is int and type(fields["f"]) is float and fields["b"] is True
    assert parser.columns == ["s", "i", "f", "b", "n"]


def test_ndjson_nested_values_become_compact_json_strings() -> None:
    data = '{"o": {"k": [1, 2]}, "l": [1, "é"], "e": {}}\n'.encode()
    assert ndjson_records(data) == [ok(1, o='{"k":[1,2]}', l='[1,"é"]', e="{}")]


def test_ndjson_integers_too_wide_for_a_long_keep_their_digits() -> None:
    data = b'{"big": 123456789012345678901234567890, "max": 9223372036854775807}\n'
    assert ndjson_records(data) == [ok(1, big="123456789012345678901234567890", max=2**63 - 1)]


def test_ndjson_invalid_json_fails_only_its_record() -> None:
    data = b'{"a": 1}\n{oops\n{"a": 2}\n'
    assert ndjson_records(data) == [
        ok(1, a=1),
        bad(2, "invalid JSON: Expecting property name enclosed in double quotes"),
        ok(3, a=2),
    ]


def test_ndjson_trailing_garbage_is_invalid_json() -> None:
    assert ndjson_records(b'{"a": 1} x\n') == [bad(1, "invalid JSON: Extra data")]


@pytest.mark.parametrize("line", [b"NaN", b'{"a": NaN}', b'{"a": -Infinity}'])
def test_ndjson_non_finite_constants_are_invalid_json(line: bytes) -> None:
    [record] = ndjson_records(line + b"\n")
    assert record.fields is None
    assert record.error is not None and record.error.startswith("invalid JSON: ")


@pytest.mark.parametrize("line", [b"[1, 2]", b'"text"', b"3", b"null", b"true"])
def test_ndjson_non_object_records(line: bytes) -> None:
    assert ndjson_records(line + b'\n{"a": 1}\n') == [
        bad(1, "record is not a JSON object"),
        ok(2, a=1),
    ]


def test_ndjson_blank_lines_take_no_row_number_and_crlf_works() -> None:
    data = b'\r\n{"a": 1}\r\n\r\n   \n{"a": 2}\r\n\n'
    assert ndjson_records(data) == [ok(1, a=1), ok(2, a=2)]


def test_ndjson_columns_come_from_the_first_object() -> None:
    parser = NdjsonParser()
    assert parser.columns is None
    run(parser, b'[1]\n{bad\n{"z": 1, "a": 2}\n{"b": 3}\n')
    assert parser.columns == ["z", "a"]


def test_ndjson_bom_and_last_line_without_newline() -> None:
    assert ndjson_records(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}') == [ok(1, a=1), ok(2, a=2)]


def test_ndjson_invalid_utf8_fails_only_its_record() -> None:
    data = '{"n": "José"}\n'.encode() + b'{"n": "Jos\xe9"}\n{"n": "x"}\n'
    assert ndjson_records(data) == [ok(1, n="José"), bad(2, "not valid UTF-8"), ok(3, n="x")]


def test_ndjson_lone_surrogate_escape_fails_its_record() -> None:
    data = b'{"n": "\\ud800"}\n{"n": "\\ud83d\\ude00"}\n'
    records = ndjson_records(data)
    assert records[0].fields is None and records[0].error is not None
    assert "lone surrogate" in records[0].error
    assert records[1] == ok(2, n="😀")


NDJSON_SAMPLE = (
    b'\xef\xbb\xbf{"email": "a@b.co", "tags": ["x", "\xc3\xa9"], "age": 30}\r\n'
    + b"\n{broken\n"
    + b'{"email": "\xff"}\n'
    + '{"name": "東京 😀", "ok": false}'.encode()
)
NDJSON_SAMPLE_RECORDS = [
    ok(1, email="a@b.co", tags='["x","é"]', age=30),
    bad(2, "invalid JSON: Expecting property name enclosed in double quotes"),
    bad(3, "not valid UTF-8"),
    ok(4, name="東京 😀", ok=False),
]


def test_ndjson_one_byte_at_a_time_matches_all_at_once() -> None:
    assert ndjson_records(NDJSON_SAMPLE) == NDJSON_SAMPLE_RECORDS
    assert ndjson_records(NDJSON_SAMPLE, block_size=1) == NDJSON_SAMPLE_RECORDS


@pytest.mark.parametrize("data", [b"", b"\n", b" \r\n\n", b"\xef\xbb\xbf"])
def test_ndjson_empty_upload_is_an_upload_error(data: bytes) -> None:
    parser = NdjsonParser()
    assert parser.feed(data) == []
    with pytest.raises(UploadError, match=r"^the upload is empty$"):
        parser.close()


def test_ndjson_upload_of_only_bad_lines_is_not_empty() -> None:
    assert ndjson_records(b"[1]\n") == [bad(1, "record is not a JSON object")]


# --- choosing a parser, inline JSON batches --------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("text/csv", CsvParser),
        ("text/csv; charset=utf-8", CsvParser),
        ("Text/CSV ; header=present", CsvParser),
        ("application/x-ndjson", NdjsonParser),
        ("application/ndjson", NdjsonParser),
        ("application/x-ndjson;charset=UTF-8", NdjsonParser),
    ],
)
def test_parser_for_accepted_types(content_type: str, kind: type) -> None:
    assert type(parser_for(content_type)) is kind


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "", "csv"])
def test_parser_for_names_the_accepted_types(content_type: str) -> None:
    with pytest.raises(UploadError) as caught:
        parser_for(content_type)
    assert "text/csv" in str(caught.value) and "application/x-ndjson" in str(caught.value)


def test_upload_error_is_a_400_request_error() -> None:
    error = UploadError("the upload is empty")
    assert isinstance(error, RequestError)
    assert error.status == 400


def test_records_from_json_items() -> None:
    item = {"a": 1, "nested": {"k": [True, None]}}
    records = list(records_from_json_items([item, [1], "x", None, {}, {"b": "é"}]))
    assert records == [
        ok(1, a=1, nested='{"k":[true,null]}'),
        bad(2, "record is not a JSON object"),
        bad(3, "record is not a JSON object"),
        bad(4, "record is not a JSON object"),
        ok(5),
        ok(6, b="é"),
    ]
    assert item == {"a": 1, "nested": {"k": [True, None]}}  # the caller's item is untouched


def test_records_from_json_items_copies_flat_items() -> None:
    item = {"a": 1}
    [record] = records_from_json_items([item])
    assert record.fields == item and record.fields is not item


def test_records_from_json_items_empty() -> None:
    assert list(records_from_json_items([])) == []
