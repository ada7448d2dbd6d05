"""What one message on an input topic (`<app>.in.<type>`) is: a record, or a batch's `begin` or
`end`; whose job it belongs to; and which record of that job it is.

Pure: headers and value in, an `IntakeMessage` out. Everything a producer can get wrong about a
record is that record's failure (its job still counts it); only a message that cannot be given
to any job (a tenant it may not act for, an unreadable batch header) is refused outright.

- Job: a batch header `sluice-batch` (the producer's id, up to 200 characters) names one job per
  (tenant, type, batch); without it, the record joins the standing job of its tenant, type and
  UTC day (of the message's timestamp, so that reading it again names the same job). Job ids
  are UUIDs derived from those names: any worker reading any partition names the same job.
- Record: its row number is the producer's `sluice-seq` (1 to 2^40) when given, so a producer
  retrying a record never makes it two records; else one derived from where it was read
  (partition and offset), above every seq.
- Value: read by the `read_value` the caller passes (streams/wire/records.py: JSON or Avro, with
  the registry's writer schemas already looked up), by default as a JSON object; what cannot be
  read (`Unreadable`) fails the record alone.
- Outcome form: what a message says of the form of its job's outcome events (`choice_of`): the
  `sluice-outcome-format` header (on a begin or a record), else a batch record's own form (Avro
  or JSON, by its first bytes); a standing job's records say JSON, a begin without it nothing.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from streams.access import valid_tenant
from streams.intake.days import day_of
from streams.wire.outcomes import AVRO, FORMS, JSON
from streams.wire.records import Unreadable, is_avro

#: a record's value -> its fields; raises Unreadable with the reason
ValueReader = Callable[[bytes | None], dict[str, Any]]

BATCH_HEADER = "sluice-batch"
TENANT_HEADER = "sluice-tenant"
CONTROL_HEADER = "sluice-control"
SEQ_HEADER = "sluice-seq"
OUTCOME_FORMAT_HEADER = "sluice-outcome-format"
MAX_BATCH_ID = 200
MAX_SEQ = 2**40
_OFFSET_ROWS = 2**52  # rows of records without a seq: 2^52 + partition·2^40 + offset
MAX_PARTITION = 2**10
_JOBS = uuid.UUID("5f1d3c1e-8a44-4f0b-9a53-0c1b7c5e2a10")  # the namespace of derived job ids

RECORD, BEGIN, END = "record", "begin", "end"


class Refused(Exception):
    """The message cannot belong to any job: it goes to the dead-letter topic."""


@dataclass(frozen=True)
class IntakeMessage:
    kind: str  # record | begin | end
    tenant: str
    job_type: str
    job_id: str
    batch: str | None  # None: the standing job of the day
    row: int = 0
    fields: dict[str, Any] | None = None
    error: str | None = None  # why the record cannot be read (it fails alone)
    options: dict[str, Any] = field(default_factory=dict)  # begin
    count: int | None = None  # end
    day: str | None = None  # a record without a batch: its standing job's UTC day
    outcome_format: str | None = None  # the producer's explicit choice (begin, record)
    value_form: str | None = None  # a record's: avro | json


def choice_of(message: IntakeMessage) -> str | None:
    """The outcome form the message chooses for its job: an explicit choice; else a batch
    record's own form; else JSON for a standing job; None for a begin without a choice."""
    if message.outcome_format is not None:
        return message.outcome_format
    if message.batch is None:
        return JSON
    return message.value_form


@functools.lru_cache(maxsize=4096)  # one per batch, not one per record: uuid5 costs
def job_id_of(tenant: str, job_type: str, batch: str | None, day: str | None) -> str:
    name = (
        f"batch\n{tenant}\n{job_type}\n{batch}"
        if batch is not None
        else (f"day\n{tenant}\n{job_type}\n{day}")
    )
    return str(uuid.uuid5(_JOBS, name))


def _text(headers: dict[str, bytes], name: str) -> str | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"header {name} is not UTF-8") from None


def _tenant(headers: dict[str, bytes], default: str, allowed: frozenset[str]) -> str:
    tenant = _text(headers, TENANT_HEADER) or default
    if not valid_tenant(tenant):
        raise Refused(f"header {TENANT_HEADER} is not a tenant name ({tenant[:64]!r})")
    if tenant not in allowed:
        raise Refused(
            f"tenant {tenant!r} may not be named on this topic "
            f"(SLUICE_UPSTREAM_TENANTS: {', '.join(sorted(allowed)) or 'none'})"
        )
    return tenant


def _batch(headers: dict[str, bytes]) -> str | None:
    batch = _text(headers, BATCH_HEADER)
    if batch is not None and not 1 <= len(batch) <= MAX_BATCH_ID:
        raise Refused(f"header {BATCH_HEADER} must be 1-{MAX_BATCH_ID} characters")
    if batch is not None and "\x00" in batch:  # PostgreSQL text cannot hold it
        raise Refused(f"header {BATCH_HEADER} must not contain a NUL character")
    return batch


def _outcome_format(headers: dict[str, bytes]) -> tuple[str | None, str | None]:
    """The chosen outcome form, and why the header cannot be used (its message then fails)."""
    raw = headers.get(OUTCOME_FORMAT_HEADER)
    if raw is None:
        return None, None
    chosen = raw.decode("ascii", errors="replace").strip().lower()
    if chosen in FORMS:
        return chosen, None
    return None, f"header {OUTCOME_FORMAT_HEADER} must be {' or '.join(FORMS)}"


def row_of(headers: dict[str, bytes], partition: int, offset: int) -> tuple[int, str | None]:
    """The record's row number, and why its seq header cannot be used (then it fails)."""
    derived = _OFFSET_ROWS + (partition % MAX_PARTITION) * MAX_SEQ + offset
    raw = headers.get(SEQ_HEADER)
    if raw is None:
        return derived, None
    text = raw.decode("ascii", errors="replace")
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_SEQ:
        return int(text), None
    return derived, f"header {SEQ_HEADER} must be an integer from 1 to {MAX_SEQ}"


def _json_object(value: bytes | None, what: str) -> tuple[dict[str, Any] | None, str | None]:
    if value is None:
        return None, f"{what} has no value"
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None, f"{what} is not valid JSON (UTF-8)"
    if not isinstance(parsed, dict):
        return None, f"{what} must be a JSON object"
    return parsed, None


def _record_fields(
    value: bytes | None, read_value: ValueReader | None
) -> tuple[dict[str, Any] | None, str | None]:
    if read_value is None:
        return _json_object(value, "the record")
    try:
        return read_value(value), None
    except Unreadable as exc:
        return None, str(exc)


def read_message(
    *,
    job_type: str,
    headers: dict[str, bytes],
    value: bytes | None,
    partition: int,
    offset: int,
    timestamp_ms: int,
    default_tenant: str,
    allowed_tenants: frozenset[str],
    read_value: ValueReader | None = None,
    topic: str = "",
) -> IntakeMessage:
    """Classify one input message; raises Refused when no job can be named for it."""
    tenant = _tenant(headers, default_tenant, allowed_tenants)
    batch = _batch(headers)
    day = None if batch is not None else day_of(timestamp_ms)
    job_id = job_id_of(tenant, job_type, batch, day)
    control = _text(headers, CONTROL_HEADER)
    chosen, choice_problem = _outcome_format(headers)
    if control is not None:
        message = _control(control, value, tenant, job_type, job_id, batch)
        if message.kind != BEGIN:  # an end chooses nothing: a bad header must not refuse it
            return message
        if choice_problem is not None:
            raise Refused(choice_problem)
        return replace(message, outcome_format=chosen)
    row, seq_problem = row_of(headers, partition, offset)
    fields, error = _record_fields(value, read_value)
    if seq_problem is not None or choice_problem is not None:
        fields, error = None, seq_problem or choice_problem
    if error is not None:
        error = f"{error} ({topic}[{partition}]@{offset})"
    form = AVRO if is_avro(value) else JSON
    return IntakeMessage(
        RECORD,
        tenant,
        job_type,
        job_id,
        batch,
        row,
        fields,
        error,
        day=day,
        outcome_format=chosen,
        value_form=form,
    )


def _control(
    control: str, value: bytes | None, tenant: str, job_type: str, job_id: str, batch: str | None
) -> IntakeMessage:
    if batch is None:
        raise Refused(f"a {CONTROL_HEADER} message needs a {BATCH_HEADER} header")
    body, error = _json_object(value, f"the {control} message")
    if control == BEGIN:
        options = (body or {}).get("options", {})
        if error is not None or not isinstance(options, dict):
            raise Refused(error or 'a begin message is {"options": {...}}')
        return IntakeMessage(BEGIN, tenant, job_type, job_id, batch, options=options)
    if control == END:
        count = (body or {}).get("count")
        if error is not None or isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Refused(error or 'an end message is {"count": N}, N ≥ 0')
        return IntakeMessage(END, tenant, job_type, job_id, batch, count=count)
    raise Refused(f"{CONTROL_HEADER} must be begin or end, not {control[:20]!r}")
