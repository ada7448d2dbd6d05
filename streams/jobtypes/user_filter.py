"""Which users a `user-export` takes: the `filter` option, its validation, its SQL conditions.

`{country, signupFrom, signupTo, ageMin, ageMax}`, every key optional, all of them must hold:
`country` two ASCII letters (matched upper-case); `signupFrom` ≤ signup_ts < `signupTo` (ISO-8601,
naive values are UTC); `ageMin` ≤ age ≤ `ageMax` (integers from 13 to 130). A user without the
value a filter asks about (no country, no signup time, no age) does not match it. The option is
stored normalised (upper-case country, UTC times with `Z`), as it travels in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement

from streams.exceptions import OptionError
from streams.jobtypes.user_rules import AGE_MAX, AGE_MIN
from streams.sink.tables import users

FILTER_KEYS: tuple[str, ...] = ("country", "signupFrom", "signupTo", "ageMin", "ageMax")


class FilterOption:
    """The `filter` option of user-export (see streams.options for option specs)."""

    @property
    def default(self) -> dict[str, Any]:
        return {}

    def parse(self, name: str, raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):  # a form field or query parameter carries JSON text
            try:
                raw = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise OptionError(name, "must be a JSON object") from None
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise OptionError(name, f"must be an object with keys among {', '.join(FILTER_KEYS)}")
        unknown = sorted(set(raw) - set(FILTER_KEYS))
        if unknown:
            raise OptionError(
                f"{name}.{unknown[0]}", f"is not a known filter (known: {', '.join(FILTER_KEYS)})"
            )
        parsed: dict[str, Any] = {}
        for key in FILTER_KEYS:
            value = raw.get(key)
            if value is None or value == "":
                continue
            field = f"{name}.{key}"
            if key == "country":
                parsed[key] = _country(field, value)
            elif key in ("signupFrom", "signupTo"):
                parsed[key] = _time(field, value)
            else:
                parsed[key] = _age(field, value)
        if "ageMin" in parsed and "ageMax" in parsed and parsed["ageMin"] > parsed["ageMax"]:
            raise OptionError(f"{name}.ageMin", "must not be greater than ageMax")
        if (
            "signupFrom" in parsed
            and "signupTo" in parsed
            and _parse_time(parsed["signupFrom"]) >= _parse_time(parsed["signupTo"])
        ):
            raise OptionError(f"{name}.signupFrom", "must be before signupTo")
        return parsed


def _country(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OptionError(field, "must be a string of two letters")
    text = value.strip()
    if len(text) == 2 and text.isascii() and text.isalpha():
        return text.upper()
    raise OptionError(field, "must be two ASCII letters")


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OptionError(field, "must be an ISO-8601 date-time string")
    try:
        parsed = _parse_time(value.strip())
    except (ValueError, OverflowError):
        raise OptionError(field, "is not an ISO-8601 date-time") from None
    return parsed.isoformat().replace("+00:00", "Z")


def _age(field: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and value.isascii():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(field, "must be an integer")
    if not AGE_MIN <= value <= AGE_MAX:
        raise OptionError(field, f"must be between {AGE_MIN} and {AGE_MAX}")
    return value


def conditions(user_filter: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a parsed filter, on the users table."""
    where: list[ColumnElement[bool]] = []
    if "country" in user_filter:
        where.append(users.c.country == user_filter["country"])
    if "signupFrom" in user_filter:
        where.append(users.c.signup_ts >= _parse_time(user_filter["signupFrom"]))
    if "signupTo" in user_filter:
        where.append(users.c.signup_ts < _parse_time(user_filter["signupTo"]))
    if "ageMin" in user_filter:
        where.append(users.c.age >= user_filter["ageMin"])
    if "ageMax" in user_filter:
        where.append(users.c.age <= user_filter["ageMax"])
    return where
