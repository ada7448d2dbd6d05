"""Uploads → numbered records: push parsers for CSV and NDJSON, records of inline JSON batches,
and the one table of upload formats (media types and file names) every door uses."""

from __future__ import annotations

from streams.exceptions import UploadError
from streams.parse.csv_parser import CsvParser
from streams.parse.json_records import NdjsonParser, json_body, records_from_json_items
from streams.parse.lines import ParseLimits

CSV = "text/csv"
NDJSON = "application/x-ndjson"
# media type → the canonical one; parameters such as charset are ignored
UPLOAD_TYPES = {CSV: CSV, NDJSON: NDJSON, "application/ndjson": NDJSON}
FILE_SUFFIXES = {".csv": CSV, ".ndjson": NDJSON, ".jsonl": NDJSON}

RecordParser = CsvParser | NdjsonParser


def media_type(content_type: str) -> str | None:
    """The canonical upload media type of a Content-Type header, None for any other type."""
    return UPLOAD_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def media_type_of_file(name: str) -> str | None:
    """The upload media type a file name's suffix says, None when it says none."""
    lowered = name.lower()
    return next((kind for suffix, kind in FILE_SUFFIXES.items() if lowered.endswith(suffix)), None)


def parser_for(content_type: str, limits: ParseLimits | None = None) -> RecordParser:
    """The parser for an upload's media type."""
    kind = media_type(content_type)
    if kind == CSV:
        return CsvParser(limits)
    if kind == NDJSON:
        return NdjsonParser(limits)
    raise UploadError(
        f"unsupported content type {content_type!r}: send text/csv or application/x-ndjson"
    )


__all__ = [
    "CSV",
    "FILE_SUFFIXES",
    "NDJSON",
    "CsvParser",
    "NdjsonParser",
    "ParseLimits",
    "RecordParser",
    "json_body",
    "media_type",
    "media_type_of_file",
    "parser_for",
    "records_from_json_items",
]
