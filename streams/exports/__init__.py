"""Export files: storage, formats, assembly, signed download URLs, and their clean-up.

The `user-export` job type (streams/jobtypes/user_export.py) writes one gzip part per chunk;
the worker owning the job's progress assembles them (streams/exports/assemble.py); any worker
serves the file on a signed URL (api/exports.py).
"""

from __future__ import annotations

from datetime import datetime

from streams import config
from streams.config import Settings
from streams.exports.storage import ExportStorage, LocalStorage, remove_expired, valid_job_id


def export_storage(settings: Settings | None = None) -> ExportStorage:
    """The storage of this process's settings: local files under SLUICE_EXPORT_DIR."""
    return LocalStorage((settings or config.settings()).export_dir)


def remove_expired_exports(now: datetime, settings: Settings | None = None) -> list[str]:
    """Remove every export whose download URL has expired at `now`, and the parts of exports that
    never finished (cancelled or failed jobs) once untouched for one URL lifetime. For the
    retention task; idempotent, safe to run on every worker at once. Returns the job ids."""
    current = settings or config.settings()
    return remove_expired(
        export_storage(current), now.timestamp(), abandoned_after=current.export_url_seconds
    )


def remove_job_exports(job_id: str, settings: Settings | None = None) -> None:
    """Remove a job's export files now (when the job itself is removed)."""
    if valid_job_id(job_id):
        export_storage(settings).remove_job(job_id)


__all__ = [
    "ExportStorage",
    "LocalStorage",
    "export_storage",
    "remove_expired_exports",
    "remove_job_exports",
]
