"""Files the `sluice` command writes: the format a name asks for, and writing under a temporary
name so that a broken download never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from api.cli.errors import CANT_CREATE, CliError

FORMATS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def format_of(name: str) -> tuple[str | None, bool]:
    """The format a file name asks for (None: its suffix names none) and whether it ends in
    .gz (gzip-compressed): `users.ndjson.gz` → (ndjson, True), `x.txt` → (None, False)."""
    path = Path(name)
    compressed = path.suffix.lower() == ".gz"
    return FORMATS.get((path.with_suffix("") if compressed else path).suffix.lower()), compressed


@contextlib.contextmanager
def written(path: Path, part: str = "part") -> Iterator[Path]:
    """A temporary name beside `path`, renamed to it once the block has written it whole, and
    removed if the block fails."""
    temp = path.with_name(f".{path.name}.{part}")
    try:
        temp.touch()
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", CANT_CREATE) from None
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
