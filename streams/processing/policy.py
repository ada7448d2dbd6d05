"""Failure policy: from an error applying a chunk to what happens to the chunk (pure).

Two steps, because the error is raised in a writer process and decided on in the worker:
`classify` turns the exception into a `Failure` where it was raised (it pickles, and keeps the
original error class); `decide` weighs it against the chunk's attempts and its budget
(`retryAttempts`) and answers `Retry(delay)` or `DeadLetter(reason)`. Records that fail
validation are not errors: a job type reports them in its `ChunkResult`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from streams.exceptions import PoisonMessage, TransientError
from streams.options import COMMON_OPTIONS
from streams.retry import backoff_delay

DEFAULT_RETRY_ATTEMPTS: int = COMMON_OPTIONS["retryAttempts"].default


@dataclass(frozen=True)
class Failure:
    """What went wrong applying a chunk, as the worker decides on it."""

    error_class: str
    message: str
    reason: str  # poison | transient | conflict | error
    #: the least the error asked to wait before a retry (TransientError.delay)
    delay: float = 0.0

    @property
    def retryable(self) -> bool:
        return self.reason != "poison"

    def __str__(self) -> str:
        return f"{self.error_class}: {self.message}"


@dataclass(frozen=True)
class Retry:
    delay: float


@dataclass(frozen=True)
class DeadLetter:
    reason: str


def classify(exc: BaseException) -> Failure:
    """Map an exception raised while applying a chunk to the failure it means."""
    return Failure(type(exc).__name__, str(exc), _reason(exc), getattr(exc, "delay", 0.0))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PoisonMessage):
        return "poison"
    if isinstance(exc, TransientError | OperationalError | ConnectionError | TimeoutError):
        return "transient"
    if isinstance(exc, IntegrityError):
        # a concurrent redelivery wrote the ledger row first: the retry finds it
        return "conflict"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "transient"
    # Unknown errors get the retry budget too: a bug fixed by a redeploy can then be replayed
    # from the dead-letter topic instead of being lost.
    return "error"


def decide(
    failure: Failure, attempts: int, budget: int, rng: random.Random | None = None
) -> Retry | DeadLetter:
    """After `attempts` failed attempts (1-based) with `budget` retries allowed."""
    if not failure.retryable:
        return DeadLetter(f"{failure.error_class} cannot succeed on a retry")
    if attempts > budget:
        return DeadLetter(f"failed {attempts} time(s), retryAttempts is {budget}")
    return Retry(max(failure.delay, backoff_delay(attempts, rng)))


def retry_budget(options: Mapping[str, Any] | None) -> int:
    """A chunk's `retryAttempts` (the default when its options are unknown or odd)."""
    value = (options or {}).get("retryAttempts", DEFAULT_RETRY_ATTEMPTS)
    return value if isinstance(value, int) else DEFAULT_RETRY_ATTEMPTS
