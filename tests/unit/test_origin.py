"""The origin mark: the API vouches for its caller's tenant; an upstream chunk may name only the
tenants SLUICE_UPSTREAM_TENANTS lists."""

from __future__ import annotations

import pytest

from streams.models import Chunk
from streams.wire.origin import ORIGIN_HEADER, TenantCheck, TenantNotAllowed, origin_mark, vouched

KEY = b"k" * 32
JOB = "8f14e45f-ceea-467f-a0e6-000000000001"


def chunk(tenant: str, job_id: str = JOB) -> Chunk:
    return Chunk(job_id, "user-import", tenant, 0, 0, 0, {}, [])


def test_a_mark_of_the_api_vouches_for_its_tenant_and_job() -> None:
    headers = [("sluice-job-id", JOB.encode()), (ORIGIN_HEADER, origin_mark(KEY, "alice", JOB))]
    assert vouched(KEY, headers) == ("alice", JOB)
    assert vouched(KEY, dict(headers)) == ("alice", JOB)  # Faust may hand a mapping


@pytest.mark.parametrize(
    "mark",
    [
        None,
        origin_mark(b"another key of 32 characters....", "alice", JOB),
        origin_mark(KEY, "alice", JOB).replace(b"alice", b"mallory"),
        origin_mark(KEY, "alice", JOB)[:-1] + b"0",
        b"alice",
        b"",
        b"\xff\xfe not text",
    ],
)
def test_no_mark_or_a_forged_one_vouches_for_nothing(mark: bytes | None) -> None:
    headers = [] if mark is None else [(ORIGIN_HEADER, mark)]
    assert vouched(KEY, headers) is None


def test_a_vouched_chunk_may_act_for_its_tenant_only() -> None:
    check = TenantCheck.of(KEY, [(ORIGIN_HEADER, origin_mark(KEY, "alice", JOB))], set())
    check.check(chunk("alice"))
    with pytest.raises(TenantNotAllowed, match="mallory"):
        check.check(chunk("mallory"))  # the mark is alice's
    with pytest.raises(TenantNotAllowed):
        check.check(chunk("alice", JOB.replace("1", "2")))  # and for that job only


def test_an_upstream_chunk_may_name_the_listed_tenants_only() -> None:
    check = TenantCheck.of(KEY, None, {"default", "acme"})
    check.check(chunk("default"))
    check.check(chunk("acme"))
    with pytest.raises(TenantNotAllowed, match="SLUICE_UPSTREAM_TENANTS"):
        check.check(chunk("alice"))
    with pytest.raises(TenantNotAllowed, match="no tenant"):
        TenantCheck.of(KEY, None, set()).check(chunk("default"))
