"""The registry of job types: adding a type is one module and one line here."""

from __future__ import annotations

from streams.exceptions import RequestError
from streams.jobtypes.base import JobType
from streams.jobtypes.user_export import UserExport
from streams.jobtypes.user_import import UserImport

JOB_TYPES: dict[str, JobType] = {
    job_type.name: job_type for job_type in (UserImport(), UserExport())
}


def input_job_types() -> list[str]:
    """The job types upstream systems may produce records of (those not making their own)."""
    return sorted(name for name, job_type in JOB_TYPES.items() if not job_type.generates_records)


def get_job_type(name: object) -> JobType:
    """The job type called `name` (any value a request may carry); a RequestError naming the
    known types otherwise."""
    known = ", ".join(sorted(JOB_TYPES))
    if not name:
        raise RequestError(f"'type' is required (one of: {known})", field="type")
    if not isinstance(name, str):  # JSON may send a list or an object
        raise RequestError(f"'type' must be a job type's name (one of: {known})", field="type")
    try:
        return JOB_TYPES[name]
    except KeyError:
        raise RequestError(f"unknown job type {name!r} (one of: {known})", field="type") from None


__all__ = ["JOB_TYPES", "JobType", "get_job_type", "input_job_types"]
