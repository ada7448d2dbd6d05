"""Retrying: one backoff for everything Sluice tries again, and one helper for side work.

A chunk's retries are scheduled by its partition's parking (streams/processing/parking.py) with
`backoff_delay`; side work that a worker simply tries again in place (a registry row, the
results of a dead-lettered chunk, a job's result, creating tables) runs under `retrying`, which
is tenacity with the same backoff: exponential, full jitter, capped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypedDict

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_random_exponential,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 30.0

ErrorTypes = type[BaseException] | tuple[type[BaseException], ...]
Waits = Callable[[BaseException], bool]
#: the same curve as `backoff_delay`, for tenacity
BACKOFF = wait_random_exponential(multiplier=RETRY_BASE_SECONDS, max=RETRY_CAP_SECONDS)


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
    exponent = min(attempt - 1, 32)  # past 2**32 the cap applies anyway; avoid float overflow
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * (2**exponent))
    return (rng or random).uniform(0, ceiling)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d): %s; retrying", what, state.attempt_number, error)

    return before_sleep


class _Policy(TypedDict):
    stop: stop_base
    wait: wait_base
    retry: retry_base
    before_sleep: Callable[[RetryCallState], None]
    reraise: bool


def _policy(attempts: int | None, what: str, on: ErrorTypes, waits_for: Waits | None) -> _Policy:
    if waits_for is not None and attempts is not None:
        stop: stop_base = _StopAfterCounted(attempts, waits_for)
    else:
        stop = stop_never if attempts is None else stop_after_attempt(attempts)
    return _Policy(
        stop=stop,
        wait=BACKOFF,
        retry=retry_if_exception_type(on),
        before_sleep=_log_retry(what),
        reraise=True,
    )


class _StopAfterCounted(stop_base):
    """Stop after `attempts` failures, not counting those `waits_for` accepts."""

    def __init__(self, attempts: int, waits_for: Waits):
        self.attempts = attempts
        self.waits_for = waits_for
        self.counted = 0

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if error is None or not self.waits_for(error):
            self.counted += 1
        return self.counted >= self.attempts


def retrying(
    attempts: int | None,
    what: str,
    *,
    on: ErrorTypes = Exception,
    waits_for: Waits | None = None,
) -> AsyncRetrying:
    """`async for attempt in retrying(5, "status of job x"): with attempt: ...` — tries up to
    `attempts` times (None: until it succeeds), logs each failure, re-raises the last.
    Failures that `waits_for` accepts (the database is away) do not count: they are waited
    out, however long."""
    return AsyncRetrying(**_policy(attempts, what, on, waits_for))


def retrying_sync(attempts: int | None, what: str, *, on: ErrorTypes = Exception) -> Retrying:
    """The same, for code outside the event loop."""
    return Retrying(**_policy(attempts, what, on, None))
