"""Writer schemas of Confluent-framed input values, from a schema registry
(`SLUICE_SCHEMA_REGISTRY_URL`, `GET <url>/schemas/ids/<id>` → `{"schema": "<json>"}`).

The intake agent resolves a value's schema id before reading the message (streams/wire/
records.py stays pure: it gets `lookup`). A registry that cannot be reached is tried again with
the usual backoff (streams/retry.py) a few times; then the record fails with the reason, as one
the registry does not know does at once. Schemas are cached per id (ids are immutable), a
bounded number of them.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from streams.retry import retrying
from streams.wire.codec import parse_avro
from streams.wire.records import Unreadable

CACHED_SCHEMAS = 256
FETCH_ATTEMPTS = 4
TIMEOUT_SECONDS = 5.0


class RegistryUnreachable(Exception):
    """The registry did not answer (or answered 5xx): worth trying again."""


def fetch_schema(url: str, schema_id: int) -> Any:
    """The registry's schema `schema_id`, parsed (blocking: run it in a thread)."""
    address = f"{url.rstrip('/')}/schemas/ids/{schema_id}"
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT_SECONDS) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise RegistryUnreachable(f"HTTP {exc.code}") from None
        raise Unreadable(f"schema id {schema_id}: the registry answered HTTP {exc.code}") from None
    except (OSError, TimeoutError) as exc:  # URLError is an OSError
        raise RegistryUnreachable(str(exc)) from None
    try:
        document = json.loads(body)
        if document.get("schemaType", "AVRO") != "AVRO":
            raise ValueError(f"a {document['schemaType']} schema")
        return parse_avro(json.loads(document["schema"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Unreadable(f"schema id {schema_id} is not an Avro schema ({exc})") from None


class SchemaRegistry:
    """Writer schemas by id: `await resolve(id)` first, then `lookup(id)` (pure, cached)."""

    def __init__(
        self,
        url: str,
        *,
        attempts: int = FETCH_ATTEMPTS,
        size: int = CACHED_SCHEMAS,
        fetch: Callable[[str, int], Any] = fetch_schema,
    ):
        self.url, self.attempts, self.size, self._fetch = url, attempts, size, fetch
        self._schemas: OrderedDict[int, Any] = OrderedDict()
        self._problems: OrderedDict[int, str] = OrderedDict()

    async def resolve(self, schema_id: int) -> None:
        if schema_id in self._schemas:
            self._schemas.move_to_end(schema_id)
            return
        what = f"schema id {schema_id} from the registry {self.url}"
        try:
            async for attempt in retrying(self.attempts, what, on=RegistryUnreachable):
                with attempt:
                    schema = await asyncio.to_thread(self._fetch, self.url, schema_id)
        except RegistryUnreachable as exc:
            self._problem(
                schema_id, f"schema registry unreachable for schema id {schema_id}: {exc}"
            )
        except Unreadable as exc:
            self._problem(schema_id, str(exc))
        else:
            self._problems.pop(schema_id, None)
            self._schemas[schema_id] = schema
            while len(self._schemas) > self.size:
                self._schemas.popitem(last=False)

    def _problem(self, schema_id: int, reason: str) -> None:
        self._problems[schema_id] = reason
        while len(self._problems) > self.size:
            self._problems.popitem(last=False)

    def lookup(self, schema_id: int) -> Any:
        """The writer schema of `schema_id`; raises Unreadable when it could not be had."""
        schema = self._schemas.get(schema_id)
        if schema is not None:
            return schema
        reason = self._problems.get(schema_id, f"schema id {schema_id} was not looked up")
        raise Unreadable(reason)
