"""Every topic and table name, and the one rule that derives dead-letter names."""

from __future__ import annotations

DEAD_LETTER_SUFFIX = ".dlq"


def chunk_topic(app_id: str) -> str:
    """Where split chunk records wait for the workers."""
    return f"{app_id}.chunks"


def progress_topic(app_id: str) -> str:
    """Job lifecycle events and chunk outcomes, keyed by job id."""
    return f"{app_id}.progress"


INPUT_INFIX = ".in."


def input_topic(app_id: str, job_type: str) -> str:
    """Where upstream systems produce one job type's records, one per message (docs/upstream.md)."""
    return f"{app_id}{INPUT_INFIX}{job_type}"


def outcome_topic(app_id: str) -> str:
    """Job outcome events for upstream systems (streams/wire/outcomes.py), keyed by job id."""
    return f"{app_id}.outcomes"


def mark_topic(app_id: str) -> str:
    """Marks that say the broker still holds what it held (streams/worker/broker_loss.py)."""
    return f"{app_id}.mark"


def dead_letter_topic(source_topic: str) -> str:
    """The dead-letter topic of a source topic: one per source, by this rule only."""
    return f"{source_topic}{DEAD_LETTER_SUFFIX}"


PROGRESS_TABLE = "job-progress"
