"""Reading an input record's value: JSON, Avro single-object, Confluent-framed Avro."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from streams.intake.messages import RECORD, read_message
from streams.intake.registry import RegistryUnreachable, SchemaRegistry
from streams.wire.codec import Codec
from streams.wire.records import (
    RecordSchemas,
    Unreadable,
    decode_record_value,
    record_schemas,
)

pytestmark = pytest.mark.unit
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
USER_V1 = json.loads((SCHEMAS / "records" / "user.v1.avsc").read_text())
USER = {"email": "ann@example.com", "name": "Ann", "country": "de", "age": 42, "signup_ts": None}


def crc64_avro(text: str) -> int:
    """The Avro spec's fingerprint, written out here to check Sluice's."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in text.encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


USER_V1_CANONICAL = json.dumps(
    {
        "name": "sluice.records.User",
        "type": "record",
        "fields": [
            {"name": "email", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "country", "type": ["null", "string"]},
            {"name": "age", "type": ["null", "int"]},
            {"name": "signup_ts", "type": ["null", "string"]},
        ],
    },
    separators=(",", ":"),
)


def body(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), record)
    return out.getvalue()


def single(record: dict[str, Any], fingerprint: int | None = None) -> bytes:
    fp = crc64_avro(USER_V1_CANONICAL) if fingerprint is None else fingerprint
    return b"\xc3\x01" + fp.to_bytes(8, "little") + body(USER_V1, record)


def test_the_published_fingerprint_is_the_specs() -> None:
    schemas = record_schemas()
    (entry,) = schemas.by_fingerprint.values()
    assert (entry.name, entry.full_name) == ("user.v1", "sluice.records.User")
    assert entry.fingerprint == crc64_avro(USER_V1_CANONICAL)


def test_a_single_object_record_reads_as_its_json_twin() -> None:
    assert decode_record_value(single(USER), record_schemas()) == USER
    minimal = {"email": "b@x.org", "name": "B", "country": None, "age": None, "signup_ts": None}
    assert decode_record_value(single(minimal), record_schemas()) == minimal


def test_an_unknown_fingerprint_or_a_cut_body_is_unreadable() -> None:
    with pytest.raises(
        Unreadable, match=r"unknown Avro schema fingerprint 0000000000000007; known: user\.v1"
    ):
        decode_record_value(single(USER, fingerprint=7), record_schemas())
    with pytest.raises(Unreadable, match="cannot be read"):
        decode_record_value(single(USER)[:-3], record_schemas())
    with pytest.raises(Unreadable, match="truncated"):
        decode_record_value(b"\xc3\x01\x00", record_schemas())
    with pytest.raises(Unreadable, match="bytes after"):
        decode_record_value(single(USER) + b"\x00", record_schemas())


def confluent(schema_id: int, schema: Any, record: dict[str, Any]) -> bytes:
    return struct.pack(">bI", 0, schema_id) + body(schema, record)


OTHER = {  # another team's schema: another name, fewer fields, another order
    "type": "record",
    "name": "Customer",
    "namespace": "com.acme",
    "fields": [{"name": "name", "type": "string"}, {"name": "email", "type": "string"}],
}


def test_a_confluent_frame_reads_with_the_looked_up_writer_schema() -> None:
    writers = {5: parse_schema(USER_V1), 6: parse_schema(OTHER)}

    def lookup(schema_id: int) -> Any:
        if schema_id not in writers:
            raise Unreadable(f"schema registry unreachable for schema id {schema_id}")
        return writers[schema_id]

    schemas = record_schemas()
    assert decode_record_value(confluent(5, USER_V1, USER), schemas, lookup) == USER
    other = confluent(6, OTHER, {"name": "Bo", "email": "bo@x.org"})
    assert decode_record_value(other, schemas, lookup) == {"name": "Bo", "email": "bo@x.org"}
    with pytest.raises(Unreadable, match="unreachable"):
        decode_record_value(confluent(9, OTHER, {"name": "C", "email": "c"}), schemas, lookup)
    with pytest.raises(Unreadable, match="needs SLUICE_SCHEMA_REGISTRY_URL"):
        decode_record_value(confluent(5, USER_V1, USER), schemas)
    with pytest.raises(Unreadable, match="JSON"):
        decode_record_value(b"\x00\x01", schemas, lookup)


def test_json_still_reads_and_fails_as_before() -> None:
    schemas = record_schemas()
    assert decode_record_value(b'{"email": "a@x.org", "age": 3}', schemas) == {
        "email": "a@x.org",
        "age": 3,
    }
    for bad, reason in ((b"{nope", "not valid JSON"), (b"[1]", "JSON object"), (None, "no value")):
        with pytest.raises(Unreadable, match=reason):
            decode_record_value(bad, schemas)


def test_an_unreadable_value_fails_its_record_naming_where_it_was_read() -> None:
    def read(value: bytes) -> Any:
        return read_message(
            job_type="user-import",
            headers={"sluice-seq": b"3"},
            value=value,
            partition=1,
            offset=44,
            timestamp_ms=1_796_000_000_000,
            default_tenant="default",
            allowed_tenants=frozenset({"default"}),
            read_value=lambda v: decode_record_value(v, record_schemas()),
        )

    good = read(single(USER))
    assert (good.kind, good.row, good.fields, good.error) == (RECORD, 3, USER, None)
    bad = read(single(USER, fingerprint=1))
    assert bad.fields is None and bad.error is not None
    assert bad.error.startswith("unknown Avro schema fingerprint") and "([1]@44)" in bad.error


def test_record_schemas_sit_apart_from_the_codecs(tmp_path: Path) -> None:
    (tmp_path / "user.v1.avsc").write_text(json.dumps(USER_V1))
    assert len(RecordSchemas(tmp_path).by_fingerprint) == 1
    with pytest.raises(KeyError):  # Codec reads only the top level: no schema id needed here
        Codec(SCHEMAS).latest("sluice.records.User")


def test_the_registry_is_asked_again_then_the_record_fails_with_the_reason() -> None:
    calls: list[int] = []

    def down(url: str, schema_id: int) -> Any:
        calls.append(schema_id)
        raise RegistryUnreachable("connection refused")

    registry = SchemaRegistry("http://registry", attempts=2, fetch=down)
    asyncio.run(registry.resolve(3))
    assert calls == [3, 3]
    with pytest.raises(Unreadable, match="schema registry unreachable for schema id 3"):
        registry.lookup(3)

    def up(url: str, schema_id: int) -> Any:
        calls.append(schema_id)
        return parse_schema(USER_V1)

    registry = SchemaRegistry("http://registry", size=1, fetch=up)
    for schema_id in (1, 1, 2, 1):
        asyncio.run(registry.resolve(schema_id))
    assert calls[2:] == [1, 2, 1]  # cached, one schema at most
    assert registry.lookup(1)["name"] == "sluice.records.User"
