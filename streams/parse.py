"""Push-based parsers that turn an upload's byte blocks into numbered records (pure, no I/O).

Blocks may end anywhere: inside a UTF-8 character, a line or a quoted field. A parser holds at
most one unfinished logical record plus one block, never the whole upload. A record that cannot
be read becomes a `ParsedRecord` with an `error`; only an upload that is unreadable as a whole
(no header, a broken header, an unsupported content type) raises `UploadError`.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from streams.exceptions import RequestError

__all__ = [
    "CsvParser",
    "NdjsonParser",
    "ParsedRecord",
    "RecordParser",
    "UploadError",
    "parser_for",
    "records_from_json_items",
]

DEFAULT_MAX_RECORD_CHARS = 1 << 20
"""Longest logical record we buffer; past it an unbalanced quote is the likely cause."""

NOT_UTF8 = "not valid UTF-8"
NOT_AN_OBJECT = "record is not a JSON object"
UNTERMINATED = "unterminated quoted field"
LONE_SURROGATE = "contains a \\u escape that is not valid Unicode (a lone surrogate)"

# surrogateescape maps each undecodable byte to one of these code points.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters that never occur in a text CSV header (tab, LF and CR are allowed).
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The chunk schema carries integers as Avro longs.
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


class ParsedRecord(NamedTuple):
    """One record of an upload; `fields` is None exactly when `error` says why.

    A NamedTuple rather than a frozen dataclass: one is built per record, ~4x cheaper."""

    row: int
    fields: dict[str, Any] | None
    error: str | None = None


class UploadError(RequestError):
    """The upload as a whole cannot be read; the message tells a person what to fix."""


class _LineBuffer:
    """Incremental UTF-8 decoding and splitting on "\\n", keeping the unfinished last line."""

    def __init__(self, max_record_chars: int) -> None:
        # utf-8-sig drops a leading BOM even when it is split across blocks.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self._tail = ""
        self._max = max_record_chars

    def split(self, block: bytes, *, final: bool) -> tuple[list[str], str]:
        """Return the complete lines now available and their text joined by "\\n"."""
        text = self._tail + self._decoder.decode(block, final)
        if final:
            self._tail = ""
            return (text.split("\n") if text else []), text
        cut = text.rfind("\n")
        if cut < 0:
            self._tail = text
            self._check_size()
            return [], ""
        self._tail = text[cut + 1 :]
        self._check_size()
        body = text[:cut]
        return body.split("\n"), body

    def _check_size(self) -> None:
        if len(self._tail) > self._max:
            raise UploadError(_too_long(self._max))


class CsvParser:
    """RFC 4180 CSV with a header line; values stay strings exactly as written."""

    def __init__(self, *, max_record_chars: int = DEFAULT_MAX_RECORD_CHARS) -> None:
        self._lines = _LineBuffer(max_record_chars)
        self._max = max_record_chars
        self._columns: list[str] | None = None
        self._row = 0
        # Physical lines of a record whose quoted field is still open, and its size so far.
        self._open: list[str] | None = None
        self._open_quotes = 0
        self._open_chars = 0

    @property
    def columns(self) -> list[str] | None:
        return None if self._columns is None else list(self._columns)

    def feed(self, block: bytes) -> list[ParsedRecord]:
        lines, body = self._lines.split(block, final=False)
        return self._records(lines, body) if lines else []

    def close(self) -> list[ParsedRecord]:
        lines, body = self._lines.split(b"", final=True)
        out = self._records(lines, body) if lines else []
        if self._open is not None:
            self._open = None
            if self._columns is None:
                raise UploadError("the CSV header has an unterminated quoted field")
            self._row += 1
            out.append(ParsedRecord(self._row, None, UNTERMINATED))
        if self._columns is None:
            raise UploadError("the upload is empty")
        return out

    def _records(self, lines: list[str], body: str) -> list[ParsedRecord]:
        dirty = _has_undecodable(body)
        if self._open is None and '"' not in body:
            logical = lines  # the common case: no quotes, so one line is one record
        else:
            logical, joined_dirty = self._join_quoted(lines)
            dirty = dirty or joined_dirty
        records = [line for line in logical if line and not line.isspace()]
        if self._columns is None:
            if not records:
                return []
            self._columns = _header(records[0])
            del records[0]
        if not dirty:
            return self._parse(records)
        out: list[ParsedRecord] = []
        run: list[str] = []
        for record in records:
            if _UNDECODABLE.search(record) is None:
                run.append(record)
                continue
            out += self._parse(run)
            run = []
            self._row += 1
            out.append(ParsedRecord(self._row, None, NOT_UTF8))
        out += self._parse(run)
        return out

    def _join_quoted(self, lines: list[str]) -> tuple[list[str], bool]:
        """Join physical lines into logical records: a record ends when its quotes pair up."""
        out: list[str] = []
        dirty = False
        parts, quotes, size = self._open, self._open_quotes, self._open_chars
        for line in lines:
            count = line.count('"')
            if parts is None:
                if count & 1 == 0:
                    out.append(line)
                    continue
                parts, quotes, size = [line], count, len(line)
                continue
            parts.append(line)
            quotes += count
            size += len(line) + 1
            if quotes & 1 == 0:
                record = "\n".join(parts)
                out.append(record)
                parts = None
                # Its parts may come from earlier blocks, whose check is not carried over.
                dirty = dirty or _UNDECODABLE.search(record) is not None
            elif size > self._max:
                raise UploadError(_too_long(self._max))
        self._open, self._open_quotes, self._open_chars = parts, quotes, size
        return out, dirty

    def _parse(self, records: list[str]) -> list[ParsedRecord]:
        """Parse clean logical records with one reader; fall back to one per record on error."""
        if not records:
            return []
        first = self._row + 1
        self._row += len(records)
        try:
            rows = list(csv.reader(records))
        except csv.Error:
            rows = []
        if len(rows) != len(records):
            # A record broke the batch (a stray CR, or a quote that opened late and swallowed
            # the next record): parse each alone so only the broken one fails.
            return [self._parse_one(row, record) for row, record in enumerate(records, first)]
        columns = self._columns
        assert columns is not None
        width = len(columns)
        # The hot loop: one dict per row, built inline rather than through a method call.
        return [
            ParsedRecord(row, dict(zip(columns, values, strict=False)))  # widths checked here
            if len(values) == width
            else _width_error(row, width, len(values))
            for row, values in enumerate(rows, first)
        ]

    def _parse_one(self, row: int, record: str) -> ParsedRecord:
        try:
            rows = list(csv.reader((record,)))
        except csv.Error as exc:
            return ParsedRecord(row, None, f"malformed CSV: {_csv_problem(exc, record)}")
        if len(rows) != 1:
            return ParsedRecord(row, None, "malformed CSV record")
        return self._make(row, rows[0])

    def _make(self, row: int, values: list[str]) -> ParsedRecord:
        columns = self._columns
        assert columns is not None
        if len(values) != len(columns):
            return _width_error(row, len(columns), len(values))
        return ParsedRecord(row, dict(zip(columns, values, strict=True)))


def _width_error(row: int, expected: int, found: int) -> ParsedRecord:
    return ParsedRecord(row, None, f"expected {expected} fields, found {found}")


def _csv_problem(exc: csv.Error, text: str) -> str:
    """The csv module's complaint, reworded where it speaks to Python programmers."""
    if "\r" in text.rstrip("\r"):
        return "a carriage return (\\r) inside an unquoted field; lines must end in LF or CRLF"
    return str(exc)


def _header(line: str) -> list[str]:
    if _BINARY.search(line):
        raise UploadError(
            "the upload does not look like CSV: its first line contains binary data (NUL bytes "
            "or other control characters)"
        )
    if _UNDECODABLE.search(line):
        raise UploadError(
            "the upload does not look like CSV text: its first line is not valid UTF-8 "
            "(save the file with UTF-8 encoding)"
        )
    try:
        names = [name.strip() for name in next(csv.reader((line,)))]
    except csv.Error as exc:
        raise UploadError(f"the CSV header cannot be read: {_csv_problem(exc, line)}") from None
    seen: set[str] = set()
    for position, name in enumerate(names, 1):
        if not name:
            raise UploadError(f"CSV header column {position} has an empty name")
        if name in seen:
            raise UploadError(f"CSV header names column {name!r} more than once")
        seen.add(name)
    return names


class NdjsonParser:
    """Newline-delimited JSON: one object per non-blank line, values keep their JSON types."""

    def __init__(self, *, max_record_chars: int = DEFAULT_MAX_RECORD_CHARS) -> None:
        self._lines = _LineBuffer(max_record_chars)
        self._columns: list[str] | None = None
        self._row = 0
        self._seen_any = False

    @property
    def columns(self) -> list[str] | None:
        return None if self._columns is None else list(self._columns)

    def feed(self, block: bytes) -> list[ParsedRecord]:
        lines, body = self._lines.split(block, final=False)
        return self._records(lines, body) if lines else []

    def close(self) -> list[ParsedRecord]:
        lines, body = self._lines.split(b"", final=True)
        out = self._records(lines, body) if lines else []
        if not self._seen_any:
            raise UploadError("the upload is empty")
        return out

    def _records(self, lines: list[str], body: str) -> list[ParsedRecord]:
        dirty = _has_undecodable(body)
        out: list[ParsedRecord] = []
        for line in lines:
            if not line or line.isspace():
                continue
            self._seen_any = True
            self._row += 1
            if dirty and _UNDECODABLE.search(line):
                out.append(ParsedRecord(self._row, None, NOT_UTF8))
                continue
            out.append(self._record(self._row, line))
        return out

    def _record(self, row: int, line: str) -> ParsedRecord:
        try:
            value = _decode_json(line)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            return ParsedRecord(row, None, f"invalid JSON: {reason}")
        except RecursionError:
            return ParsedRecord(row, None, "invalid JSON: nested too deeply")
        if type(value) is not dict:
            return ParsedRecord(row, None, NOT_AN_OBJECT)
        # JSON escapes can spell lone surrogates, which no UTF-8 sink can store.
        if "\\u" in line and _has_lone_surrogate(value):
            return ParsedRecord(row, None, LONE_SURROGATE)
        if self._columns is None:
            self._columns = list(value)
        return ParsedRecord(row, _json_fields(value))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_decode_json = json.JSONDecoder(parse_constant=_reject_constant).decode


def _json_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Flatten values to what a chunk can carry; the dict is returned as is when already flat."""
    for value in obj.values():
        if isinstance(value, dict | list) or (
            type(value) is int and not _LONG_MIN <= value <= _LONG_MAX
        ):
            return {key: _json_value(item) for key, item in obj.items()}
    return obj


def _json_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if type(value) is int and not _LONG_MIN <= value <= _LONG_MAX:
        return str(value)  # too wide for a long: keep the digits rather than lose the record
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _ANY_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _has_undecodable(text: str) -> bool:
    """Whether decoding met bytes that are not UTF-8, checked a whole block at a time."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")  # only surrogates fail, and only surrogateescape made them
    except UnicodeEncodeError:
        return True
    return False


def _too_long(limit: int) -> str:
    return (
        f"a record is longer than {limit:,} characters: check for an unbalanced quote, "
        "or whether the file is really CSV or NDJSON text"
    )


RecordParser = CsvParser | NdjsonParser

_CSV_TYPES = frozenset({"text/csv"})
_NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson"})


def parser_for(content_type: str) -> CsvParser | NdjsonParser:
    """The parser for an upload's media type; parameters such as charset are ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _CSV_TYPES:
        return CsvParser()
    if media_type in _NDJSON_TYPES:
        return NdjsonParser()
    raise UploadError(
        f"unsupported content type {content_type!r}: send text/csv or application/x-ndjson"
    )


def records_from_json_items(items: list[Any]) -> Iterator[ParsedRecord]:
    """Records of an inline JSON batch, numbered from 1 like an upload's rows."""
    for row, item in enumerate(items, 1):
        if not isinstance(item, dict):
            yield ParsedRecord(row, None, NOT_AN_OBJECT)
        elif _has_lone_surrogate(item):
            yield ParsedRecord(row, None, LONE_SURROGATE)
        else:
            yield ParsedRecord(row, dict(_json_fields(item)))  # a copy: the items stay the caller's
