"""Failure policy: from an error applying a chunk to what happens to the chunk (pure).

Two steps, because the error is raised in a writer process and decided on in the worker:
`classify` turns the exception into a `Failure` where it was raised (it pickles, and keeps the
original error class); `decide` weighs it against the chunk's attempts and its budget
(`retryAttempts`) and answers `Retry(delay)` or `DeadLetter(reason)`. A database that is away
(refused or lost connections, no answer, a lock held by a session that vanished) is not the
chunk's fault: the chunk waits for it, retrying with capped backoff without spending its
budget (`Retry(waiting=True)`), so an outage pauses jobs instead of dead-lettering them.
Records that fail validation are not errors: a job type reports them in its `ChunkResult`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from streams.exceptions import PoisonMessage, TransientError
from streams.options import COMMON_OPTIONS
from streams.retry import backoff_delay
from streams.sink.faults import database_away

DEFAULT_RETRY_ATTEMPTS: int = COMMON_OPTIONS["retryAttempts"].default
# A chunk waiting for the database tries again at least this often: it resumes within seconds
# of the database coming back (one chunk per partition tries; the rest wait behind it).
WAIT_CAP_SECONDS = 5.0


@dataclass(frozen=True)
class Failure:
    """What went wrong applying a chunk, as the worker decides on it."""

    error_class: str
    message: str
    reason: str  # poison | unavailable | transient | conflict | error
    #: the least the error asked to wait before a retry (TransientError.delay)
    delay: float = 0.0
    #: a dead-lettered chunk of a job counts in it (its records failed); False for a chunk
    #: that only reused a job's (job, chunk) pair (ChunkConflict): the job's outcome stands
    counts_in_job: bool = True

    @property
    def retryable(self) -> bool:
        return self.reason != "poison"

    @property
    def waits(self) -> bool:
        """The database is away: wait for it without spending the retry budget."""
        return self.reason == "unavailable"

    def __str__(self) -> str:
        return f"{self.error_class}: {self.message}"


@dataclass(frozen=True)
class Retry:
    delay: float
    waiting: bool = False  # for the database, outside the retry budget


@dataclass(frozen=True)
class DeadLetter:
    reason: str


def classify(exc: BaseException) -> Failure:
    """Map an exception raised while applying a chunk to the failure it means."""
    return Failure(
        type(exc).__name__,
        str(exc),
        _reason(exc),
        getattr(exc, "delay", 0.0),
        getattr(exc, "counts_in_job", True),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PoisonMessage):
        return "poison"
    if database_away(exc):
        return "unavailable"
    if isinstance(exc, TransientError | OperationalError | ConnectionError | TimeoutError):
        return "transient"  # among them a statement timeout or a deadlock: spend the budget
    if isinstance(exc, IntegrityError):
        # a concurrent redelivery wrote the ledger row first: the retry finds it
        return "conflict"
    # Unknown errors get the retry budget too: a bug fixed by a redeploy can then be replayed
    # from the dead-letter topic instead of being lost.
    return "error"


def decide(
    failure: Failure, attempts: int, budget: int, rng: random.Random | None = None
) -> Retry | DeadLetter:
    """After `attempts` failed attempts (1-based) with `budget` retries allowed; for a failure
    that `waits`, `attempts` counts the waits so far and only sets the backoff."""
    if failure.waits:
        return Retry(min(backoff_delay(attempts, rng), WAIT_CAP_SECONDS), waiting=True)
    if not failure.retryable:
        return DeadLetter(f"{failure.error_class} cannot succeed on a retry")
    if attempts > budget:
        return DeadLetter(f"failed {attempts} time(s), retryAttempts is {budget}")
    return Retry(max(failure.delay, backoff_delay(attempts, rng)))


def retry_budget(options: Mapping[str, Any] | None) -> int:
    """A chunk's `retryAttempts` (the default when its options are unknown or odd)."""
    value = (options or {}).get("retryAttempts", DEFAULT_RETRY_ATTEMPTS)
    return value if isinstance(value, int) else DEFAULT_RETRY_ATTEMPTS
