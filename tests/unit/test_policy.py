"""The failure policy: what an error applying a chunk leads to, given its attempts."""

from __future__ import annotations

import random

import psycopg2
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from streams.exceptions import PoisonMessage, TransientError
from streams.processing.policy import DeadLetter, Retry, classify, decide, retry_budget
from streams.retry import RETRY_CAP_SECONDS


def test_a_retryable_failure_is_retried_within_its_budget_then_dead_lettered() -> None:
    failure = classify(ConnectionError("reset"))
    rng = random.Random(1)
    assert [type(decide(failure, n, 3, rng)) for n in (1, 2, 3, 4)] == [
        Retry,
        Retry,
        Retry,
        DeadLetter,
    ]


def test_a_poison_message_is_dead_lettered_on_its_first_failure() -> None:
    decision = decide(classify(PoisonMessage("unknown magic byte")), 1, 10)
    assert isinstance(decision, DeadLetter)
    assert "PoisonMessage" in decision.reason


def test_a_budget_of_zero_dead_letters_on_the_first_failure() -> None:
    assert isinstance(decide(classify(TimeoutError()), 1, 0), DeadLetter)


def test_a_transient_error_waits_at_least_the_delay_it_asks_for() -> None:
    failure = classify(TransientError("rate limited", delay=7.5))
    assert failure.delay == 7.5
    for attempt in range(1, 4):
        decision = decide(failure, attempt, 5, random.Random(attempt))
        assert isinstance(decision, Retry) and 7.5 <= decision.delay <= RETRY_CAP_SECONDS


@pytest.mark.parametrize(
    ("options", "budget"),
    [({"retryAttempts": 5}, 5), ({}, 3), (None, 3), ({"retryAttempts": "x"}, 3)],
)
def test_the_budget_is_the_chunks_retry_attempts(options: dict | None, budget: int) -> None:
    assert retry_budget(options) == budget


class PgError(psycopg2.OperationalError):
    """A psycopg2 error carrying a SQLSTATE, as the server sends it."""

    def __init__(self, pgcode: str):
        super().__init__(f"SQLSTATE {pgcode}")
        self._pgcode = pgcode

    @property
    def pgcode(self) -> str:  # type: ignore[override]
        return self._pgcode


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            OperationalError("SELECT 1", {}, psycopg2.OperationalError("connection refused")),
            "unavailable",
        ),
        (OperationalError("UPDATE", {}, PgError("55P03")), "unavailable"),  # lock timeout
        (OperationalError("UPDATE", {}, PgError("57014")), "transient"),  # statement timeout
        (OperationalError("UPDATE", {}, PgError("40P01")), "transient"),  # deadlock
        (psycopg2.InterfaceError("connection already closed"), "unavailable"),  # raw, from COPY
        (PoolTimeout("QueuePool limit reached"), "unavailable"),
        (ConnectionError("reset by peer"), "transient"),
    ],
)
def test_a_database_that_is_away_is_told_from_a_chunk_that_fails(
    error: BaseException, reason: str
) -> None:
    assert classify(error).reason == reason


def test_waiting_for_the_database_spends_no_budget_and_backs_off_capped() -> None:
    failure = classify(OperationalError("SELECT 1", {}, psycopg2.OperationalError("gone")))
    for waits in (1, 5, 50, 5_000):
        decision = decide(failure, waits, 0, random.Random(waits))
        assert isinstance(decision, Retry) and decision.waiting
        assert 0 <= decision.delay <= RETRY_CAP_SECONDS
