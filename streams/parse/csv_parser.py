"""RFC 4180 CSV with a header line, pushed block by block; values stay strings as written."""

from __future__ import annotations

import csv
import re

from streams.exceptions import LimitExceeded, UploadError
from streams.models import ParsedRecord
from streams.parse.lines import (
    NOT_UTF8,
    UNDECODABLE,
    ParseLimits,
    PushParser,
    has_undecodable,
    too_long,
)

UNTERMINATED = "unterminated quoted field"

# Control characters that never occur in a text CSV header (tab, LF and CR are allowed).
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CsvParser(PushParser):
    """A record that cannot be read becomes a `ParsedRecord` with an `error`; only an upload
    unreadable as a whole (no header, a broken header) raises `UploadError`."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        super().__init__(limits)
        # Physical lines of a record whose quoted field is still open, and its size so far.
        self._open: list[str] | None = None
        self._open_quotes = 0
        self._open_chars = 0

    def _finish(self) -> list[ParsedRecord]:
        out = []
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
        dirty = has_undecodable(body)
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
            if len(self._columns) > self.limits.max_columns:
                raise LimitExceeded(
                    f"the CSV header has {len(self._columns)} columns; at most "
                    f"{self.limits.max_columns} (SLUICE_MAX_COLUMNS)",
                    status=400,
                )
            del records[0]
        if not dirty:
            return self._parse(records)
        out: list[ParsedRecord] = []
        run: list[str] = []
        for record in records:
            if UNDECODABLE.search(record) is None:
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
                dirty = dirty or UNDECODABLE.search(record) is not None
            elif size > self._max:
                raise UploadError(too_long(self._max))
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
        columns = self._columns
        assert columns is not None
        if len(rows[0]) != len(columns):
            return _width_error(row, len(columns), len(rows[0]))
        return ParsedRecord(row, dict(zip(columns, rows[0], strict=True)))


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
    if UNDECODABLE.search(line):
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
