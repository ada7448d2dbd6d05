"""The retry helper for side work: attempts counted, and failures that only wait."""

from __future__ import annotations

import asyncio

import pytest

from streams import retry


class Away(Exception):
    pass


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF", lambda state: 0)


async def run(attempts: int | None, failures: list[Exception]) -> tuple[int, BaseException | None]:
    calls = 0
    try:
        async for attempt in retry.retrying(
            attempts, "test", waits_for=lambda e: isinstance(e, Away)
        ):
            with attempt:
                calls += 1
                if failures:
                    raise failures.pop(0)
    except Exception as exc:
        return calls, exc
    return calls, None


def test_failures_that_wait_are_not_counted() -> None:
    calls, error = asyncio.run(run(2, [Away(), Away(), Away(), ValueError(), Away()]))
    assert (calls, error) == (6, None)  # one counted failure of two allowed


def test_counted_failures_stop_at_the_limit_and_the_last_is_raised() -> None:
    calls, error = asyncio.run(run(2, [ValueError("a"), Away(), ValueError("b"), Away()]))
    assert calls == 3 and isinstance(error, ValueError) and str(error) == "b"
