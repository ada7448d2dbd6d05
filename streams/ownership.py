"""Which worker owns a job's progress: the one assigned the job's partition of the job-progress
table. Status lookups are answered there (api/owners.py) and a job's result is made there
(streams/agents/finish.py); Faust's partition assignor knows every worker's URL."""

from __future__ import annotations

from typing import Any

from streams import topics


def own_url(app: Any) -> str:
    return str(app.conf.canonical_url).rstrip("/")


def owner_url(app: Any, job_id: str) -> str | None:
    """The URL of the worker owning `job_id`'s progress; None while owners are not known."""
    try:
        owner = app.router.key_store(topics.PROGRESS_TABLE, job_id)
    except KeyError:
        return None
    return str(owner).rstrip("/")


def owns(app: Any, job_id: str) -> bool:
    return owner_url(app, job_id) == own_url(app)
