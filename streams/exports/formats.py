"""Export file formats: user rows as CSV, one JSON array, or NDJSON, in gzip members (pure).

A chunk's rows become one gzip member (a part); the assembler writes the parts in chunk order
between a head, separators and a tail of its own (`head`, `separator`, `tail`). gzip members
concatenate into one valid `.gz` file, so parts are copied as they are, never recompressed:

- csv: head = the header line; RFC 4180 quoting (the stdlib `csv` module, CRLF line ends);
  text cells starting with `=`, `+`, `-`, `@`, tab or carriage return get a leading `'`, so a
  spreadsheet shows them as text instead of running them as formulas. Numbers and times are
  written as they are: they cannot start a formula.
- json: head `[`, tail `]`, and a `,` between non-empty parts: one valid array however the rows
  fall into parts (an empty part contributes nothing).
- ndjson: one object per line.
Times are ISO-8601 in UTC (`Z`); missing values are empty cells (csv) or `null` (json, ndjson).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from typing import Any, BinaryIO

from streams.clock import iso

COLUMNS: tuple[str, ...] = (
    "id",
    "email",
    "name",
    "country",
    "age",
    "signup_ts",
    "created_at",
    "updated_at",
)
FORMATS: tuple[str, ...] = ("csv", "json", "ndjson")
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
# zlib's default trade-off: level 9 is ~3x slower for a few percent
COMPRESS_LEVEL = 6
_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

Row = Sequence[Any]  # values in COLUMNS order


def file_name(fmt: str) -> str:
    return f"users.{fmt}.gz"


def neutralize(text: str) -> str:
    """A cell a spreadsheet will not read as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: str | None) -> str | None:
    return None if value is None else neutralize(value)


# Written out per column rather than a loop over converters: this runs once per exported row.
def csv_cells(row: Row) -> list[Any]:
    user_id, email, name, country, age, signup_ts, created_at, updated_at = row
    return [
        user_id,
        _text(email),
        _text(name),
        _text(country),
        age,
        iso(signup_ts),
        iso(created_at),
        iso(updated_at),
    ]


def json_object(row: Row) -> str:
    user_id, email, name, country, age, signup_ts, created_at, updated_at = row
    return _json_text(
        {
            "id": user_id,
            "email": email,
            "name": name,
            "country": country,
            "age": age,
            "signup_ts": iso(signup_ts),
            "created_at": iso(created_at),
            "updated_at": iso(updated_at),
        }
    )


def member(data: bytes) -> bytes:
    """One gzip member (no name, no time: the same input gives the same bytes)."""
    return gzip.compress(data, compresslevel=COMPRESS_LEVEL, mtime=0)


def head(fmt: str) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out).writerow(COLUMNS)
        return out.getvalue().encode()
    return b"[\n" if fmt == "json" else b""


def separator(fmt: str) -> bytes:
    """Between two non-empty parts."""
    return b",\n" if fmt == "json" else b""


def tail(fmt: str) -> bytes:
    return b"\n]\n" if fmt == "json" else b""


class PartWriter:
    """Rows of one part into `out`, as one gzip member; `close` ends the member."""

    def __init__(self, out: BinaryIO, fmt: str):
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self._fmt = fmt
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=out, compresslevel=COMPRESS_LEVEL, mtime=0
        )
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text) if fmt == "csv" else None
        self.rows = 0

    def write(self, row: Row) -> None:
        if self._csv is not None:
            self._csv.writerow(csv_cells(row))
        elif self._fmt == "json":
            self._text.write((",\n" if self.rows else "") + json_object(row))
        else:
            self._text.write(json_object(row) + "\n")
        self.rows += 1

    def close(self) -> None:
        self._text.close()  # flushes, and ends the gzip member (`out` stays open)

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
