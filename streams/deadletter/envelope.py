"""A dead letter's envelope: the original bytes, untouched, with headers on what went wrong."""

from __future__ import annotations

import re
from typing import Any

from streams.clock import now_ms
from streams.topics import dead_letter_topic
from streams.wire.codec import codec
from streams.wire.origin import ORIGIN_HEADER

# Connection strings and secrets must not leak into headers people read.
_URL_WITH_CREDENTIALS = re.compile(r"\b[\w+.-]+://[^\s@]+@[^\s]+")
MAX_MESSAGE_CHARS = 500


def sanitize(message: str) -> str:
    """First line of an error message, without URLs that carry credentials, bounded."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return _URL_WITH_CREDENTIALS.sub("<redacted-url>", first_line)[:MAX_MESSAGE_CHARS]


def dead_letter_headers(
    *,
    error: object,
    attempts: int,
    first_failure_ms: int,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    job_id: str | None,
    chunk_index: int | None,
    schema_id: int | None,
    replay_of: str | None = None,
    tenant: str | None = None,
    origin: str | None = None,
) -> list[tuple[str, bytes]]:
    values: dict[str, Any] = {
        # an exception, or a classified failure naming the original error it carries
        "error-class": getattr(error, "error_class", type(error).__name__),
        "error-message": sanitize(getattr(error, "message", str(error))),
        "attempts": attempts,
        "first-failure-at": first_failure_ms,
        "last-failure-at": now_ms(),
        "source-topic": source_topic,
        "source-partition": source_partition,
        "source-offset": source_offset,
        "job-id": job_id,
        "tenant": tenant,  # whose it is: only that tenant's keys (and admin) see it
        "chunk-index": chunk_index,
        "schema-id": schema_id,
        "replay-of": replay_of,  # it failed again after a replay of that dead letter
        "origin": origin,  # the API's mark, kept for a replay (streams/wire/origin.py)
    }
    return [(f"sluice-{k}", str(v).encode()) for k, v in values.items() if v is not None]


def _header(message: Any, name: str) -> str | None:
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == name and value is not None:
            return bytes(value).decode(errors="replace")
    return None


async def dead_letter(
    producer: Any,
    message: Any,
    error: object,
    *,
    attempts: int = 1,
    first_failure_ms: int = 0,
    job_id: str | None = None,
    chunk_index: int | None = None,
    tenant: str | None = None,
) -> None:
    """Publish `message` (a Faust Message) to its source topic's dead-letter topic, and wait."""
    headers = dead_letter_headers(
        error=error,
        attempts=attempts,
        first_failure_ms=first_failure_ms or now_ms(),
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        job_id=job_id,
        chunk_index=chunk_index,
        schema_id=codec().schema_id_of(message.value or b""),
        replay_of=_header(message, "sluice-replay-of"),
        tenant=tenant or None,
        origin=_header(message, ORIGIN_HEADER),
    )
    await producer.send_and_wait(
        dead_letter_topic(message.topic),
        message.key,
        message.value,
        partition=None,
        timestamp=None,
        headers=headers,
    )
