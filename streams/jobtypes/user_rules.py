"""The `user-import` record contract: which fields a user has and when a record is valid (pure).

Fields are checked in column order and the first failure is returned, so a person fixing a
file sees one precise reason per row. `check_formats=False` (job option validate=false) keeps
only what storage needs: the required fields, the types, and the width of each column of the
`users` table (streams/sink/tables.py), since one value too wide would fail the whole chunk.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

COLUMNS: tuple[str, ...] = ("email", "name", "country", "age", "signup_ts")
REQUIRED_COLUMNS = frozenset({"email", "name"})

EMAIL_MAX = 254
LOCAL_PART_MAX = 64
NAME_MAX = 200
AGE_MIN, AGE_MAX = 13, 130
# users.age is a SMALLINT, so even an unchecked age must fit in 16 bits.
STORED_AGE_MIN, STORED_AGE_MAX = -(1 << 15), (1 << 15) - 1

_WHITESPACE = re.compile(r"\s")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# control, format (zero-width, bidirectional), private-use and unpaired surrogate code points
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs"})
NUL = "contains a NUL character"


def _invisible(text: str) -> bool:
    return any(unicodedata.category(c) in _INVISIBLE for c in text if not c.isascii())


@dataclass(frozen=True, slots=True)
class User:
    """A valid user record, normalised for storage (schemas/records/user.v1.avsc)."""

    email: str
    name: str
    country: str | None
    age: int | None
    signup_ts: datetime | None


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why a record is invalid: the first failing column and a short sentence."""

    field: str
    reason: str


def identity(fields: Mapping[str, Any]) -> str | None:
    """The routing and deduplication key: the trimmed email, NFC-normalised and lowercased, if
    there is one (precomposed and decomposed "Änne@…" are one user)."""
    email = fields.get("email")
    if not isinstance(email, str):
        return None
    return _normal(email.strip()).lower() or None


def _normal(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def validate_user(fields: Mapping[str, Any], *, check_formats: bool = True) -> User | FieldError:
    """A `User` when the record is valid, else the first `FieldError` in column order."""
    email = _required_text("email", fields.get("email"))
    if isinstance(email, FieldError):
        return email
    # before measuring: lowercasing can lengthen some characters ("İ")
    email = _normal(email).lower()
    if check_formats:
        problem = _email_problem(email)
        if problem is not None:
            return FieldError("email", problem)
    elif len(email) > EMAIL_MAX:
        return FieldError("email", f"must be at most {EMAIL_MAX} characters")

    name = _required_text("name", fields.get("name"))
    if isinstance(name, FieldError):
        return name
    if len(name) > NAME_MAX:  # the column width, so checked even without check_formats
        return FieldError("name", f"must be 1-{NAME_MAX} characters")

    country = _country(fields.get("country"), check_formats)
    if isinstance(country, FieldError):
        return country
    age = _age(fields.get("age"), check_formats)
    if isinstance(age, FieldError):
        return age
    signup_ts = _signup_ts(fields.get("signup_ts"))
    if isinstance(signup_ts, FieldError):
        return signup_ts
    return User(email, name, country, age, signup_ts)


def _required_text(field: str, raw: Any) -> str | FieldError:
    if raw is None:
        return FieldError(field, "is required")
    if not isinstance(raw, str):
        return FieldError(field, "must be a string")
    if "\x00" in raw:  # PostgreSQL text cannot hold it: the record fails alone
        return FieldError(field, NUL)
    value = raw.strip()
    return value if value else FieldError(field, "is required")


def _email_problem(email: str) -> str | None:
    """What is wrong with a trimmed email's shape, or None when it is acceptable."""
    if email.count("@") != 1:
        return "must contain exactly one @"
    local, _, domain = email.partition("@")
    if not local:
        return "local part is empty"
    if len(local) > LOCAL_PART_MAX:
        return f"local part longer than {LOCAL_PART_MAX} characters"
    if "." not in domain:
        return "domain must contain a dot"
    if "" in domain.split("."):
        return "domain has an empty label"
    if _WHITESPACE.search(email):
        return "must not contain whitespace"
    if _CONTROL.search(email) or (not email.isascii() and _invisible(email)):
        return "must not contain control or invisible characters"
    if len(email) > EMAIL_MAX:
        return f"must be at most {EMAIL_MAX} characters"
    return None


def _optional_text(field: str, raw: Any, wrong_type: str) -> str | FieldError | None:
    """Trimmed text; None for a missing or blank value, as a CSV cell cannot say null."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        return FieldError(field, wrong_type)
    if "\x00" in raw:
        return FieldError(field, NUL)
    return raw.strip() or None


def _country(raw: Any, check_formats: bool) -> str | FieldError | None:
    country = _optional_text("country", raw, "must be a string")
    if country is None or isinstance(country, FieldError):
        return country
    if check_formats:
        if len(country) == 2 and country.isascii() and country.isalpha():
            return country.upper()
        return FieldError("country", "must be two ASCII letters")
    if len(country) > 2:
        return FieldError("country", "must be at most 2 characters")
    return country.upper()


def _age(raw: Any, check_formats: bool) -> int | FieldError | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        digits = text[1:] if text[0] in "+-" else text
        # isdigit() alone admits "²" and other non-ASCII digits that int() rejects.
        if not (digits.isascii() and digits.isdigit()):
            return FieldError("age", "must be an integer")
        if len(digits) > 6 and len(digits.lstrip("0")) > 6:
            return _age_out_of_range(check_formats)  # spare int() a huge conversion
        value = int(text)
    else:
        return FieldError("age", "must be an integer")
    if check_formats:
        if not AGE_MIN <= value <= AGE_MAX:
            return _age_out_of_range(check_formats)
    elif not STORED_AGE_MIN <= value <= STORED_AGE_MAX:
        return _age_out_of_range(check_formats)
    return value


def _age_out_of_range(check_formats: bool) -> FieldError:
    if check_formats:
        return FieldError("age", f"must be between {AGE_MIN} and {AGE_MAX}")
    return FieldError("age", f"must be between {STORED_AGE_MIN} and {STORED_AGE_MAX}")


def _signup_ts(raw: Any) -> datetime | FieldError | None:
    text = _optional_text("signup_ts", raw, "must be an ISO-8601 date-time string")
    if text is None or isinstance(text, FieldError):
        return text
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return FieldError("signup_ts", "not an ISO-8601 date-time")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # naive values are UTC by contract
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 falls before year 1 in UTC
        return FieldError("signup_ts", "is out of range")
