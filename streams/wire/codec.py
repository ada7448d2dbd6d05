"""Avro encode/decode for every record Sluice puts on Kafka; the only module importing fastavro
(streams/wire/records.py reads producers' Avro values through `parse_avro`, `fingerprint64` and
`read_avro` below; streams/wire/outcomes.py writes outcome events with `write_avro`).

Wire format: one magic byte 0 and a 4-byte big-endian schema id, then the schemaless Avro body
(the Confluent framing, so a schema registry can take over the ids later). A union of records
decodes as a `(full name, record)` pair so the reader knows which branch it got. Each `.avsc`
directly in `schemas/` names its id in the `sluice.schemaId` attribute (the input record schemas
in schemas/records/ are not Sluice's messages: streams/wire/records.py reads them). Messages are
written with the newest version of their record family and read with it too: older versions
resolve through Avro's schema evolution rules (new fields need defaults).
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.config import settings
from streams.exceptions import PoisonMessage

MAGIC = 0
_HEADER = struct.Struct(">bI")
SCHEMA_ID_ATTRIBUTE = "sluice.schemaId"

CHUNK = "sluice.Chunk"
PROGRESS_EVENT = "sluice.ProgressEvent"


@dataclass(frozen=True)
class SchemaVersion:
    schema_id: int
    family: str
    version: int
    parsed: Any
    record_unions: bool  # decode its unions of records as (name, record) pairs


def _has_record_union(node: Any) -> bool:
    if isinstance(node, list):
        if any(isinstance(b, dict) and b.get("type") == "record" for b in node):
            return True
        return any(_has_record_union(b) for b in node)
    if isinstance(node, dict):
        return any(
            _has_record_union(v)
            for k, v in node.items()
            if k in ("type", "fields", "items", "values")
        )
    return False


class Codec:
    """All schema versions found in a directory, indexed by id and by family."""

    def __init__(self, directory: Path):
        self._by_id: dict[int, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        for path in sorted(directory.glob("*.avsc")):
            raw = json.loads(path.read_text())
            family = f"{raw['namespace']}.{raw['name']}"
            version = int(path.stem.rsplit(".v", 1)[1])
            entry = SchemaVersion(
                raw[SCHEMA_ID_ATTRIBUTE], family, version, parse_schema(raw), _has_record_union(raw)
            )
            if entry.schema_id in self._by_id:
                raise ValueError(f"{path.name}: schema id {entry.schema_id} is used twice")
            self._by_id[entry.schema_id] = entry
            current = self._latest.get(family)
            if current is None or current.version < version:
                self._latest[family] = entry

    def latest(self, family: str) -> SchemaVersion:
        return self._latest[family]

    def version(self, schema_id: int) -> SchemaVersion:
        return self._by_id[schema_id]

    def encode(self, family: str, record: dict[str, Any], *, schema_id: int | None = None) -> bytes:
        """Encode with the family's newest schema (or an explicit older one, for tests)."""
        entry = self._latest[family] if schema_id is None else self._by_id[schema_id]
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC, entry.schema_id))
        schemaless_writer(buffer, entry.parsed, record)
        return buffer.getvalue()

    def decode(self, family: str, data: bytes | None) -> dict[str, Any]:
        """Decode into the newest schema of `family`; anything unreadable is a PoisonMessage."""
        if not data or len(data) < _HEADER.size:
            raise PoisonMessage("message is empty or shorter than the Avro frame header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise PoisonMessage(f"unknown magic byte {magic}: not a Sluice Avro message")
        writer = self._by_id.get(schema_id)
        if writer is None:
            raise PoisonMessage(f"unknown schema id {schema_id}")
        if writer.family != family:
            raise PoisonMessage(f"schema id {schema_id} is a {writer.family}, expected {family}")
        reader = self._latest[family]
        try:
            body = io.BytesIO(data)
            body.seek(_HEADER.size)
            record = schemaless_reader(body, writer.parsed, reader.parsed, return_record_name=True)
        except Exception as exc:  # fastavro raises several types for corrupt bodies
            raise PoisonMessage(f"corrupt Avro body: {type(exc).__name__}") from exc
        if not isinstance(record, dict):
            raise PoisonMessage("Avro body is not a record")
        return record

    def schema_id_of(self, data: bytes) -> int | None:
        """The schema id in a message's frame, or None when it has none."""
        if len(data) < _HEADER.size:
            return None
        magic, schema_id = _HEADER.unpack_from(data)
        return schema_id if magic == MAGIC else None


def parse_avro(raw: Any) -> Any:
    """A schema (JSON value) parsed for reading; raises ValueError when it is not one."""
    try:
        return parse_schema(raw)
    except Exception as exc:  # fastavro raises several types for bad schemas
        raise ValueError(f"not an Avro schema: {exc}") from exc


def fingerprint64(parsed: Any) -> int:
    """The CRC-64-AVRO fingerprint of a schema's Parsing Canonical Form, as an integer (fastavro
    gives its little-endian bytes in hex)."""
    text = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(text), "little")


def write_avro(parsed: Any, record: dict[str, Any]) -> bytes:
    """The binary Avro body of `record` written with the schema `parsed`, with no header."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


def read_avro(data: bytes, start: int, writer: Any, reader: Any | None) -> Any:
    """The Avro body at `data[start:]`, written with `writer`, resolved to `reader` (None: as
    written). Raises whatever fastavro raises for a corrupt body or schemas that do not
    resolve; the body must be read to its last byte."""
    body = io.BytesIO(data)
    body.seek(start)
    decoded = schemaless_reader(body, writer, reader)
    if body.tell() != len(data):
        raise ValueError(f"{len(data) - body.tell()} bytes after the Avro body")
    return decoded


@lru_cache(maxsize=1)
def codec() -> Codec:
    """The schemas of this checkout, parsed once per process."""
    return Codec(settings().schema_dir)
