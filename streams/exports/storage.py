"""Where export files live: a small storage interface, local files by default.

Layout: `<dir>/<job id>/part-<chunk index>.gz` while the export runs, then
`<dir>/<job id>/<file name>` and `<dir>/<job id>/result.json` (what the result says, and when it
expires). Every file is written under a temporary name and renamed into place, so a reader never
sees half a file and a writer that dies leaves only a temporary file behind. Writer processes
and the worker assembling the file must see the same directory: with workers on several hosts,
SLUICE_EXPORT_DIR is a shared file system (or another `ExportStorage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from streams.sink.jobs import valid_job_id

RESULT_FILE = "result.json"
FILE_MODE = 0o600
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TEMP_PREFIX = ".tmp-"


def part_name(chunk_index: int) -> str:
    return f"part-{chunk_index:06d}.gz"


def valid_file_name(name: str) -> bool:
    return bool(_FILE_NAME.match(name)) and not name.startswith(_TEMP_PREFIX)


class ExportStorage(ABC):
    """What exports need from a store of files, by job id and file name."""

    @abstractmethod
    def write(self, job_id: str, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A file to write; it appears under `name` only when the block ends without error."""

    @abstractmethod
    def open(self, job_id: str, name: str) -> BinaryIO:
        """Read a file; FileNotFoundError when there is none."""

    @abstractmethod
    def exists(self, job_id: str, name: str) -> bool: ...

    @abstractmethod
    def size(self, job_id: str, name: str) -> int: ...

    @abstractmethod
    def remove(self, job_id: str, name: str) -> None:
        """Remove one file (no error when it is gone already)."""

    @abstractmethod
    def remove_job(self, job_id: str) -> bool:
        """Remove everything of a job; True when there was something."""

    @abstractmethod
    def jobs(self) -> Iterator[str]:
        """The job ids that have files."""

    @abstractmethod
    def last_modified(self, job_id: str) -> float:
        """When a file of the job was last written (epoch seconds); 0 when it has none."""

    def read_result(self, job_id: str) -> dict[str, Any] | None:
        try:
            with self.open(job_id, RESULT_FILE) as source:
                loaded = json.loads(source.read())
        except (FileNotFoundError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def write_result(self, job_id: str, result: dict[str, Any]) -> None:
        with self.write(job_id, RESULT_FILE) as out:
            out.write(json.dumps(result, indent=2).encode())


class LocalStorage(ExportStorage):
    """Files under one directory (SLUICE_EXPORT_DIR)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def job_dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.root / job_id

    def path(self, job_id: str, name: str) -> Path:
        """The file's path on this machine (for serving it)."""
        if not valid_file_name(name):
            raise ValueError(f"not an export file name: {name!r}")
        return self.job_dir(job_id) / name

    @contextlib.contextmanager
    def write(self, job_id: str, name: str) -> Iterator[BinaryIO]:
        final = self.path(job_id, name)
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = final.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}-{name}")
        try:
            # the owner alone reads exports: they hold people's data
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(descriptor, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def open(self, job_id: str, name: str) -> BinaryIO:
        return self.path(job_id, name).open("rb")

    def exists(self, job_id: str, name: str) -> bool:
        return self.path(job_id, name).is_file()

    def size(self, job_id: str, name: str) -> int:
        return self.path(job_id, name).stat().st_size

    def remove(self, job_id: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(job_id, name).unlink()

    def remove_job(self, job_id: str) -> bool:
        folder = self.job_dir(job_id)
        if not folder.exists():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def jobs(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and valid_job_id(entry.name):
                yield entry.name

    def last_modified(self, job_id: str) -> float:
        newest = 0.0
        with contextlib.suppress(FileNotFoundError):
            for entry in self.job_dir(job_id).iterdir():
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, entry.stat().st_mtime)
        return newest


def remove_expired(storage: ExportStorage, now: float, abandoned_after: float) -> list[str]:
    """Remove the exports whose URL expired at `now` (epoch seconds), and the parts of exports
    that never finished (cancelled, failed) once nothing was written for `abandoned_after`
    seconds. Returns the job ids removed."""
    removed = []
    for job_id in list(storage.jobs()):
        result = storage.read_result(job_id)
        if result is not None:
            expired = float(result.get("expires", 0)) <= now
        else:
            expired = storage.last_modified(job_id) + abandoned_after <= now
        if expired and storage.remove_job(job_id):
            removed.append(job_id)
    return removed
