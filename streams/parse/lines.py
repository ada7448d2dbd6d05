"""What both upload parsers share: incremental UTF-8 lines, and the push interface.

Blocks may end anywhere: inside a UTF-8 character, a line or a quoted field. A parser holds at
most one unfinished logical record plus one block, never the whole upload.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from streams.config import Settings
from streams.exceptions import UploadError
from streams.models import ParsedRecord

DEFAULT_MAX_RECORD_CHARS = 1 << 20
"""Longest logical record we buffer; past it an unbalanced quote is the likely cause."""


@dataclass(frozen=True)
class ParseLimits:
    """What one upload's records may be (SLUICE_MAX_RECORD_CHARS, _MAX_COLUMNS,
    _MAX_JSON_DEPTH)."""

    max_record_chars: int = DEFAULT_MAX_RECORD_CHARS
    max_columns: int = 200
    max_json_depth: int = 32

    @classmethod
    def of(cls, settings: Settings) -> ParseLimits:
        return cls(settings.max_record_chars, settings.max_columns, settings.max_json_depth)


NOT_UTF8 = "not valid UTF-8"

# surrogateescape maps each undecodable byte to one of these code points.
UNDECODABLE = re.compile("[\udc80-\udcff]")


def has_undecodable(text: str) -> bool:
    """Whether decoding met bytes that are not UTF-8, checked a whole block at a time."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")  # only surrogates fail, and only surrogateescape made them
    except UnicodeEncodeError:
        return True
    return False


def too_long(limit: int) -> str:
    return (
        f"a record is longer than {limit:,} characters: check for an unbalanced quote, "
        "or whether the file is really CSV or NDJSON text"
    )


class LineBuffer:
    """Incremental UTF-8 decoding and splitting on "\\n", keeping the unfinished last line."""

    def __init__(self, max_record_chars: int) -> None:
        # utf-8-sig drops a leading BOM even when it is split across blocks.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self._tail = ""
        self._max = max_record_chars

    def split(self, block: bytes, *, final: bool) -> tuple[list[str], str]:
        """Return the complete lines now available and their text joined by "\\n"."""
        text = self._tail + self._decoder.decode(block, final)
        if final:
            self._tail = ""
            return (text.split("\n") if text else []), text
        cut = text.rfind("\n")
        if cut < 0:
            self._tail = text
            self._check_size()
            return [], ""
        self._tail = text[cut + 1 :]
        self._check_size()
        body = text[:cut]
        return body.split("\n"), body

    def _check_size(self) -> None:
        if len(self._tail) > self._max:
            raise UploadError(too_long(self._max))


class PushParser:
    """Feed an upload's blocks as they arrive; get back the records they complete.

    A subclass turns complete lines into records (`_records`) and says what the end of the
    upload means (`_finish`)."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or ParseLimits()
        self._lines = LineBuffer(self.limits.max_record_chars)
        self._max = self.limits.max_record_chars
        self._columns: list[str] | None = None
        self._row = 0

    @property
    def columns(self) -> list[str] | None:
        """The upload's column names once known (CSV: its header; NDJSON: the first keys)."""
        return None if self._columns is None else list(self._columns)

    def feed(self, block: bytes) -> list[ParsedRecord]:
        lines, body = self._lines.split(block, final=False)
        return self._records(lines, body) if lines else []

    def close(self) -> list[ParsedRecord]:
        lines, body = self._lines.split(b"", final=True)
        out = self._records(lines, body) if lines else []
        return out + self._finish()

    def _records(self, lines: list[str], body: str) -> list[ParsedRecord]:
        raise NotImplementedError

    def _finish(self) -> list[ParsedRecord]:
        raise NotImplementedError
