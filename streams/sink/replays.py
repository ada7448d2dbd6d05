"""Which dead letters were replayed, and when: written after each one is published again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from streams.sink.tables import dead_letter_replays

_LOOKUP_BATCH = 500


def replayed_at(engine: Engine, keys: Sequence[str]) -> dict[str, datetime]:
    """When each of `keys` (DeadLetter.dedup_key) was replayed; absent keys never were."""
    found: dict[str, datetime] = {}
    with engine.connect() as connection:
        for start in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[start : start + _LOOKUP_BATCH]
            rows = connection.execute(
                select(dead_letter_replays.c.dead_letter, dead_letter_replays.c.replayed_at).where(
                    dead_letter_replays.c.dead_letter.in_(batch)
                )
            )
            found.update({key: at for key, at in rows})
    return found


def record_replays(engine: Engine, replayed: Iterable[tuple[str, str | None]]) -> None:
    """Remember `(dead letter key, job id)` pairs as replayed now (a second mark is ignored)."""
    rows = [
        {"dead_letter": key, "job_id": job_id, "replayed_at": datetime.now(UTC)}
        for key, job_id in replayed
    ]
    if not rows:
        return
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(dead_letter_replays).on_conflict_do_nothing()
    with engine.begin() as connection:
        connection.execute(statement, rows)
