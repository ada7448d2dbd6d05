"""Every URL the API gives out, built here and nowhere else."""

from __future__ import annotations

API_PREFIX = "/api/batch"
JOBS = f"{API_PREFIX}/jobs"
DLQ = f"{API_PREFIX}/dlq"
EXPORTS = f"{API_PREFIX}/exports"
KEYS = "/api/keys"


def job_url(job_id: str) -> str:
    return f"{JOBS}/{job_id}"


def results_url(job_id: str) -> str:
    return f"{job_url(job_id)}/results"


def download_url(job_id: str, file: str, expires: int, signature: str) -> str:
    """An export file's signed URL (relative, like the other URLs the API gives)."""
    return f"{EXPORTS}/{job_id}/{file}?expires={expires}&signature={signature}"
