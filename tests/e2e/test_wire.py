"""The chunk topic's wire contract, against a real broker, a real worker and real PostgreSQL.

Chunks are produced straight to the chunk topic, as an upstream producer (or an older Sluice)
would, so these tests check what the worker does with bytes, not what the API sends. The topic
is internal: a chunk Sluice did not mark must name a job in its registry (`made_by_sluice`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import Engine, text

from streams.jobtypes.user_import import UserImport
from streams.models import Chunk
from streams.sink.jobs import ensure_job
from streams.wire.chunks import encode_chunk
from streams.wire.codec import CHUNK, codec
from streams.wire.origin import ORIGIN_HEADER, origin_mark
from tests.support.kafka_io import emails_on_one_partition, eventually, produce, read_topic
from tests.support.workers import Stack

OPTIONS = UserImport().parse_options({"chunkSize": 100})


def made_by_sluice(db: Engine, job_id: str, tenant: str = "default") -> None:
    """The registry row Sluice makes for a job (as an older Sluice's API made it)."""
    ensure_job(db, job_id, tenant, "user-import", OPTIONS, None)


def users_of(db: Engine, job_id: str) -> dict[str, tuple[Any, ...]]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT email, name, country, age FROM users WHERE batch_job_id = :job"),
            {"job": job_id},
        ).all()
    return {row.email: tuple(row) for row in rows}


def ledger_row(db: Engine, job_id: str) -> Any:
    with db.connect() as connection:
        return connection.execute(
            text(
                "SELECT chunk_index, partition, partition_seq, records, successful, failed "
                "FROM sluice_chunks WHERE job_id = :job"
            ),
            {"job": job_id},
        ).first()


def test_a_chunk_of_the_previous_schema_version_is_applied(stack: Stack, db: Engine) -> None:
    stack.worker().wait_ready()
    job_id = str(uuid.uuid4())
    made_by_sluice(db, job_id)
    partition, emails = emails_on_one_partition(2, "v1-")
    v1_record = {
        "jobId": job_id,
        "jobType": "user-import",
        "chunkIndex": 0,
        "partitionSeq": 0,
        "options": json.dumps(OPTIONS),
        "records": [
            {"row": 1, "fields": {"email": emails[0], "name": "Ada", "country": "gb"}},
            {"row": 2, "fields": {"email": emails[1].upper(), "name": "Bo", "age": "33"}},
        ],
    }
    value = codec().encode(CHUNK, v1_record, schema_id=1)
    assert codec().schema_id_of(value) == 1
    asyncio.run(
        produce(
            stack.bootstrap_servers,
            f"{stack.app_id}.chunks",
            partition,
            [(f"{job_id}:0".encode(), value)],
        )
    )

    def both_users() -> dict[str, tuple[Any, ...]] | None:
        found = users_of(db, job_id)
        return found if len(found) == 2 else None

    rows = eventually(both_users, "both users of the version 1 chunk")
    assert rows == {
        emails[0]: (emails[0], "Ada", "GB", None),
        emails[1]: (emails[1], "Bo", None, 33),
    }
    ledger = eventually(lambda: ledger_row(db, job_id), "ledger row")
    # version 1 has no partition field: the v2 default (-1) is what the worker saw
    assert tuple(ledger) == (0, -1, 0, 2, 2, 0)


def test_a_poison_message_is_dead_lettered_and_does_not_block_its_partition(
    stack: Stack, db: Engine
) -> None:
    stack.worker().wait_ready()
    chunk_topic = f"{stack.app_id}.chunks"
    job_id = str(uuid.uuid4())
    made_by_sluice(db, job_id)
    partition, (email,) = emails_on_one_partition(1, "after-poison-")
    garbage = b"\xde\xad\xbe\xef not a Sluice chunk \x00\x01\x02"
    valid = Chunk(
        job_id=job_id,
        job_type="user-import",
        tenant="default",
        chunk_index=0,
        partition=partition,
        partition_seq=0,
        options=OPTIONS,
        records=[{"row": 1, "fields": {"email": email, "name": "Cy"}, "error": None}],
    )
    poison_offset, _ = asyncio.run(
        produce(
            stack.bootstrap_servers,
            chunk_topic,
            partition,
            [(b"poison-key", garbage), (f"{job_id}:0".encode(), encode_chunk(valid))],
        )
    )

    rows = eventually(lambda: users_of(db, job_id), "the chunk after the poison message")
    assert rows == {email: (email, "Cy", None, None)}
    ledger = eventually(lambda: ledger_row(db, job_id), "ledger row")
    assert tuple(ledger) == (0, partition, 0, 1, 1, 0)

    dead = asyncio.run(
        read_topic(
            stack.bootstrap_servers,
            f"{chunk_topic}.dlq",
            lambda record: record.key == b"poison-key",
            timeout=30,
        )
    )
    assert dead.value == garbage  # the original bytes, untouched
    headers = dict(dead.headers)
    assert headers["sluice-error-class"] == b"PoisonMessage"
    assert headers["sluice-source-topic"] == chunk_topic.encode()
    assert headers["sluice-source-partition"] == str(partition).encode()
    assert headers["sluice-source-offset"] == str(poison_offset).encode()
    assert b"magic" in headers["sluice-error-message"]
    assert "sluice-job-id" not in headers  # nothing could be decoded


def test_an_upstream_chunk_acts_only_for_the_tenants_its_topic_allows(
    stack: Stack, db: Engine
) -> None:
    """SLUICE_UPSTREAM_TENANTS binds the tenants of chunks produced straight onto the topic; a
    chunk naming another is dead-lettered whole, touches no job, and does not block the ones
    after it. A forged origin mark (not signed with the workers' key) vouches for nothing."""
    stack.worker(SLUICE_UPSTREAM_TENANTS="default,acme").wait_ready()
    chunk_topic = f"{stack.app_id}.chunks"
    partition, emails = emails_on_one_partition(3, "upstream-")

    def chunk_of(tenant: str, email: str) -> tuple[str, bytes]:
        job_id = str(uuid.uuid4())
        record = {"row": 1, "fields": {"email": email, "name": tenant}, "error": None}
        chunk = Chunk(job_id, "user-import", tenant, 0, partition, 0, OPTIONS, [record])
        return job_id, encode_chunk(chunk)

    mallory_job, mallory_chunk = chunk_of("mallory", emails[0])
    forged_job, forged_chunk = chunk_of("alice", emails[1])
    acme_job, acme_chunk = chunk_of("acme", emails[2])
    for job, tenant in ((mallory_job, "mallory"), (forged_job, "alice"), (acme_job, "acme")):
        made_by_sluice(db, job, tenant)  # refused for their tenant, not for an unknown job
    servers = stack.bootstrap_servers
    forged = [
        (ORIGIN_HEADER, origin_mark(b"not the workers' signing key......", "alice", forged_job))
    ]
    asyncio.run(produce(servers, chunk_topic, partition, [(b"m", mallory_chunk)]))
    asyncio.run(produce(servers, chunk_topic, partition, [(b"f", forged_chunk)], forged))
    asyncio.run(produce(servers, chunk_topic, partition, [(b"a", acme_chunk)]))

    assert eventually(lambda: users_of(db, acme_job), "the allowed tenant's chunk")
    for key, named in ((b"m", "mallory"), (b"f", "alice")):
        dead = asyncio.run(
            read_topic(servers, f"{chunk_topic}.dlq", lambda r, k=key: r.key == k, timeout=30)
        )
        headers = dict(dead.headers)
        assert headers["sluice-error-class"] == b"TenantNotAllowed"
        assert named.encode() in headers["sluice-error-message"]
        # counted in no job: its producer may not speak for one
        assert "sluice-job-id" not in headers and "sluice-tenant" not in headers
    assert users_of(db, mallory_job) == {} and users_of(db, forged_job) == {}
    assert ledger_row(db, mallory_job) is None and ledger_row(db, forged_job) is None


def test_a_chunk_reusing_an_applied_pair_with_other_content_is_dead_lettered(
    stack: Stack, db: Engine
) -> None:
    """Not a redelivery: the ledger's digest differs. It goes to the dead-letter topic saying
    so, the first chunk's outcome stands, and the partition keeps flowing."""
    stack.worker().wait_ready()
    chunk_topic = f"{stack.app_id}.chunks"
    servers = stack.bootstrap_servers
    partition, emails = emails_on_one_partition(3, "reused-")
    job_id, later_job = str(uuid.uuid4()), str(uuid.uuid4())
    made_by_sluice(db, job_id)
    made_by_sluice(db, later_job)

    def chunk_of(job: str, row: int, email: str) -> bytes:
        record = {"row": row, "fields": {"email": email, "name": f"Row {row}"}, "error": None}
        return encode_chunk(
            Chunk(job, "user-import", "default", 0, partition, 0, OPTIONS, [record])
        )

    asyncio.run(
        produce(servers, chunk_topic, partition, [(b"first", chunk_of(job_id, 1, emails[0]))])
    )
    first = eventually(lambda: ledger_row(db, job_id), "the first chunk's ledger row")
    messages = [
        (b"reused", chunk_of(job_id, 2, emails[1])),
        (b"after", chunk_of(later_job, 1, emails[2])),
    ]
    asyncio.run(produce(servers, chunk_topic, partition, messages))

    assert eventually(lambda: users_of(db, later_job), "the chunk after the reused pair")
    dead = asyncio.run(
        read_topic(servers, f"{chunk_topic}.dlq", lambda r: r.key == b"reused", timeout=30)
    )
    headers = dict(dead.headers)
    assert headers["sluice-error-class"] == b"ChunkConflict"
    said = f"chunk 0 of job {job_id} was already applied with different content"
    assert said.encode() in headers["sluice-error-message"]
    assert headers["sluice-job-id"] == job_id.encode()
    assert headers["sluice-attempts"] == b"1"  # no retries
    assert ledger_row(db, job_id) == first
    assert set(users_of(db, job_id)) == {emails[0]}
    with db.connect() as connection:
        rows = connection.scalars(
            text("SELECT row_no FROM sluice_results WHERE job_id = :job"), {"job": job_id}
        ).all()
    assert rows == [1]  # the reused pair's record was counted nowhere


def test_a_chunk_naming_a_job_sluice_did_not_create_is_dead_lettered(
    stack: Stack, db: Engine
) -> None:
    """The chunk topic is internal: an unmarked chunk of a job that is not in the registry is
    dead-lettered at once saying so, counted in no job; the next chunk is applied."""
    stack.worker().wait_ready()
    chunk_topic, servers = f"{stack.app_id}.chunks", stack.bootstrap_servers
    partition, emails = emails_on_one_partition(2, "unknown-job-")
    stranger, known = str(uuid.uuid4()), str(uuid.uuid4())
    made_by_sluice(db, known)

    def chunk_of(job: str, email: str) -> bytes:
        record = {"row": 1, "fields": {"email": email, "name": "X"}, "error": None}
        return encode_chunk(
            Chunk(job, "user-import", "default", 0, partition, 0, OPTIONS, [record])
        )

    messages = [
        (b"stranger", chunk_of(stranger, emails[0])),
        (b"known", chunk_of(known, emails[1])),
    ]
    asyncio.run(produce(servers, chunk_topic, partition, messages))

    assert eventually(lambda: users_of(db, known), "the chunk of a job Sluice made")
    dead = asyncio.run(
        read_topic(servers, f"{chunk_topic}.dlq", lambda r: r.key == b"stranger", timeout=30)
    )
    headers = dict(dead.headers)
    assert headers["sluice-error-class"] == b"PoisonMessage"
    assert b"was not created by Sluice" in headers["sluice-error-message"]
    assert "sluice-job-id" not in headers
    assert users_of(db, stranger) == {} and ledger_row(db, stranger) is None
