"""streams.exports: formats and formula injection, filters, signed URLs, storage, assembly."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from api.paths import download_url
from api.views import status_view
from streams.clock import iso
from streams.config import Settings
from streams.exceptions import OptionError, RequestError
from streams.exports import formats, signing
from streams.exports.assemble import ExportIncomplete, assemble
from streams.exports.storage import LocalStorage, part_name, remove_expired
from streams.jobtypes.user_export import UserExport
from streams.models import ParsedRecord
from streams.progress import apply_event, awaits_result, result_basis, status_of
from streams.split import ChunkCutter
from streams.wire import events

JOB = "0b9c3a52-3f0e-4a53-9d1c-6d7a3c1e2f40"
KEY = b"k" * 32
T = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
EXPORT = UserExport()


def row(user_id: int, name: str = "Ada", **values: Any) -> tuple[Any, ...]:
    base = {
        "email": f"u{user_id}@example.com",
        "country": "DE",
        "age": 42,
        "signup_ts": T,
        "created_at": T,
        "updated_at": T,
    }
    base.update(values)
    return (
        user_id,
        base["email"],
        name,
        base["country"],
        base["age"],
        *[base[c] for c in ("signup_ts", "created_at", "updated_at")],
    )


def part_bytes(fmt: str, rows: list[tuple[Any, ...]]) -> bytes:
    out = io.BytesIO()
    with formats.PartWriter(out, fmt) as writer:
        for r in rows:
            writer.write(r)
    return out.getvalue()


# -- CSV: formula injection and quoting --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_text_cells_that_could_start_a_formula_are_neutralized(text: str, cell: str) -> None:
    assert formats.neutralize(text) == cell
    data = gzip.decompress(part_bytes("csv", [row(1, text, email=text)]))
    (parsed,) = csv.reader(io.StringIO(data.decode(), newline=""))
    assert parsed[1:3] == [cell, cell]


def test_numbers_and_times_are_written_as_they_are() -> None:
    data = gzip.decompress(part_bytes("csv", [row(7, age=-5)])).decode()
    (parsed,) = csv.reader(io.StringIO(data, newline=""))
    assert parsed[0] == "7" and parsed[4] == "-5"
    assert parsed[5:] == ["2024-05-06T07:08:09.123456Z"] * 3


def test_csv_quotes_commas_quotes_and_line_breaks() -> None:
    names = ["Doe, Jane", 'Jo "JJ" Smith', "Multi\nLine", "Zoë Ünïcødé", "trailing space "]
    data = gzip.decompress(part_bytes("csv", [row(i, n) for i, n in enumerate(names, 1)]))
    text = data.decode()
    assert '"Doe, Jane"' in text and '"Jo ""JJ"" Smith"' in text and '"Multi\nLine"' in text
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert [p[2] for p in parsed] == names


def test_missing_values_are_empty_cells_and_json_nulls() -> None:
    empty = row(3, country=None, age=None, signup_ts=None)
    data = gzip.decompress(part_bytes("csv", [empty])).decode()
    assert (
        data
        == "3,u3@example.com,Ada,,,,2024-05-06T07:08:09.123456Z,2024-05-06T07:08:09.123456Z\r\n"
    )
    obj = json.loads(gzip.decompress(part_bytes("ndjson", [empty])))
    assert (obj["country"], obj["age"], obj["signup_ts"]) == (None, None, None)
    assert list(obj) == list(formats.COLUMNS)


def test_naive_times_are_utc_and_others_are_converted() -> None:
    assert iso(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05Z"
    plus_two = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert iso(plus_two) == "2024-01-02T03:04:05Z"


# -- assembly: gzip members make one valid file ------------------------------------------------


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_parts_assemble_into_one_valid_file_with_empty_parts_harmless(
    tmp_path: Path, fmt: str
) -> None:
    storage = LocalStorage(tmp_path)
    chunks = [[row(1), row(2, "Multi\nLine")], [], [row(3, "=1+1")], [row(4)]]
    for index, rows in enumerate(chunks):
        with storage.write(JOB, part_name(index)) as out:
            out.write(part_bytes(fmt, rows))
    parts = [(index, len(rows)) for index, rows in enumerate(chunks)]
    assembled = assemble(storage, JOB, fmt, parts)
    assert assembled.records == 4
    raw = storage.path(JOB, assembled.name).read_bytes()
    assert assembled.bytes == len(raw)
    text = gzip.decompress(raw).decode()
    if fmt == "csv":
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        assert parsed[0] == list(formats.COLUMNS)
        assert [p[0] for p in parsed[1:]] == ["1", "2", "3", "4"]
        assert parsed[3][2] == "'=1+1"
    elif fmt == "json":
        assert [o["id"] for o in json.loads(text)] == [1, 2, 3, 4]
    else:
        assert [json.loads(line)["id"] for line in text.splitlines()] == [1, 2, 3, 4]


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_an_export_of_nothing_is_still_a_valid_file(tmp_path: Path, fmt: str) -> None:
    storage = LocalStorage(tmp_path)
    assembled = assemble(storage, JOB, fmt, [])
    text = gzip.decompress(storage.path(JOB, assembled.name).read_bytes()).decode()
    expected = {"csv": ",".join(formats.COLUMNS) + "\r\n", "json": "[\n\n]\n", "ndjson": ""}
    assert text == expected[fmt]
    if fmt == "json":
        assert json.loads(text) == []


def test_a_missing_part_is_an_error_naming_the_shared_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(ExportIncomplete, match="SLUICE_EXPORT_DIR"):
        assemble(storage, JOB, "csv", [(0, 5)])
    assert not storage.exists(JOB, formats.file_name("csv"))  # nothing half-written


# -- storage -----------------------------------------------------------------------------------


def test_a_file_appears_only_when_written_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(RuntimeError), storage.write(JOB, "part-000001.gz") as out:
        out.write(b"half")
        raise RuntimeError("writer died")
    assert not storage.exists(JOB, "part-000001.gz")
    assert os.listdir(tmp_path / JOB) == []  # no temporary file left either


def test_paths_outside_the_directory_are_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    for job_id, name in ((JOB, "../x"), ("../etc", "passwd"), (JOB, ".hidden"), (JOB, "a/b")):
        with pytest.raises(ValueError):
            storage.path(job_id, name)


def test_expired_exports_and_abandoned_parts_are_removed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    now = time.time()
    jobs = [f"{JOB[:-1]}{i}" for i in range(4)]
    storage.write_result(jobs[0], {"expires": now - 1})  # expired
    storage.write_result(jobs[1], {"expires": now + 3600})  # still valid
    with storage.write(jobs[2], part_name(0)) as out:  # parts of an export that never finished
        out.write(b"x")
    os.utime(storage.path(jobs[2], part_name(0)), (now - 7200, now - 7200))
    with storage.write(jobs[3], part_name(0)) as out:  # parts of a running export
        out.write(b"x")
    (tmp_path / signing.KEY_FILE).write_text("key")
    assert sorted(remove_expired(storage, now, abandoned_after=3600)) == sorted([jobs[0], jobs[2]])
    assert sorted(storage.jobs()) == sorted([jobs[1], jobs[3]])
    assert (tmp_path / signing.KEY_FILE).exists()
    assert remove_expired(storage, now, abandoned_after=3600) == []  # idempotent


TENANT = "alice"

# -- signed URLs -------------------------------------------------------------------------------


def test_a_signed_url_is_accepted_until_it_expires() -> None:
    expires = int(time.time()) + 60
    signed = signing.signature(KEY, TENANT, JOB, "users.csv.gz", expires)
    url = download_url(JOB, "users.csv.gz", expires, signed)
    path, _, query = url.partition("?")
    assert path == f"/api/batch/exports/{JOB}/users.csv.gz"
    params = dict(p.split("=") for p in query.split("&"))
    signing.check(
        KEY, TENANT, JOB, "users.csv.gz", params["expires"], params["signature"], time.time()
    )
    with pytest.raises(RequestError, match="expired") as caught:
        signing.check(
            KEY, TENANT, JOB, "users.csv.gz", params["expires"], params["signature"], expires
        )
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "tamper",
    [
        {"job_id": JOB.replace("0b9c", "1b9c")},
        {"name": "users.json.gz"},
        {"expires": "EXPIRES_PLUS_ONE"},
        {"signed": "SIGNATURE_FLIPPED"},
        {"signed": ""},
        {"expires": None},
        {"expires": "12ab"},
        {"key": b"another key"},
        {"tenant": "mallory"},
    ],
)
def test_a_tampered_url_is_refused(tamper: dict[str, Any]) -> None:
    expires = int(time.time()) + 600
    signed = signing.signature(KEY, TENANT, JOB, "users.csv.gz", expires)
    parts: dict[str, Any] = {
        "key": KEY,
        "tenant": TENANT,
        "job_id": JOB,
        "name": "users.csv.gz",
        "expires": str(expires),
        "signed": signed,
    }
    parts.update(tamper)
    if parts["expires"] == "EXPIRES_PLUS_ONE":
        parts["expires"] = str(expires + 86400)
    if parts["signed"] == "SIGNATURE_FLIPPED":
        parts["signed"] = ("0" if signed[0] != "0" else "1") + signed[1:]
    with pytest.raises(RequestError) as caught:
        signing.check(
            parts["key"],
            parts["tenant"],
            parts["job_id"],
            parts["name"],
            parts["expires"],
            parts["signed"],
            0,
        )
    assert caught.value.status == 403


def test_the_default_key_is_created_once_and_shared(tmp_path: Path) -> None:
    settings = Settings(export_dir=tmp_path / "exports")
    first = signing.signing_key(settings)
    signing._key_from_file.cache_clear()  # another worker: reads the same file
    assert signing.signing_key(settings) == first and len(first) == 64
    assert (tmp_path / "exports" / signing.KEY_FILE).stat().st_mode & 0o777 == 0o600
    key = "set-" + "k" * 28
    assert signing.signing_key(Settings(export_dir=tmp_path, signing_key=key)) == key.encode()


# -- options -----------------------------------------------------------------------------------


def option_field(raw: dict[str, Any]) -> str | None:
    with pytest.raises(OptionError) as caught:
        EXPORT.parse_options(raw)
    return caught.value.field


def test_export_options_are_normalised() -> None:
    options = EXPORT.parse_options(
        {
            "format": "ndjson",
            "filter": {
                "country": " de ",
                "signupFrom": "2024-01-01",
                "signupTo": "2024-06-01T02:00:00+02:00",
                "ageMin": "18",
                "ageMax": 65,
            },
        }
    )
    assert options["format"] == "ndjson" and options["chunkSize"] == 1000
    assert options["filter"] == {
        "country": "DE",
        "signupFrom": "2024-01-01T00:00:00Z",
        "signupTo": "2024-06-01T00:00:00Z",
        "ageMin": 18,
        "ageMax": 65,
    }
    defaults = EXPORT.parse_options({})
    assert (defaults["format"], defaults["filter"], defaults["chunkSize"]) == ("csv", {}, 1000)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"format": 1}, "format"),
        ({"filter": []}, "filter"),
        ({"filter": "not json"}, "filter"),
        ({"filter": {"city": "Berlin"}}, "filter.city"),
        ({"filter": {"country": "DEU"}}, "filter.country"),
        ({"filter": {"country": 49}}, "filter.country"),
        ({"filter": {"signupFrom": "yesterday"}}, "filter.signupFrom"),
        ({"filter": {"signupTo": 20240101}}, "filter.signupTo"),
        ({"filter": {"signupFrom": "2024-02-01", "signupTo": "2024-01-01"}}, "filter.signupFrom"),
        ({"filter": {"ageMin": 12}}, "filter.ageMin"),
        ({"filter": {"ageMax": 131}}, "filter.ageMax"),
        ({"filter": {"ageMin": 42.5}}, "filter.ageMin"),
        ({"filter": {"ageMin": True}}, "filter.ageMin"),
        ({"filter": {"ageMin": 50, "ageMax": 40}}, "filter.ageMin"),
        ({"chunkSize": 5000}, "chunkSize"),
        ({"skipDuplicates": True}, "skipDuplicates"),
    ],
)
def test_bad_export_options_name_the_field(raw: dict[str, Any], field: str) -> None:
    assert option_field(raw) == field


# -- the splitter keeps an export's chunks consecutive ------------------------------------------


def test_export_chunks_are_runs_of_consecutive_ids_spread_over_partitions() -> None:
    cutter = ChunkCutter(
        job_id=JOB,
        job_type=EXPORT,
        tenant="t",
        options=EXPORT.parse_options({"chunkSize": 100}),
        partitions=4,
    )
    chunks = [c for r in range(1, 1051) if (c := cutter.add(ParsedRecord(r, {"id": r})))]
    chunks += cutter.flush()
    assert [c.chunk_index for c in chunks] == list(range(11))
    assert [c.partition for c in chunks] == [i % 4 for i in range(11)]
    ids = [[r["fields"]["id"] for r in c.records] for c in chunks]
    assert ids == [list(range(1 + 100 * i, min(101 + 100 * i, 1051))) for i in range(11)]


# -- progress: a job with a result is completed only by a result made from its final counts ----


def export_state(chunks: int = 2) -> Any:
    state = None
    for kind, body in (
        (
            events.ACCEPTED,
            {"jobType": EXPORT.name, "tenant": "t", "options": "{}", "awaitsResult": True},
        ),
        (
            events.SPLIT_COMPLETED,
            {"totalRecords": 10 * chunks, "totalChunks": chunks, "unknownColumns": []},
        ),
    ):
        state = apply_event(state, JOB, 1_000, kind, body)
    return state


def outcome(state: Any, seq: int, *, dead: bool = False) -> Any:
    body = {
        "chunkIndex": seq,
        "partition": 0,
        "partitionSeq": seq,
        "records": 10,
        "successful": 0 if dead else 10,
        "failed": 10 if dead else 0,
        "skipped": 0,
        "created": 0,
        "updated": 0,
        "deadLettered": dead,
        "errors": [],
    }
    return apply_event(state, JOB, 2_000, events.CHUNK_OUTCOME, body)


def result_ready(state: Any, basis: str, *, error: str | None = None, at: int = 3_000) -> Any:
    result = None if error else json.dumps({"recordCount": state["successful"]})
    body = {"basis": basis, "result": result, "error": error}
    return apply_event(state, JOB, at, events.RESULT_READY, body)


def test_a_job_with_a_result_is_active_until_the_result_arrives() -> None:
    state = outcome(outcome(export_state(), 0), 1)
    assert status_of(state) == "active" and awaits_result(state)
    assert state["completedAt"] is None
    view = status_view(JOB, EXPORT.name, state, None)
    assert view["result"] is None and view["progress"]["percentage"] == 100.0

    done = result_ready(state, result_basis(state))
    assert status_of(done) == "completed" and not awaits_result(done)
    assert done["completedAt"] == 3_000
    assert status_view(JOB, EXPORT.name, done, None)["result"] == {"recordCount": 20}
    assert result_ready(done, result_basis(state), at=4_000) is done  # a second copy


def test_a_result_made_from_other_counts_is_ignored() -> None:
    state = outcome(outcome(export_state(), 0), 1)
    stale = result_ready(state, "1:0:10:0")
    assert stale is state and status_of(stale) == "active"


def test_a_result_that_cannot_be_made_fails_the_job() -> None:
    state = outcome(outcome(export_state(), 0), 1)
    failed = result_ready(state, result_basis(state), error="ExportIncomplete: part missing")
    assert status_of(failed) == "failed"
    view = status_view(JOB, EXPORT.name, failed, None)
    assert view["error"] == "no result: ExportIncomplete: part missing"
    assert view["result"] is None


def test_a_replayed_chunk_makes_the_result_stale_until_it_is_made_again() -> None:
    state = outcome(outcome(export_state(), 0), 1, dead=True)
    first = result_ready(state, result_basis(state))
    assert status_of(first) == "completed" and first["result"] == {"recordCount": 10}
    replay = {"chunkIndex": 1, "partition": 0, "partitionSeq": 1, "deadLetter": "x"}
    replaying = apply_event(first, JOB, 4_000, events.REPLAY_REQUESTED, replay)
    assert status_of(replaying) == "active" and not awaits_result(replaying)
    applied = outcome(replaying, 1)
    assert status_of(applied) == "active" and awaits_result(applied)
    assert applied["completedAt"] is None
    assert result_ready(applied, result_basis(state)) is applied  # the old counts' result
    again = result_ready(applied, result_basis(applied), at=5_000)
    assert status_of(again) == "completed" and again["result"] == {"recordCount": 20}


def test_a_job_without_a_result_is_unchanged() -> None:
    body = {"jobType": "user-import", "tenant": "t", "options": "{}"}
    state = apply_event(None, JOB, 1, events.ACCEPTED, body)
    state = apply_event(
        state,
        JOB,
        1,
        events.SPLIT_COMPLETED,
        {"totalRecords": 0, "totalChunks": 0, "unknownColumns": []},
    )
    assert status_of(state) == "completed" and not awaits_result(state)
    assert "result" not in status_view(JOB, "user-import", state, None)


def test_an_export_summary_says_what_it_wrote_not_what_an_import_did() -> None:
    state = outcome(outcome(export_state(), 0), 1)
    state["options"] = {"format": "ndjson", "filter": {"country": "DE"}, "chunkSize": 1000}
    summary = status_view(JOB, EXPORT.name, state, None)["summary"]
    assert summary["exported"] == state["successful"] > 0
    assert (summary["format"], summary["filter"]) == ("ndjson", {"country": "DE"})
    assert not {"created", "updated", "unknownColumns"} & set(summary)
    assert {"deadLettered", "deadLetteredChunks", "lastReplayAt", "errors"} <= set(summary)
