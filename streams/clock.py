"""Time as Sluice writes it: epoch milliseconds on the wire, ISO-8601 UTC ("…Z") for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(moment: datetime | None) -> int | None:
    """Epoch milliseconds of `moment`; a naive value is UTC (SQLite hands those back)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`; a naive value is UTC already (SQLite hands those back).
    Runs once per exported row: no work beyond what the value needs."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # drop "+00:00"


def iso_ms(ms: int | None) -> str | None:
    return iso(from_ms(ms))
