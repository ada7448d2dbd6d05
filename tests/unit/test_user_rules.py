"""streams.jobtypes.user_rules: the user-import record contract, boundary by boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from streams.jobtypes.user_rules import (
    COLUMNS,
    REQUIRED_COLUMNS,
    FieldError,
    User,
    identity,
    validate_user,
)

BASE: dict[str, Any] = {"email": "ann@example.com", "name": "Ann"}


def check(check_formats: bool = True, **changes: Any) -> User | FieldError:
    """Validate BASE with some fields changed; a value of `...` removes the field."""
    fields = {**BASE, **changes}
    fields = {key: value for key, value in fields.items() if value is not ...}
    return validate_user(fields, check_formats=check_formats)


def valid(check_formats: bool = True, **changes: Any) -> User:
    outcome = check(check_formats, **changes)
    assert isinstance(outcome, User), outcome
    return outcome


def email_of(local: str, domain_length: int) -> str:
    """An address with `local` and a valid domain of exactly `domain_length` characters."""
    labels = []
    remaining = domain_length - 4  # room for ".com"
    while remaining > 0:
        label = min(remaining, 63)
        labels.append("d" * label)
        remaining -= label + 1
    domain = ".".join(labels)
    domain = domain + "d" * (domain_length - 4 - len(domain)) + ".com"
    assert len(domain) == domain_length
    return f"{local}@{domain}"


def test_contract_constants() -> None:
    assert COLUMNS == ("email", "name", "country", "age", "signup_ts")
    assert frozenset({"email", "name"}) == REQUIRED_COLUMNS


def test_minimal_record() -> None:
    assert check() == User("ann@example.com", "Ann", None, None, None)


def test_full_record_is_normalised() -> None:
    outcome = validate_user(
        {
            "email": "  Ann.Lee@Example.COM ",
            "name": "  Ann Lee  ",
            "country": " de ",
            "age": " 42 ",
            "signup_ts": " 2024-01-02T03:04:05+02:00 ",
            "nickname": "ignored",
        }
    )
    assert outcome == User(
        "ann.lee@example.com",
        "Ann Lee",
        "DE",
        42,
        datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
    )


# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., None, "", "   ", "\t\n"])
def test_email_is_required(value: Any) -> None:
    assert check(email=value) == FieldError("email", "is required")


@pytest.mark.parametrize("value", [42, 1.5, True, ["a@b.co"], {"a": 1}])
def test_email_must_be_a_string(value: Any) -> None:
    assert check(email=value) == FieldError("email", "must be a string")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ann.example.com", "must contain exactly one @"),
        ("a@b@example.com", "must contain exactly one @"),
        ("@example.com", "local part is empty"),
        ("ann@", "domain must contain a dot"),
        ("ann@localhost", "domain must contain a dot"),
        ("a@b..c", "domain has an empty label"),
        ("a@.b.c", "domain has an empty label"),
        ("a@b.c.", "domain has an empty label"),
        ("a@.", "domain has an empty label"),
        ("an n@example.com", "must not contain whitespace"),
        ("ann@exa\tmple.com", "must not contain whitespace"),
        ("ann@example.com\u00a0x", "must not contain whitespace"),
    ],
)
def test_email_shape(value: str, reason: str) -> None:
    assert check(email=value) == FieldError("email", reason)


def test_email_local_part_boundary() -> None:
    assert valid(email="a" * 64 + "@example.com").email == "a" * 64 + "@example.com"
    assert check(email="a" * 65 + "@example.com") == FieldError(
        "email", "local part longer than 64 characters"
    )


def test_email_total_length_boundary() -> None:
    at_limit = email_of("a" * 64, 254 - 65)
    assert len(at_limit) == 254
    assert valid(email=at_limit).email == at_limit
    over = email_of("a" * 64, 255 - 65)
    assert len(over) == 255
    assert check(email=over) == FieldError("email", "must be at most 254 characters")


def test_email_length_is_measured_after_trimming() -> None:
    at_limit = email_of("a" * 64, 254 - 65)
    assert valid(email=f"  {at_limit}  ").email == at_limit


def test_email_is_trimmed_and_lowercased() -> None:
    assert valid(email="\t Ann@Example.COM \n").email == "ann@example.com"


def test_email_non_ascii_is_accepted() -> None:
    assert valid(email="José@Exämple.de").email == "josé@exämple.de"


# --- name ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., None, "", "   "])
def test_name_is_required(value: Any) -> None:
    assert check(name=value) == FieldError("name", "is required")


@pytest.mark.parametrize("value", [7, False, ["Ann"]])
def test_name_must_be_a_string(value: Any) -> None:
    assert check(name=value) == FieldError("name", "must be a string")


def test_name_length_boundaries() -> None:
    assert valid(name="A").name == "A"
    assert valid(name="n" * 200).name == "n" * 200
    assert valid(name="  " + "n" * 200 + "  ").name == "n" * 200
    assert check(name="n" * 201) == FieldError("name", "must be 1-200 characters")


def test_name_counts_characters_not_bytes() -> None:
    assert valid(name="é" * 200).name == "é" * 200
    assert valid(name="😀 José").name == "😀 José"


# --- country ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., None, "", "  "])
def test_country_is_optional(value: Any) -> None:
    assert valid(country=value).country is None


@pytest.mark.parametrize(("value", "stored"), [("de", "DE"), ("DE", "DE"), (" fr ", "FR")])
def test_country_is_upper_cased(value: str, stored: str) -> None:
    assert valid(country=value).country == stored


@pytest.mark.parametrize("value", ["D", "DEU", "1A", "D-", "ÄÖ", "d e"])
def test_country_must_be_two_ascii_letters(value: str) -> None:
    assert check(country=value) == FieldError("country", "must be two ASCII letters")


def test_country_must_be_a_string() -> None:
    assert check(country=49) == FieldError("country", "must be a string")


# --- age -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., None, "", "   "])
def test_age_is_optional(value: Any) -> None:
    assert valid(age=value).age is None


@pytest.mark.parametrize(
    ("value", "stored"), [(13, 13), (130, 130), (42, 42), ("42", 42), (" 42 ", 42), ("+42", 42)]
)
def test_age_accepted(value: Any, stored: int) -> None:
    age = valid(age=value).age
    assert age == stored and type(age) is int


@pytest.mark.parametrize("value", [12, 131, "12", "131", -1, 0, "-20", "99999999999999999999"])
def test_age_range(value: Any) -> None:
    assert check(age=value) == FieldError("age", "must be between 13 and 130")


@pytest.mark.parametrize("value", ["42.5", "42.0", "abc", "4 2", "4_2", "²", "0x2A", "-", "1e2"])
def test_age_strings_that_are_not_integers(value: str) -> None:
    assert check(age=value) == FieldError("age", "must be an integer")


@pytest.mark.parametrize("value", [42.0, 42.5, True, False, [42], {"age": 42}])
def test_age_json_values_that_are_not_integers(value: Any) -> None:
    assert check(age=value) == FieldError("age", "must be an integer")


def test_age_leading_zeros() -> None:
    assert valid(age="042").age == 42
    assert valid(age="0000000042").age == 42


# --- signup_ts -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., None, "", "  "])
def test_signup_ts_is_optional(value: Any) -> None:
    assert valid(signup_ts=value).signup_ts is None


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05.123456", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05+00:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05+02:00", datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)),
        ("2024-01-01T23:30:00-01:00", datetime(2024, 1, 2, 0, 30, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        (" 2024-01-02 ", datetime(2024, 1, 2, tzinfo=UTC)),
    ],
)
def test_signup_ts_is_stored_in_utc(value: str, stored: datetime) -> None:
    signup_ts = valid(signup_ts=value).signup_ts
    assert signup_ts == stored
    assert signup_ts is not None and signup_ts.tzinfo is UTC


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30", "01/02/2024", "T"])
def test_signup_ts_garbage(value: str) -> None:
    assert check(signup_ts=value) == FieldError("signup_ts", "not an ISO-8601 date-time")


@pytest.mark.parametrize("value", [1704164645, 1.5, True, ["2024-01-02"]])
def test_signup_ts_must_be_a_string(value: Any) -> None:
    assert check(signup_ts=value) == FieldError("signup_ts", "must be an ISO-8601 date-time string")


def test_signup_ts_out_of_range_after_conversion() -> None:
    assert check(signup_ts="0001-01-01T00:30:00+01:00") == FieldError(
        "signup_ts", "is out of range"
    )


def test_signup_ts_keeps_the_instant() -> None:
    offset = timezone(timedelta(hours=5, minutes=30))
    signup_ts = valid(signup_ts="2024-06-01T12:00:00+05:30").signup_ts
    assert signup_ts == datetime(2024, 6, 1, 12, tzinfo=offset)


# --- the order of checks ---------------------------------------------------------------------


def test_first_failure_in_column_order_wins() -> None:
    fields = {"email": "bad", "name": "", "country": "X", "age": "x", "signup_ts": "x"}
    assert validate_user(fields) == FieldError("email", "must contain exactly one @")
    fields["email"] = "a@b.co"
    assert validate_user(fields) == FieldError("name", "is required")
    fields["name"] = "A"
    assert validate_user(fields) == FieldError("country", "must be two ASCII letters")
    fields["country"] = "XX"
    assert validate_user(fields) == FieldError("age", "must be an integer")
    fields["age"] = "20"
    assert validate_user(fields) == FieldError("signup_ts", "not an ISO-8601 date-time")


# --- check_formats=False ---------------------------------------------------------------------


def test_unchecked_formats_skip_the_format_rules() -> None:
    outcome = validate_user(
        {"email": " Not An Email ", "name": "N", "country": "x1", "age": "7"},
        check_formats=False,
    )
    assert outcome == User("not an email", "N", "X1", 7, None)


def test_unchecked_formats_skip_the_local_part_and_age_range() -> None:
    assert valid(False, email="a" * 65 + "@x").email == "a" * 65 + "@x"
    assert valid(False, age=200).age == 200
    assert valid(False, age="-5").age == -5


def test_unchecked_formats_still_require_email_and_name() -> None:
    assert check(False, email=" ") == FieldError("email", "is required")
    assert check(False, email=...) == FieldError("email", "is required")
    assert check(False, name=None) == FieldError("name", "is required")
    assert check(False, email=5) == FieldError("email", "must be a string")


def test_unchecked_formats_still_coerce_types() -> None:
    assert check(False, age="42.5") == FieldError("age", "must be an integer")
    assert check(False, age=42.0) == FieldError("age", "must be an integer")
    assert check(False, signup_ts="soon") == FieldError("signup_ts", "not an ISO-8601 date-time")
    assert valid(False, signup_ts="2024-01-02").signup_ts == datetime(2024, 1, 2, tzinfo=UTC)


def test_unchecked_formats_still_fit_the_country_column() -> None:
    assert valid(False, country="d").country == "D"
    assert valid(False, country="  ").country is None
    assert check(False, country="DEU") == FieldError("country", "must be at most 2 characters")


def test_unchecked_formats_still_fit_the_other_columns() -> None:
    # users.email is 254 wide, users.name 200 and users.age a SMALLINT: a wider value would
    # fail the whole chunk's write, so these stay checked.
    assert check(False, email="a" * 255) == FieldError("email", "must be at most 254 characters")
    assert valid(False, email="a" * 254).email == "a" * 254
    assert check(False, name="n" * 201) == FieldError("name", "must be 1-200 characters")
    assert valid(False, age=32767).age == 32767
    assert valid(False, age="-32768").age == -32768
    assert check(False, age=32768) == FieldError("age", "must be between -32768 and 32767")
    assert check(False, age="99999999999999999999") == FieldError(
        "age", "must be between -32768 and 32767"
    )


# --- identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"email": " Ann@Example.COM "}, "ann@example.com"),
        ({"email": "not an email"}, "not an email"),
        ({"email": ""}, None),
        ({"email": "   "}, None),
        ({"email": None}, None),
        ({"email": 42}, None),
        ({}, None),
    ],
)
def test_identity(fields: dict[str, Any], key: str | None) -> None:
    assert identity(fields) == key


def test_identity_matches_the_stored_email() -> None:
    fields = {"email": "  MiXeD@Case.Org", "name": "M"}
    assert identity(fields) == valid(True, **fields).email
