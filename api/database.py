"""The API's side of database faults: a call that meets a connection the pool thought alive is
tried once more on a fresh one; a database still away is DatabaseUnavailable, which the error
middleware (api/errors.py) answers with 503 and Retry-After, never 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from streams.exceptions import DatabaseUnavailable
from streams.sink.faults import database_away

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
            raise DatabaseUnavailable(
                f"the database is not answering ({type(exc).__name__})"
            ) from exc
        raise
