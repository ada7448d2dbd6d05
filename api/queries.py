"""Query-string values every list endpoint reads the same way; a bad one is a 400 naming it."""

from __future__ import annotations

from streams.exceptions import RequestError

MAX_PAGE = 1000
DEFAULT_PAGE = 100


def page_limit(value: str | None) -> int:
    """`limit`: 1 to MAX_PAGE items per page (ASCII digits only: `int("²")` would raise)."""
    if value is None:
        return DEFAULT_PAGE
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise RequestError(f"limit must be an integer from 1 to {MAX_PAGE}", field="limit")
    return int(value)
