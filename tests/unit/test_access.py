"""Keys, scopes and principals (streams/access.py)."""

from __future__ import annotations

import pytest

from streams.access import (
    ADMIN,
    DLQ,
    READ,
    SUBMIT,
    Principal,
    key_prefix,
    key_problem,
    new_key,
    parse_scopes,
    valid_tenant,
)


def test_new_keys_are_long_random_and_named_by_their_prefix() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and {len(k) for k in keys} == {50}
    assert all(key_problem(k) is None and key_prefix(k) == k[:15] for k in keys)


@pytest.mark.parametrize(
    "key",
    [
        "short",
        "sluice_" + "x" * 300,
        "sluice_ has a space 0000000000000",
        "sluice_ünïcode-000000000000000000000",
    ],
)
def test_what_cannot_be_a_key(key: str) -> None:
    assert key_problem(key) is not None


def test_scopes_are_named_canonically_and_unknown_ones_refused() -> None:
    assert parse_scopes(["read", " SUBMIT ", "read"]) == (SUBMIT, READ)
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        parse_scopes(["read", "write"])
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(["", " "])


def test_a_principal_sees_its_own_tenant_and_an_admin_every_one() -> None:
    alice = Principal("alice", (SUBMIT, READ), "sluice_aaaaaaaa")
    assert alice.may(READ) and not alice.may(DLQ) and not alice.admin
    assert alice.sees("alice") and not alice.sees("bob") and not alice.sees(None)
    admin = Principal("ops", (ADMIN,), "sluice_bbbbbbbb")
    assert admin.may(DLQ) and admin.sees("bob") and admin.sees(None)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("acme", True),
        ("a.b_c-9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("-acme", False),
        ("a b", False),
        ("ünï", False),
        ("a/b", False),
    ],
)
def test_tenant_names(name: str, valid: bool) -> None:
    assert valid_tenant(name) is valid
