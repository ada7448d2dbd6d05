"""Error answers: one JSON shape for every 4xx and 5xx, `{error: {code, message, field?}}`,
safe to show (no stack trace, SQL, path or connection string), and the middleware that gives
every failure that shape, whatever raised it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiokafka.errors import KafkaError

from streams.exceptions import BrokerUnavailable, DatabaseUnavailable, RequestError
from streams.sink.faults import database_away

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CHALLENGE = 'Bearer realm="sluice"'  # how a 401 says which credentials it wants (RFC 6750)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal",
    503: "unavailable",
}


def error_response(
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> web.Response:
    body: dict[str, object] = {"code": code or CODES.get(status, "error"), "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=headers)


def _retry(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        challenge = {"WWW-Authenticate": CHALLENGE} if exc.status == 401 else None
        return error_response(
            exc.status, str(exc), field=exc.field, code=exc.code, headers=challenge
        )
    except (BrokerUnavailable, KafkaError, TimeoutError) as exc:
        message = f"Kafka did not answer ({type(exc).__name__}); retry shortly"
        return error_response(503, message, headers=_retry(BrokerUnavailable.retry_after))
    except DatabaseUnavailable as exc:
        return error_response(503, f"{exc}; retry shortly", headers=_retry(exc.retry_after))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, exc.reason, headers=headers or None)
    except Exception as exc:
        if database_away(exc):
            log.warning("%s %s: the database is away: %s", request.method, request.path, exc)
            message = f"the database is not answering ({type(exc).__name__}); retry shortly"
            return error_response(503, message, headers=_retry(DatabaseUnavailable.retry_after))
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "the request failed on the server; it is logged")
