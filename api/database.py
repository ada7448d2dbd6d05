"""The API's side of database faults: a call that meets a connection the pool thought alive is
tried once more on a fresh one; a database that is away is a 503 with Retry-After, never a 500,
whichever endpoint met it (the middleware)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from api.errors import Handler, error_response
from streams.exceptions import DatabaseUnavailable
from streams.sink.faults import database_away

log = logging.getLogger(__name__)
T = TypeVar("T")


async def database(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` off the event loop; once more if the database dropped the connection
    (the pool has let the dead one go); DatabaseUnavailable if it is away."""
    try:
        return await asyncio.to_thread(function, *args)
    except Exception as exc:
        if not database_away(exc):
            raise
    try:
        return await asyncio.to_thread(function, *args)
    except Exception as exc:
        if database_away(exc):
            raise DatabaseUnavailable(_not_answering(exc)) from exc
        raise


@web.middleware
async def database_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DatabaseUnavailable as exc:
        return _unavailable(str(exc))
    except Exception as exc:
        if not database_away(exc):
            raise
        log.warning("%s %s: the database is away: %s", request.method, request.path, exc)
        return _unavailable(_not_answering(exc))


def _not_answering(exc: BaseException) -> str:
    return f"the database is not answering ({type(exc).__name__})"


def _unavailable(message: str) -> web.Response:
    retry = str(DatabaseUnavailable.retry_after)
    return error_response(503, f"{message}; retry shortly", headers={"Retry-After": retry})
