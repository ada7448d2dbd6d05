"""Reading a record's value on an input topic: a JSON object, or an Avro record.

- JSON: a UTF-8 JSON object, as in an NDJSON upload.
- Avro single-object encoding (the Avro spec): `C3 01`, the 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's Parsing Canonical Form, then the binary body. The writer
  schema must be one Sluice publishes in `schemas/records/` (e.g. `user.v1.avsc`); the body is
  resolved to the newest published version of the same record.
- Confluent framing: `00`, a 4-byte big-endian schema id, then the body. The writer schema is
  the registry's (`SLUICE_SCHEMA_REGISTRY_URL`); the caller looks it up (streams/intake/
  registry.py) and passes a lookup in. The body is resolved to our schema of the same name when
  they resolve, else read as written: field names are what matters.

Pure: bytes in, fields out, or `Unreadable` with the reason (the record then fails alone).
Input topics never carry Sluice's own chunk frames, so `00` here is always Confluent's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from streams.config import settings
from streams.wire.codec import fingerprint64, parse_avro, read_avro

SINGLE_OBJECT = b"\xc3\x01"
_SINGLE_HEADER = len(SINGLE_OBJECT) + 8
CONFLUENT = struct.Struct(">bI")
RECORDS_DIR = "records"  # under SLUICE_SCHEMA_DIR


class Unreadable(Exception):
    """Why a record's value cannot be read: the record fails alone with this reason."""


#: a Confluent schema id -> the writer schema (parsed), or Unreadable with the reason
WriterLookup = Callable[[int], Any]


@dataclass(frozen=True)
class RecordSchema:
    name: str  # the file's stem: user.v1
    full_name: str  # sluice.records.User
    version: int
    parsed: Any
    fingerprint: int


class RecordSchemas:
    """The record schemas published in one directory, by fingerprint and by record name."""

    def __init__(self, directory: Path):
        self.by_fingerprint: dict[int, RecordSchema] = {}
        self.newest: dict[str, RecordSchema] = {}
        for path in sorted(directory.glob("*.avsc")):
            raw = json.loads(path.read_text())
            parsed = parse_avro(raw)
            version = int(path.stem.rsplit(".v", 1)[1])
            entry = RecordSchema(path.stem, parsed["name"], version, parsed, fingerprint64(parsed))
            self.by_fingerprint[entry.fingerprint] = entry
            current = self.newest.get(entry.full_name)
            if current is None or current.version < version:
                self.newest[entry.full_name] = entry

    def known(self) -> str:
        return (
            ", ".join(f"{e.name} {e.fingerprint:016x}" for e in self.by_fingerprint.values())
            or "none"
        )


@lru_cache(maxsize=1)
def record_schemas() -> RecordSchemas:
    """The record schemas of this checkout, parsed once per process."""
    return RecordSchemas(settings().schema_dir / RECORDS_DIR)


def confluent_schema_id(value: bytes | None) -> int | None:
    """The schema id of a Confluent-framed value, or None when it is not one."""
    if value is None or len(value) < CONFLUENT.size or value[0] != 0:
        return None
    return int(CONFLUENT.unpack_from(value)[1])


def is_avro(value: bytes | None) -> bool:
    """Whether a value is framed as Avro (single-object or Confluent), by its first bytes."""
    return value is not None and (value.startswith(SINGLE_OBJECT) or value[:1] == b"\x00")


def decode_record_value(
    value: bytes | None, schemas: RecordSchemas, writer_of: WriterLookup | None = None
) -> dict[str, Any]:
    """The fields of one record's value; raises Unreadable. `writer_of` looks up Confluent
    schema ids (None: no registry is configured)."""
    if value is None:
        raise Unreadable("the record has no value")
    if value.startswith(SINGLE_OBJECT):
        return _single_object(value, schemas)
    if value[:1] == b"\x00":
        return _confluent(value, schemas, writer_of)
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise Unreadable("the record is not valid JSON (UTF-8) nor Avro") from None
    if not isinstance(parsed, dict):
        raise Unreadable("the record must be a JSON object")
    return parsed


def _single_object(value: bytes, schemas: RecordSchemas) -> dict[str, Any]:
    if len(value) < _SINGLE_HEADER:
        raise Unreadable("the record's Avro single-object header is truncated")
    fingerprint = int.from_bytes(value[len(SINGLE_OBJECT) : _SINGLE_HEADER], "little")
    writer = schemas.by_fingerprint.get(fingerprint)
    if writer is None:
        raise Unreadable(
            f"unknown Avro schema fingerprint {fingerprint:016x}; known: {schemas.known()}"
        )
    reader = schemas.newest[writer.full_name]
    return _body(value, _SINGLE_HEADER, writer.parsed, reader.parsed, writer.name)


def _confluent(value: bytes, schemas: RecordSchemas, writer_of: WriterLookup | None) -> dict:
    schema_id = confluent_schema_id(value)
    if schema_id is None:
        raise Unreadable("the record is not valid JSON (UTF-8) nor Avro (a truncated frame)")
    if writer_of is None:
        raise Unreadable(
            f"the record is Confluent-framed Avro (schema id {schema_id}): that needs "
            "SLUICE_SCHEMA_REGISTRY_URL"
        )
    writer = writer_of(schema_id)
    what = f"registry schema id {schema_id}"
    reader = schemas.newest.get(writer["name"]) if isinstance(writer, dict) else None
    if reader is not None:
        try:
            return _body(value, CONFLUENT.size, writer, reader.parsed, what)
        except Unreadable:
            pass  # the schemas do not resolve: read it as written
    return _body(value, CONFLUENT.size, writer, None, what)


def _body(value: bytes, start: int, writer: Any, reader: Any, what: str) -> dict[str, Any]:
    try:
        record = read_avro(value, start, writer, reader)
    except Exception as exc:  # several types, for corrupt bodies or schemas
        raise Unreadable(f"the record's Avro body ({what}) cannot be read: {exc}") from exc
    if not isinstance(record, dict):
        raise Unreadable(f"the record's Avro schema ({what}) is not a record")
    return {name: _plain(name, field) for name, field in record.items()}


def _plain(name: str, value: Any) -> Any:
    """An Avro value as a JSON value would be (logical types as text); bytes are refused."""
    if isinstance(value, dict):
        return {k: _plain(name, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(name, v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        raise Unreadable(f"field {name} is Avro bytes: Sluice takes text, numbers and null")
    return value
