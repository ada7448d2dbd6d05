"""The registry of job types: adding a type is one module and one line here."""

from __future__ import annotations

from streams.exceptions import RequestError
from streams.jobtypes.base import JobType
from streams.jobtypes.user_export import UserExport
from streams.jobtypes.user_import import UserImport

JOB_TYPES: dict[str, JobType] = {
    job_type.name: job_type for job_type in (UserImport(), UserExport())
}


def get_job_type(name: str | None) -> JobType:
    """The job type called `name`; a RequestError naming the known types otherwise."""
    if not name:
        raise RequestError(
            f"'type' is required (one of: {', '.join(sorted(JOB_TYPES))})", field="type"
        )
    try:
        return JOB_TYPES[name]
    except KeyError:
        raise RequestError(
            f"unknown job type {name!r} (one of: {', '.join(sorted(JOB_TYPES))})", field="type"
        ) from None


__all__ = ["JOB_TYPES", "JobType", "get_job_type"]
