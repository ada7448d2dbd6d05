"""Failure policy: which errors are worth retrying, and how long to wait (pure functions)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from streams.exceptions import PoisonMessage, TransientError

RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 30.0


@dataclass(frozen=True)
class Decision:
    retry: bool
    reason: str


def classify(exc: BaseException) -> Decision:
    """Map an exception raised while applying a chunk to what happens to the chunk."""
    if isinstance(exc, PoisonMessage):
        return Decision(False, "poison")
    if isinstance(exc, TransientError | OperationalError | ConnectionError | TimeoutError):
        return Decision(True, "transient")
    if isinstance(exc, IntegrityError):
        # a concurrent redelivery wrote the ledger row first: the retry finds it
        return Decision(True, "conflict")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Decision(True, "transient")
    # Unknown errors get the retry budget too: a bug fixed by a redeploy can then be replayed
    # from the dead-letter topic instead of being lost.
    return Decision(True, "error")


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
    exponent = min(attempt - 1, 32)  # past 2**32 the cap applies anyway; avoid float overflow
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * (2**exponent))
    return (rng or random).uniform(0, ceiling)
