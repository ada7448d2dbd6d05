"""The job registry's calls for topic jobs, on PostgreSQL and on SQLite: `ensure_job` makes a
job's row once, whoever calls it and however many at once; `allocate_chunks` hands out disjoint
consecutive blocks of chunk indexes, never one twice, and refuses a job it does not know or
indexes past a chunk index's INTEGER; the outcome form is settled once, by the first to settle
it; the listing finds jobs by batch id; a registry made before the columns gets them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, inspect, text

from streams.sink import chunk_indexes, job_listing
from streams.sink import jobs as job_registry
from streams.sink.database import make_engine
from streams.sink.tables import create_tables

OPTIONS = {"chunkSize": 100, "validate": True}
THREADS = 8
T = TypeVar("T")


@pytest.fixture
def engine(any_database_url: str) -> Iterator[Engine]:
    engine = make_engine(any_database_url, pool_size=THREADS)
    yield engine
    engine.dispose()


def together(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` from `count` threads released at once."""
    start = threading.Barrier(count)

    def one(i: int) -> T:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def new_job(engine: Engine, batch_id: str | None = "batch-1", tenant: str = "acme") -> str:
    job_id = str(uuid.uuid4())
    assert job_registry.ensure_job(engine, job_id, tenant, "user-import", OPTIONS, batch_id)
    return job_id


def test_ensure_job_makes_the_row_once_and_leaves_it_as_it_is(engine: Engine) -> None:
    job_id = str(uuid.uuid4())
    batch = "Lieferung №7 ✓"
    assert job_registry.ensure_job(engine, job_id, "acme", "user-import", OPTIONS, batch)
    first = job_registry.get_job(engine, job_id)
    assert first is not None
    assert (first.tenant, first.type, first.options) == ("acme", "user-import", OPTIONS)
    assert (first.batch_id, first.origin, first.total_records) == (batch, "topic", None)
    again = job_registry.ensure_job(engine, job_id, "other", "user-export", {"x": 1}, "other")
    assert again is False
    assert job_registry.get_job(engine, job_id) == first


def test_one_of_many_concurrent_ensure_job_calls_makes_the_row(engine: Engine) -> None:
    job_id = str(uuid.uuid4())
    made = together(
        THREADS,
        lambda _: job_registry.ensure_job(engine, job_id, "acme", "user-import", OPTIONS, "b"),
    )
    assert sorted(made) == [False] * (THREADS - 1) + [True]
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM sluice_jobs WHERE id = :id"), {"id": job_id}
        ).scalar()
    assert count == 1


def form_of(engine: Engine, job_id: str) -> str | None:
    record = job_registry.get_job(engine, job_id)
    assert record is not None
    return record.outcome_format


def test_the_outcome_form_is_settled_once_by_the_first_to_settle_it(engine: Engine) -> None:
    chosen = str(uuid.uuid4())
    assert job_registry.ensure_job(engine, chosen, "acme", "user-import", OPTIONS, "b", "avro")
    assert job_registry.settle_outcome_format(engine, chosen, "json") == "avro"
    assert form_of(engine, chosen) == "avro"

    open_job = new_job(engine)  # a begin that named no form
    assert form_of(engine, open_job) is None
    settled = together(
        THREADS,
        lambda i: job_registry.settle_outcome_format(engine, open_job, ("json", "avro")[i % 2]),
    )
    assert len(set(settled)) == 1  # every worker sees the one that won
    assert form_of(engine, open_job) == settled[0]


def test_allocate_chunks_hands_out_consecutive_blocks(engine: Engine) -> None:
    job_id = new_job(engine)
    assert chunk_indexes.allocate_chunks(engine, job_id, 1) == 0
    assert chunk_indexes.allocate_chunks(engine, job_id, 10) == 1
    assert chunk_indexes.allocate_chunks(engine, job_id, 5) == 11
    other = new_job(engine)
    assert chunk_indexes.allocate_chunks(engine, other, 3) == 0  # each job counts its own


def test_concurrent_allocations_are_disjoint(engine: Engine) -> None:
    job_id = new_job(engine)
    rounds, block = 5, 4

    def take(_: int) -> list[int]:
        return [chunk_indexes.allocate_chunks(engine, job_id, block) for _ in range(rounds)]

    firsts = [first for taken in together(THREADS, take) for first in taken]
    indexes = sorted(i for first in firsts for i in range(first, first + block))
    assert indexes == list(range(THREADS * rounds * block))


def test_allocating_for_an_unknown_job_is_an_error(engine: Engine) -> None:
    with pytest.raises(chunk_indexes.UnknownJob, match="no job"):
        chunk_indexes.allocate_chunks(engine, str(uuid.uuid4()), 1)
    with pytest.raises(ValueError, match="at least 1"):
        chunk_indexes.allocate_chunks(engine, new_job(engine), 0)


def test_chunk_indexes_never_pass_an_integer(engine: Engine) -> None:
    job_id = new_job(engine)
    top = chunk_indexes.MAX_CHUNK_INDEX
    assert chunk_indexes.allocate_chunks(engine, job_id, top) == 0  # 0 .. 2^31-2
    with pytest.raises(chunk_indexes.ChunkIndexesExhausted, match=str(top)):
        chunk_indexes.allocate_chunks(engine, job_id, 2)
    assert chunk_indexes.allocate_chunks(engine, job_id, 1) == top  # the last one, then none
    with pytest.raises(chunk_indexes.ChunkIndexesExhausted):
        chunk_indexes.allocate_chunks(engine, job_id, 1)


def test_the_listing_finds_a_batchs_jobs(engine: Engine) -> None:
    mine = new_job(engine, "b-1")
    new_job(engine, "b-2")
    theirs = new_job(engine, "b-1", tenant="other")
    api_job = str(uuid.uuid4())
    job_registry.insert_job(engine, api_job, "acme", "user-import", OPTIONS)

    def listed(tenant: str | None, batch_id: str | None) -> set[str]:
        page = job_listing.list_jobs(
            engine, tenant, status=None, job_type=None, limit=10, after=None, batch_id=batch_id
        )
        return {job.id for job in page.jobs}

    assert listed("acme", "b-1") == {mine}
    assert listed(None, "b-1") == {mine, theirs}
    assert listed("acme", "nothing") == set()
    assert listed("acme", "nul\x00inside") == set()
    assert len(listed("acme", None)) == 3
    api = job_registry.get_job(engine, api_job)
    assert api is not None and (api.origin, api.batch_id) == ("api", None)


def test_the_listing_finds_jobs_by_the_start_of_their_id(engine: Engine) -> None:
    ids = [new_job(engine, None) for _ in range(3)]
    other_tenant = new_job(engine, None, tenant="other")

    def listed(tenant: str | None, prefix: str) -> set[str]:
        page = job_listing.list_jobs(
            engine, tenant, status=None, job_type=None, limit=10, after=None, id_prefix=prefix
        )
        return {job.id for job in page.jobs}

    for job_id in ids:
        assert listed("acme", job_id[:13]) == {job_id}  # 8 hex, a dash, 4 hex: unique here
        assert listed("acme", job_id) == {job_id}
    assert listed("acme", "") == set(ids)
    assert listed("acme", other_tenant[:13]) == set()  # another tenant's job is not seen
    assert listed(None, other_tenant[:13]) == {other_tenant}
    assert listed("acme", "%") == set() and listed("acme", "_") == set()  # not wildcards


def test_a_registry_from_before_the_columns_gets_them(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX sluice_jobs_batch"))
        for column in ("batch_id", "origin", "chunks_allocated", "outcome_format"):
            connection.execute(text(f"ALTER TABLE sluice_jobs DROP COLUMN {column}"))
    old = {c["name"] for c in inspect(engine).get_columns("sluice_jobs")}
    assert "origin" not in old
    create_tables(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("sluice_jobs")}
    assert {"batch_id", "origin", "chunks_allocated", "outcome_format"} <= columns
    indexes = {i["name"] for i in inspect(engine).get_indexes("sluice_jobs")}
    assert "sluice_jobs_batch" in indexes
    job_id = new_job(engine)
    assert chunk_indexes.allocate_chunks(engine, job_id, 2) == 0
    engine.dispose()
