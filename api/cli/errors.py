"""How a `sluice` command fails: one line on stderr and an exit code (sysexits-like, listed in the
README), never a traceback.

    CliError            a message and the exit code it ends with
    ├── UsageError      arguments that cannot work (2)
    ├── ApiError        the API answered an error: {error: {code, message}}; the code by status
    ├── Unreachable     nothing answers at the API's URL, or not in time (69)
    └── NotSluice       something answers there, but not as a Sluice API does (76)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from streams.exceptions import ConfigError

OK = 0
FAILED = 1  # the job ended failed or cancelled; --fail-on-errors and a record failed
USAGE = 2
DATA = 65  # the API refused what was sent (400, 409, 413, 415, 422)
NOT_FOUND = 66  # no such job, dead letter or file
UNAVAILABLE = 69  # the API cannot be reached, or answered 5xx
SOFTWARE = 70  # a bug of the CLI itself
CANT_CREATE = 73  # an output file cannot be written
IO = 74
PROTOCOL = 76  # the server at the URL is not a Sluice API
NO_PERMISSION = 77  # no key, a bad or revoked one, or one without the scope (401, 403)
CONFIG = 78  # a malformed setting
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
PIPE = 141  # the reader of stdout went away, e.g. `| head` (128 + SIGPIPE)

POINT_ELSEWHERE = "pass --api-url URL (or set SLUICE_API_URL) to use another"


class CliError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)


class Unreachable(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, UNAVAILABLE)


class NotSluice(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, PROTOCOL)


def code_of_status(status: int) -> int:
    """The exit code of an API error answer."""
    if status in (401, 403):
        return NO_PERMISSION
    if status == 404:
        return NOT_FOUND
    if status in (408, 429) or status >= 500:
        return UNAVAILABLE
    return DATA


class ApiError(CliError):
    def __init__(self, status: int, answer: dict[str, Any], base: str) -> None:
        error = answer.get("error") or {}
        code = error.get("code") or "error"
        super().__init__(
            f"{error.get('message', '')} ({status} {code} from {base})", code_of_status(status)
        )
        self.status = status


def failure(exc: BaseException) -> tuple[str, int]:
    """What a failed command says (empty: nothing) and its exit code."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, BrokenPipeError):
        return "", PIPE  # as other Unix tools: the reader has all it wanted
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(exc, ConfigError):
        return str(exc), CONFIG
    if isinstance(exc, SQLAlchemyError):  # `sluice keys` uses DATABASE_URL itself
        said = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
        return f"the database did not answer: {said[0]}", UNAVAILABLE
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", IO
    return f"unexpected {type(exc).__name__}: {exc} (a bug: please report it)", SOFTWARE
