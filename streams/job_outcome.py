"""What became of a finished job's records, at a glance: its `outcome` beside its `status`.

`status` says where the job is in its life (queued, active, completed, failed, cancelled) and
keeps those five values: clients switch on it, and outcome events carry the same values. A job
whose records failed still *completed* (every chunk was accounted for), so `completed` alone
hid 10 failed records out of 10, or 1,000 dead-lettered ones. Rather than a new status such as
`completedWithErrors`, which every client that switches on status would meet as unknown, a
finished job also says what became of its records, as batch APIs do beside their state
(Azure Batch's `result`, Elasticsearch's bulk `errors` flag):

- `clean`: no record failed (skipped records are not failures: a duplicate skipped on purpose);
- `withErrors`: some records failed, others did not;
- `allFailed`: every record of a job that had records failed (dead-lettered ones count).
"""

from __future__ import annotations

from typing import Any

CLEAN, WITH_ERRORS, ALL_FAILED = "clean", "withErrors", "allFailed"
OUTCOMES = (CLEAN, WITH_ERRORS, ALL_FAILED)


def records_outcome(state: dict[str, Any]) -> str:
    """The outcome of a finished job's records, from its progress state's counts."""
    failed, processed = state["failed"], state["records"]
    if failed == 0:
        return CLEAN
    return ALL_FAILED if failed >= processed else WITH_ERRORS
