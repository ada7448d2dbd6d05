"""The chunk record on the wire: Chunk <-> Avro bytes (schemas/chunk.v*.avsc).

From version 3 a chunk lists its column names once and each record's values as strings in that
order: encoding a map of five-branch unions per record cost ~16 µs, this costs ~2.5 µs. Values
of JSON uploads keep their types as JSON text (`jsonValues`; an absent key is `null`). Versions
1 and 2 (a map per record) still decode. Version 4 adds `lane` (-1 when older): >= 0 marks an
intake chunk, whose progress counts by lane rather than by partition (streams/progress.py).

Decoding checks what names the chunk before anything else may use it: a job id that is not a
canonical UUID, a chunk index, partition, sequence or lane out of range, or a tenant outside the
tenant rule is PoisonMessage naming the field (dead-lettered at once, counted in no job). A
record whose values do not match the columns, or are not JSON where they should be, fails
alone: it decodes with `fields` None and an `error` saying why, like an unreadable upload row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from streams.access import TENANT_RULE, valid_tenant
from streams.exceptions import PoisonMessage
from streams.models import Chunk
from streams.wire.codec import CHUNK, codec

_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NULL = "null"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_INT = 2**31 - 1  # the ledger's and the progress state's integer columns


def _union_of_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for record in records:
        if record["fields"] is not None:
            columns.update(dict.fromkeys(record["fields"]))
    return list(columns)


def _values(chunk: Chunk) -> tuple[list[str], bool, list[list[str]]]:
    """Columns, whether values are JSON text, and each record's values in column order."""
    if chunk.columns and not chunk.json_values:
        # CSV: every readable record's fields are the header, in order (the splitter says so)
        return (
            list(chunk.columns),
            False,
            [[] if r["fields"] is None else list(r["fields"].values()) for r in chunk.records],
        )
    columns = _union_of_keys(chunk.records)
    width = len(columns)
    typed = chunk.json_values or any(  # JSON text also tells an absent key from an empty one
        len(r["fields"]) != width or not all(isinstance(v, str) for v in r["fields"].values())
        for r in chunk.records
        if r["fields"] is not None
    )
    rows: list[list[str]] = []
    for record in chunk.records:
        fields = record["fields"]
        if fields is None:
            rows.append([])
        elif typed:
            rows.append([_NULL if (v := fields.get(c)) is None else _json_text(v) for c in columns])
        else:
            rows.append([fields[c] for c in columns])
    return columns, typed, rows


def encode_chunk(chunk: Chunk, *, submitted_at_ms: int = 0) -> bytes:
    columns, typed, values = _values(chunk)
    records = [
        {"row": r["row"], "fields": None, "values": v, "error": r["error"]}
        for r, v in zip(chunk.records, values, strict=True)
    ]
    return codec().encode(
        CHUNK,
        {
            "jobId": chunk.job_id,
            "jobType": chunk.job_type,
            "tenant": chunk.tenant,
            "chunkIndex": chunk.chunk_index,
            "partition": chunk.partition,
            "partitionSeq": chunk.partition_seq,
            "options": json.dumps(chunk.options, separators=(",", ":")),
            "records": records,
            "attempt": chunk.attempt,
            "submittedAt": submitted_at_ms,
            "columns": columns,
            "jsonValues": typed,
            "lane": chunk.lane,
        },
    )


def _record(record: Mapping[str, Any], columns: list[str], typed: bool) -> dict[str, Any]:
    """A record off the wire; one whose values cannot be read fails alone (fields None)."""
    row, error = record["row"], record["error"]
    if record["fields"] is not None:  # versions 1-2
        return {"row": row, "fields": dict(record["fields"]), "error": error}
    if error is not None:
        return {"row": row, "fields": None, "error": error}
    values = record["values"]
    if len(values) != len(columns):
        error = f"record has {len(values)} values, the chunk's columns are {len(columns)}"
        return {"row": row, "fields": None, "error": error}
    if typed:
        try:
            values = [json.loads(v) for v in values]
        except ValueError:
            return {"row": row, "fields": None, "error": "record has a value that is not JSON"}
    return {"row": row, "fields": dict(zip(columns, values, strict=True)), "error": None}


def _check_identity(record: Mapping[str, Any]) -> None:
    """The fields naming the chunk fit the ledger's columns and Sluice's rules, or the chunk
    is poison: nothing of it reaches the database."""
    job_id = record["jobId"]
    if not _UUID.fullmatch(job_id):
        raise PoisonMessage(
            f"jobId {job_id[:64]!r} ({len(job_id)} characters) is not a canonical UUID "
            "(36 characters: lowercase hex 8-4-4-4-12)"
        )
    for name, least in (("chunkIndex", 0), ("partitionSeq", 0), ("partition", -1), ("lane", -1)):
        if not least <= record[name] <= MAX_INT:
            raise PoisonMessage(f"{name} {record[name]} is out of range ({least} to 2^31-1)")
    tenant = record["tenant"]
    if not valid_tenant(tenant):
        raise PoisonMessage(f"tenant {tenant[:64]!r} ({len(tenant)} characters): {TENANT_RULE}")


def decode_chunk(data: bytes | None) -> Chunk:
    """Decode a chunk of any schema version; unreadable input raises PoisonMessage."""
    record = codec().decode(CHUNK, data)
    _check_identity(record)
    try:
        options = json.loads(record["options"])
    except ValueError:
        raise PoisonMessage("chunk options are not JSON") from None
    if not isinstance(options, dict):
        raise PoisonMessage("chunk options are not a JSON object")
    columns, typed = record["columns"], record["jsonValues"]
    width = len(columns)
    records = []
    for r in record["records"]:
        values, error = r["values"], r["error"]
        if error is None and not typed and r["fields"] is None and len(values) == width:
            # the common case (version 3, text values), inline: it runs once per record
            fields = dict(zip(columns, values, strict=True))
            records.append({"row": r["row"], "fields": fields, "error": None})
        else:
            records.append(_record(r, columns, typed))
    return Chunk(
        job_id=record["jobId"],
        job_type=record["jobType"],
        tenant=record["tenant"],
        chunk_index=record["chunkIndex"],
        partition=record["partition"],
        partition_seq=record["partitionSeq"],
        options=options,
        records=records,
        attempt=record["attempt"],
        columns=tuple(columns),
        json_values=typed,
        lane=record["lane"],
    )


def raw_record(row: int, fields: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    """One record of a chunk, before encoding."""
    return {"row": row, "fields": fields, "error": error}


def chunk_header(chunk: Chunk) -> Sequence[tuple[str, bytes]]:
    """Kafka headers that let people read a chunk's identity without decoding it."""
    return (
        ("sluice-job-id", chunk.job_id.encode()),
        ("sluice-chunk-index", str(chunk.chunk_index).encode()),
    )
