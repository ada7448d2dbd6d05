"""Error answers: one JSON shape for every 4xx/5xx, and the decorator that maps errors to it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiokafka.errors import KafkaError

from streams.exceptions import RequestError

Handler = Callable[..., Awaitable[web.StreamResponse]]


def error_response(
    status: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, object] = {"message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=headers)


def answers_errors(handler: Handler) -> Handler:
    """A RequestError becomes its 4xx; a broker that does not answer becomes a 503."""

    @functools.wraps(handler)
    async def wrapped(*args: Any) -> web.StreamResponse:
        try:
            return await handler(*args)
        except RequestError as exc:
            return error_response(exc.status, str(exc), field=exc.field)
        except (KafkaError, TimeoutError) as exc:
            return error_response(503, f"Kafka did not answer: {exc}", headers={"Retry-After": "5"})

    return wrapped
