"""streams.split: cutting a job's records into per-partition chunks, in submission order."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from streams.jobtypes.user_import import UserImport
from streams.models import Chunk, ParsedRecord
from streams.split import ChunkCutter, partition_for

PARTITIONS = 4
USER_IMPORT = UserImport()


def cutter(chunk_size: int = 100, partitions: int = PARTITIONS) -> ChunkCutter:
    return ChunkCutter(
        job_id="job-1",
        job_type=USER_IMPORT,
        tenant="acme",
        options=USER_IMPORT.parse_options({"chunkSize": chunk_size}),
        partitions=partitions,
    )


def user(row: int, email: str) -> ParsedRecord:
    return ParsedRecord(row, {"email": email, "name": f"Name {row}"})


def unreadable(row: int) -> ParsedRecord:
    return ParsedRecord(row, None, "malformed CSV")


def cut_all(c: ChunkCutter, records: list[ParsedRecord]) -> list[Chunk]:
    """Every chunk, in the order the cutter emitted them (full ones first, then the flush)."""
    chunks = [chunk for record in records if (chunk := c.add(record)) is not None]
    return chunks + c.flush()


def rows_by_email(chunks: list[Chunk]) -> dict[str, list[int]]:
    """Each identity's rows, in the order a per-partition consumer would apply them."""
    ordered = sorted(chunks, key=lambda ch: (ch.partition, ch.partition_seq))
    out: dict[str, list[int]] = defaultdict(list)
    for chunk in ordered:
        for record in chunk.records:
            if record["fields"] is not None:
                out[record["fields"]["email"].strip().lower()].append(record["row"])
    return out


def mixed_upload(n: int, seed: int = 3) -> list[ParsedRecord]:
    """n records over ~n/5 identities, in mixed case and padding, with some unreadable rows."""
    rng = random.Random(seed)
    records = []
    for row in range(1, n + 1):
        if rng.random() < 0.03:
            records.append(unreadable(row))
            continue
        email = f"user{rng.randrange(n // 5)}@example.com"
        if rng.random() < 0.3:
            email = f"  {email.upper()} "
        records.append(user(row, email))
    return records


# -- routing ------------------------------------------------------------------------------------


def test_records_sharing_a_key_land_on_one_partition_in_submission_order() -> None:
    chunks = cut_all(cutter(chunk_size=100), mixed_upload(5_000))
    partitions_of: dict[str, set[int]] = defaultdict(set)
    for chunk in chunks:
        for record in chunk.records:
            if record["fields"] is not None:
                partitions_of[record["fields"]["email"].strip().lower()].add(chunk.partition)
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert len(chunks) > 10  # many chunks, so order across chunk boundaries is exercised

    for email, rows in rows_by_email(chunks).items():
        assert rows == sorted(rows), email
        assert partitions_of[email] == {partition_for(email, PARTITIONS)}


def test_every_record_is_in_exactly_one_chunk() -> None:
    upload = mixed_upload(2_345)
    chunks = cut_all(cutter(chunk_size=100), upload)
    rows = sorted(r["row"] for chunk in chunks for r in chunk.records)
    assert rows == list(range(1, 2_346))


def test_a_chunk_holds_records_of_its_own_partition_only() -> None:
    chunks = cut_all(cutter(chunk_size=100), mixed_upload(3_000))
    for chunk in chunks:
        for record in chunk.records:
            if record["fields"] is not None:
                key = record["fields"]["email"].strip().lower()
                assert partition_for(key, PARTITIONS) == chunk.partition


def test_keyless_records_spread_round_robin() -> None:
    c = cutter(chunk_size=100)
    records = [unreadable(1), unreadable(2), ParsedRecord(3, {"name": "no email"}), unreadable(4)]
    records += [ParsedRecord(5, {"email": "   ", "name": "blank email"})]
    chunks = cut_all(c, records)
    where = {r["row"]: chunk.partition for chunk in chunks for r in chunk.records}
    assert where == {1: 0, 2: 1, 3: 2, 4: 3, 5: 0}


def test_an_unreadable_record_keeps_its_error() -> None:
    (chunk,) = cut_all(cutter(), [unreadable(7)])
    assert chunk.records == [{"row": 7, "fields": None, "error": "malformed CSV"}]


# -- chunk sizes and numbering -----------------------------------------------------------------


def test_a_chunk_is_cut_when_its_partition_reaches_chunk_size() -> None:
    c = cutter(chunk_size=100)
    email = "same@example.com"
    results = [c.add(user(row, email)) for row in range(1, 251)]
    full = [chunk for chunk in results if chunk is not None]
    assert [results.index(chunk) for chunk in full] == [99, 199]  # on the 100th and 200th add
    assert [len(chunk.records) for chunk in full] == [100, 100]
    (rest,) = c.flush()
    assert len(rest.records) == 50
    assert {chunk.partition for chunk in [*full, rest]} == {partition_for(email, PARTITIONS)}


def test_no_chunk_is_larger_than_chunk_size() -> None:
    chunks = cut_all(cutter(chunk_size=100), mixed_upload(4_000))
    assert max(len(chunk.records) for chunk in chunks) == 100
    assert all(len(chunk.records) > 0 for chunk in chunks)


def test_partition_seq_counts_up_per_partition() -> None:
    chunks = cut_all(cutter(chunk_size=100), mixed_upload(4_000))
    by_partition: dict[int, list[int]] = defaultdict(list)
    for chunk in chunks:  # emission order is the order the chunks are produced to Kafka
        by_partition[chunk.partition].append(chunk.partition_seq)
    assert set(by_partition) == set(range(PARTITIONS))
    for seqs in by_partition.values():
        assert seqs == list(range(len(seqs)))


def test_chunk_index_is_unique_and_dense() -> None:
    c = cutter(chunk_size=100)
    chunks = cut_all(c, mixed_upload(4_000))
    assert [chunk.chunk_index for chunk in chunks] == list(range(len(chunks)))
    assert c.chunks == len(chunks)
    assert c.records == 4_000


def test_chunks_carry_the_job_identity_and_options() -> None:
    c = cutter(chunk_size=250)
    (chunk,) = cut_all(c, [user(1, "a@example.com")])
    assert (chunk.job_id, chunk.job_type, chunk.tenant) == ("job-1", "user-import", "acme")
    assert chunk.options["chunkSize"] == 250
    assert chunk.attempt == 0


# -- flush -------------------------------------------------------------------------------------


def test_flush_returns_the_partly_filled_chunks_once() -> None:
    c = cutter(chunk_size=100)
    for row in range(1, 41):
        assert c.add(user(row, f"u{row}@example.com")) is None
    rest = c.flush()
    partitions = [chunk.partition for chunk in rest]
    assert len(partitions) == len(set(partitions))  # one partly filled chunk per partition
    assert sum(len(chunk.records) for chunk in rest) == 40
    assert all(chunk.partition_seq == 0 for chunk in rest)
    assert c.flush() == []


def test_flush_of_an_empty_cutter_is_empty() -> None:
    c = cutter()
    assert c.flush() == []
    assert (c.records, c.chunks) == (0, 0)


def test_flush_continues_the_numbering() -> None:
    c = cutter(chunk_size=100)
    email = "same@example.com"
    full = [chunk for row in range(1, 151) if (chunk := c.add(user(row, email))) is not None]
    (rest,) = c.flush()
    assert [(ch.chunk_index, ch.partition_seq) for ch in [*full, rest]] == [(0, 0), (1, 1)]


# -- partition_for: a stable hash of the key ---------------------------------------------------


# CRC-32 (IEEE) of "123456789" is 0xCBF43926, the algorithm's published check value; the other
# rows are pinned: a change moves keys to other partitions, and per-key order breaks across
# a deploy while chunks of the old routing are still queued.
@pytest.mark.parametrize(
    ("key", "by_partitions"),
    [
        ("123456789", {1: 0, 3: 2, 4: 2, 8: 6, 100: 0xCBF43926 % 100}),
        ("user0@example.com", {1: 0, 3: 2, 4: 3, 8: 3, 100: 91}),
        ("ünïcødé@exämple.com", {1: 0, 3: 0, 4: 0, 8: 4, 100: 0}),
        ("日本@example.jp", {1: 0, 3: 2, 4: 1, 8: 1, 100: 45}),
        ("", {1: 0, 3: 0, 4: 0, 8: 0, 100: 0}),
    ],
)
def test_partition_for_is_crc32_of_the_utf8_key(key: str, by_partitions: dict[int, int]) -> None:
    assert {n: partition_for(key, n) for n in by_partitions} == by_partitions


def test_partition_for_spreads_keys_over_every_partition() -> None:
    counts = [0] * 8
    for i in range(8000):
        counts[partition_for(f"user{i}@example.com", 8)] += 1
    assert min(counts) > 800, counts
