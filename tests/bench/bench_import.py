"""Import benchmark: Sluice end to end against COPY and a plain validating loader, in one run.

    .venv/bin/python -m tests.bench.bench_import [--rows N] [--chunk-size 1000]
                                                 [--partitions 8] [--writers 2]

Generates a users CSV (deterministic seed, ~2 % invalid rows, ~3 % case-varied duplicate emails)
into a temporary file, then measures on the same PostgreSQL (tests/support/postgres.py finds it),
each method in a fresh schema dropped afterwards:

a. `COPY` of the raw CSV into an unindexed table of text columns (the physical limit);
b. a validating loader: csv module → `validate_user` → per chunk, in one transaction, `COPY` into
   a staging table and one `INSERT … SELECT DISTINCT ON … ON CONFLICT DO UPDATE` (last one wins);
c. Sluice: embedded broker + one worker process; POST the file, poll the job until completed.

Results are checked (counts, and the users table of (c) against that of (b)) and written to
`bench-results/import-<timestamp>.json`. Exit 0 whether or not the targets are met; non-zero
only for errors and incorrect results. Everything started is stopped on error and Ctrl-C.
Compare ratios measured in one run, not absolute numbers (shared/BASELINES.md).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from streams.devbroker import free_port, start_dev_broker
from streams.jobtypes.user_rules import User, validate_user
from streams.sink.tables import create_tables
from tests.bench.common import REPO, BenchFailure, run_bench
from tests.support.postgres import session_database
from tests.support.workers import TEST_API_KEY, bearer

COLUMNS = ("email", "name", "country", "age", "signup_ts")

# The targets.
TARGET_RECORDS_PER_SECOND = 30_000
TARGET_LOADER_RATIO = 0.6
TARGET_WORKER_RSS_MB = 400

INVALID_SHARE = 0.02
DUPLICATE_SHARE = 0.03
RESERVOIR_SIZE = 100_000  # earlier identities a duplicate is drawn from (bounded memory)
COPY_BLOCK = 1 << 16
POLL_SECONDS = 0.2

DOMAINS = ("example.com", "example.org", "mail.example.net")
COUNTRIES = ("DE", "us", "FR", "gb", "", "NL", " it ")
AGES = ("", "13", "27", "42", "64", "130", " 35 ")
TIMESTAMPS = ("", "2024-05-06T07:08:09", "2023-01-02T03:04:05+02:00", "2022-11-30 23:59:59Z")
# (column, value template): every one of them fails validate_user.
INVALID_KINDS = (
    ("email", "user{n}.example.com"),
    ("email", "user{n}@@example.com"),
    ("email", ""),
    ("email", "user{n}@localhost"),
    ("email", "user {n}@example.com"),
    ("name", "   "),
    ("name", "N" * 201),
    ("country", "DEU"),
    ("country", "1A"),
    ("age", "abc"),
    ("age", "42.5"),
    ("age", "7"),
    ("age", "131"),
    ("signup_ts", "yesterday"),
    ("signup_ts", "2024-13-01T00:00:00"),
)


# -- the input ---------------------------------------------------------------------------------


@dataclass
class Generated:
    rows: int
    valid: int
    invalid: int
    duplicates: int  # valid rows whose identity occurred earlier in the file
    distinct: int  # distinct identities among the valid rows: the expected users row count
    bytes: int
    seconds: float


def _email(n: int) -> str:
    return f"user{n}@{DOMAINS[n % len(DOMAINS)]}"


def _case_varied(email: str, rng: random.Random) -> str:
    varied = "".join(c.upper() if rng.random() < 0.5 else c for c in email)
    return varied if varied != email else email.upper()


def _name(n: int, rng: random.Random) -> str:
    roll = rng.random()
    if n % 10_007 == 0:
        return f"Multi\nLine {n}"  # a quoted field spanning two lines
    if roll < 0.01:
        return f"Doe, Jane {n}"
    if roll < 0.012:
        return f'Jo "JJ" Smith {n}'
    if n % 13 == 0:
        return f"Zoë Ünïcødé {n}"
    return f"Name {n}"


def generate_csv(path: Path, rows: int, seed: int) -> Generated:
    """Write the users CSV row by row; count what the import must end with."""
    started = time.perf_counter()
    rng = random.Random(seed)
    reservoir: list[int] = []  # a uniform sample of earlier valid identities (row numbers)
    fresh_valid = 0
    valid = invalid = duplicates = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for n in range(1, rows + 1):
            duplicate = bool(reservoir) and rng.random() < DUPLICATE_SHARE
            email = _case_varied(_email(rng.choice(reservoir)), rng) if duplicate else _email(n)
            values = {
                "email": f" {email} " if n % 97 == 0 else email,
                "name": _name(n, rng),
                "country": rng.choice(COUNTRIES),
                "age": rng.choice(AGES),
                "signup_ts": rng.choice(TIMESTAMPS),
            }
            if rng.random() < INVALID_SHARE:
                column, template = rng.choice(INVALID_KINDS)
                values[column] = template.format(n=n)
                invalid += 1
            else:
                valid += 1
                if duplicate:
                    duplicates += 1
                else:
                    fresh_valid += 1  # reservoir sampling keeps memory bounded
                    if len(reservoir) < RESERVOIR_SIZE:
                        reservoir.append(n)
                    else:
                        slot = rng.randrange(fresh_valid)
                        if slot < RESERVOIR_SIZE:
                            reservoir[slot] = n
            writer.writerow([values[c] for c in COLUMNS])
    return Generated(
        rows=rows,
        valid=valid,
        invalid=invalid,
        duplicates=duplicates,
        distinct=fresh_valid,
        bytes=path.stat().st_size,
        seconds=time.perf_counter() - started,
    )


# -- the database ------------------------------------------------------------------------------


def psycopg2_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_schema(admin: Engine, label: str) -> Iterator[str]:
    """A new schema, yielded as a URL whose search_path selects it; dropped on the way out."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    try:
        url = make_url(admin.url.render_as_string(hide_password=False))
        yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '60s'"))
            connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def users_fingerprint(engine: Engine) -> tuple[int, str]:
    """(row count, an order-independent hash of every stored user) of the users table."""
    with engine.connect() as connection:
        count, digest = connection.execute(
            text(
                "SELECT count(*), coalesce(sum(hashtextextended(concat_ws('|', email, name, "
                "country, age, extract(epoch FROM signup_ts)), 0)), 0)::text FROM users"
            )
        ).one()
    return int(count), str(digest)


def measure_results_cost(engine: Engine, chunk_size: int) -> tuple[int, float]:
    """(outcome rows Sluice stored, seconds to write them again the way a chunk does: one COPY
    of `chunk_size` rows per transaction into a table with the same keys and index)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT count(*) FROM sluice_results")
        stored = int(cursor.fetchone()[0])
        cursor.execute("CREATE TABLE results_again (LIKE sluice_results INCLUDING ALL)")
        dump = io.StringIO()
        cursor.copy_expert("COPY sluice_results TO STDOUT", dump)
        raw.commit()
        lines = dump.getvalue().splitlines(keepends=True)
        del dump
        started = time.perf_counter()
        for start in range(0, len(lines), chunk_size):
            cursor.copy_expert(
                "COPY results_again FROM STDIN",
                io.StringIO("".join(lines[start : start + chunk_size])),
            )
            raw.commit()
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE results_again")
        raw.commit()
        return stored, seconds
    finally:
        raw.close()


# -- a. COPY -----------------------------------------------------------------------------------


def measure_copy(engine: Engine, csv_path: Path, rows: int) -> float:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            "CREATE TABLE raw_users (email text, name text, country text, age text, signup_ts text)"
        )
        raw.commit()
        with csv_path.open("rb") as body:
            started = time.perf_counter()
            cursor.copy_expert(
                "COPY raw_users FROM STDIN WITH (FORMAT csv, HEADER true)", body, size=COPY_BLOCK
            )
            raw.commit()
            seconds = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM raw_users")
        row = cursor.fetchone()
        loaded = row[0] if row else 0
    finally:
        raw.close()
    if loaded != rows:
        raise BenchFailure(f"COPY loaded {loaded} rows, the file has {rows}")
    return seconds


# -- b. the validating loader ------------------------------------------------------------------

_STAGE_DDL = (
    "CREATE TEMP TABLE bench_stage (ord integer, email text, name text, country text, "
    "age smallint, signup_ts timestamptz) ON COMMIT DELETE ROWS"
)
_STAGE_COPY = "COPY bench_stage (ord, email, name, country, age, signup_ts) FROM STDIN"
_UPSERT = (
    "INSERT INTO users (email, name, country, age, signup_ts) "
    "SELECT DISTINCT ON (email) email, name, country, age, signup_ts FROM bench_stage "
    "ORDER BY email, ord DESC "
    "ON CONFLICT (tenant, email) DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country, "
    "age = EXCLUDED.age, signup_ts = EXCLUDED.signup_ts, updated_at = now()"
)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(ordinal: int, user: User) -> str:
    country = user.country.translate(_ESCAPES) if user.country is not None else "\\N"
    age = str(user.age) if user.age is not None else "\\N"
    ts = user.signup_ts.isoformat() if user.signup_ts is not None else "\\N"
    return (
        f"{ordinal}\t{user.email.translate(_ESCAPES)}\t{user.name.translate(_ESCAPES)}\t"
        f"{country}\t{age}\t{ts}\n"
    )


@dataclass
class LoaderResult:
    seconds: float
    valid: int
    invalid: int


def measure_loader(engine: Engine, csv_path: Path, chunk_size: int) -> LoaderResult:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(_STAGE_DDL)
        raw.commit()

        def flush(buffer: io.StringIO) -> None:
            if buffer.tell():
                buffer.seek(0)
                cursor.copy_expert(_STAGE_COPY, buffer, size=COPY_BLOCK)
                cursor.execute(_UPSERT)
            raw.commit()

        valid = invalid = in_chunk = 0
        buffer = io.StringIO()
        started = time.perf_counter()
        with csv_path.open(newline="", encoding="utf-8") as source:
            reader = csv.reader(source)
            header = next(reader)
            width = len(header)
            for ordinal, values in enumerate(reader):
                outcome = (
                    validate_user(dict(zip(header, values, strict=True)))
                    if len(values) == width
                    else None
                )
                if isinstance(outcome, User):
                    buffer.write(_copy_line(ordinal, outcome))
                    valid += 1
                else:
                    invalid += 1
                in_chunk += 1
                if in_chunk == chunk_size:
                    flush(buffer)
                    buffer, in_chunk = io.StringIO(), 0
        if in_chunk:
            flush(buffer)
        seconds = time.perf_counter() - started
    finally:
        raw.close()
    return LoaderResult(seconds, valid, invalid)


# -- c. Sluice end to end ----------------------------------------------------------------------


def http_json(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    sent = {**bearer(TEST_API_KEY), **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchFailure(f"no VmHWM in /proc/{pid}/status")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    app_id: str = "sluice"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchFailure(
                f"the worker exited with code {self.process.returncode}:\n{self.tail()}"
            )

    def peak_rss_mb(self) -> float:
        """Peak resident set size (VmHWM) of the worker plus its writer processes: the worker
        applies chunks in child processes (streams/processing/pool.py), so they count too."""
        total = _vm_hwm_kb(self.process.pid)
        children = {
            int(pid)
            for task in Path(f"/proc/{self.process.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        }
        for child in children:
            with contextlib.suppress(FileNotFoundError, BenchFailure):
                total += _vm_hwm_kb(child)
        return total / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no worker log)"


@dataclass
class WorkerStack:
    """One worker process on its own embedded broker and a fresh PostgreSQL schema."""

    work: Path  # a scratch directory, removed afterwards
    postgres: str  # where the session's PostgreSQL came from
    bootstrap_servers: str
    url: str  # the fresh schema's database URL
    worker: WorkerProcess


def start_worker_stack(
    stack: contextlib.ExitStack, args: argparse.Namespace, label: str
) -> WorkerStack:
    work = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{label}-"))
    stack.callback(shutil.rmtree, work, ignore_errors=True)
    database_url, source = stack.enter_context(session_database())
    admin = stack.enter_context(engine_for(psycopg2_url(database_url)))
    broker = start_dev_broker(log_path=work / "broker.log")
    stack.callback(broker.stop)
    url = stack.enter_context(fresh_schema(admin, label))
    worker = start_worker(stack, args, broker.bootstrap_servers, url, work)
    return WorkerStack(work, source, broker.bootstrap_servers, url, worker)


def start_worker(
    stack: contextlib.ExitStack, args: argparse.Namespace, bootstrap: str, db_url: str, work: Path
) -> WorkerProcess:
    port, app_id = free_port(), f"bench{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL=db_url,
        SLUICE_APP_ID=app_id,
        SLUICE_DATA_DIR=str(work / "data"),
        SLUICE_API_PORT=str(port),
        SLUICE_PARTITIONS=str(args.partitions),
        SLUICE_WRITERS=str(args.writers),
        SLUICE_DEV_API_KEY=TEST_API_KEY,  # an admin key of the default tenant, for http_json
        PYTHONUNBUFFERED="1",
    )
    log_path = work / "worker.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "worker", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
        )
    worker = WorkerProcess(process, port, log_path, app_id)
    stack.callback(worker.stop)
    deadline = time.monotonic() + 120
    while True:
        worker.check_alive()
        with contextlib.suppress(OSError):
            status, _ = http_json("GET", f"{worker.url}/api/health", timeout=2)
            if status == 200:
                return worker
        if time.monotonic() > deadline:
            raise BenchFailure(f"the worker was not ready within 120 s:\n{worker.tail()}")
        time.sleep(0.2)


@dataclass
class SluiceResult:
    seconds: float
    accepted_seconds: float
    worker_peak_rss_mb: float
    job: dict[str, Any]


def run_job(worker: WorkerProcess, csv_path: Path, chunk_size: int, timeout: float) -> SluiceResult:
    url = (
        f"{worker.url}/api/batch/jobs?type=user-import&updateDuplicates=true&chunkSize={chunk_size}"
    )
    headers = {"Content-Type": "text/csv", "Content-Length": str(csv_path.stat().st_size)}
    started = time.perf_counter()
    with csv_path.open("rb") as body:
        try:
            status, answer = http_json("POST", url, body, headers, timeout=timeout)
        except OSError as exc:
            raise BenchFailure(f"the upload failed: {exc!r}\n{worker.tail()}") from exc
    accepted = time.perf_counter() - started
    if status != 202:
        raise BenchFailure(f"POST answered {status}: {answer}")
    status_url = worker.url + answer["statusUrl"]
    while True:
        worker.check_alive()
        try:
            status, view = http_json("GET", status_url, timeout=30)
        except OSError:
            status, view = 0, None
        if status == 200 and view["status"] == "completed":
            seconds = time.perf_counter() - started
            break
        if status == 200 and view["status"] in ("failed", "cancelled"):
            raise BenchFailure(f"the job ended {view['status']}:\n{json.dumps(view, indent=2)}")
        if time.perf_counter() - started > timeout:
            raise BenchFailure(f"the job was not completed after {timeout:g} s; last: {view}")
        time.sleep(POLL_SECONDS)
    return SluiceResult(seconds, accepted, worker.peak_rss_mb(), view)


def check_job(job: dict[str, Any], generated: Generated) -> None:
    progress = job["progress"]
    counted = progress["successful"] + progress["failed"] + progress["skipped"]
    problems = []
    if counted != generated.rows or progress["processed"] != generated.rows:
        problems.append(f"successful+failed+skipped = {counted}, rows = {generated.rows}")
    if (progress["successful"], progress["failed"]) != (generated.valid, generated.invalid):
        problems.append(
            f"successful/failed = {progress['successful']}/{progress['failed']}, "
            f"generated valid/invalid = {generated.valid}/{generated.invalid}"
        )
    if job["summary"]["deadLettered"]:
        problems.append(f"{job['summary']['deadLettered']} records dead-lettered")
    if problems:
        raise BenchFailure(
            "Sluice's job counts are wrong: " + "; ".join(problems) + f"\n{json.dumps(job)}"
        )


# -- the run -----------------------------------------------------------------------------------


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        database_url, source = stack.enter_context(session_database())
        admin = stack.enter_context(engine_for(psycopg2_url(database_url)))
        csv_path = work / "users.csv"

        print(f"generating {args.rows:,} rows (seed {args.seed}) ...", flush=True)
        generated = generate_csv(csv_path, args.rows, args.seed)
        print(f"  {generated.bytes / 1e6:.1f} MB in {generated.seconds:.1f} s", flush=True)

        print("a. COPY of the raw CSV ...", flush=True)
        with fresh_schema(admin, "copy") as url, engine_for(url) as engine:
            copy_seconds = measure_copy(engine, csv_path, args.rows)

        print(f"b. validating loader, {args.chunk_size} rows per transaction ...", flush=True)
        with fresh_schema(admin, "loader") as url, engine_for(url) as engine:
            create_tables(engine)
            loader = measure_loader(engine, csv_path, args.chunk_size)
            loader_count, loader_digest = users_fingerprint(engine)
        if (loader.valid, loader.invalid, loader_count) != (
            generated.valid,
            generated.invalid,
            generated.distinct,
        ):
            raise BenchFailure(
                f"the validating loader found {loader.valid} valid / {loader.invalid} invalid "
                f"rows and stored {loader_count} users; the generator made {generated.valid} / "
                f"{generated.invalid} and {generated.distinct} distinct identities"
            )

        print(
            f"c. Sluice: 1 worker, {args.partitions} partitions, {args.writers} writers ...",
            flush=True,
        )
        with contextlib.ExitStack() as sluice_stack:
            broker = start_dev_broker(log_path=work / "broker.log")
            sluice_stack.callback(broker.stop)
            url = sluice_stack.enter_context(fresh_schema(admin, "sluice"))
            worker = start_worker(sluice_stack, args, broker.bootstrap_servers, url, work)
            sluice = run_job(worker, csv_path, args.chunk_size, args.timeout)
            worker.stop()
            check_job(sluice.job, generated)
            with engine_for(url) as engine:
                sluice_count, sluice_digest = users_fingerprint(engine)
                print("d. what keeping every record's outcome costs ...", flush=True)
                outcome_rows, results_seconds = measure_results_cost(engine, args.chunk_size)
        if outcome_rows != args.rows:
            raise BenchFailure(f"Sluice kept {outcome_rows} record outcomes for {args.rows} rows")
        if sluice_count != generated.distinct:
            raise BenchFailure(
                f"Sluice stored {sluice_count} users; the file has {generated.distinct} distinct "
                "valid identities"
            )
        if sluice_digest != loader_digest:
            raise BenchFailure(
                "Sluice's users table differs from the validating loader's (same row count): "
                "some email kept another duplicate's values than the last one"
            )

    rows = args.rows
    copy_rate = rate(rows, copy_seconds)
    loader_rate = rate(rows, loader.seconds)
    sluice_rate = rate(rows, sluice.seconds)
    loader_ratio = sluice_rate / loader_rate
    targets = [
        {
            "target": f"≥ {TARGET_RECORDS_PER_SECOND:,} records/s end to end",
            "value": round(sluice_rate),
            "shown": f"{sluice_rate:,.0f} records/s",
            "met": sluice_rate >= TARGET_RECORDS_PER_SECOND,
        },
        {
            "target": f"≥ {TARGET_LOADER_RATIO}× the validating loader",
            "value": round(loader_ratio, 3),
            "shown": f"{loader_ratio:.2f}×",
            "met": loader_ratio >= TARGET_LOADER_RATIO,
        },
        {
            "target": f"worker RSS < {TARGET_WORKER_RSS_MB} MB",
            "value": round(sluice.worker_peak_rss_mb, 1),
            "shown": f"{sluice.worker_peak_rss_mb:.0f} MB",
            "met": sluice.worker_peak_rss_mb < TARGET_WORKER_RSS_MB,
        },
    ]
    return {
        "startedAt": args.started_at,
        "parameters": {
            "rows": rows,
            "chunkSize": args.chunk_size,
            "partitions": args.partitions,
            "writers": args.writers,
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": source,
        },
        "input": asdict(generated),
        "methods": {
            "copy": {"seconds": round(copy_seconds, 3), "recordsPerSecond": round(copy_rate)},
            "validatingLoader": {
                "seconds": round(loader.seconds, 3),
                "recordsPerSecond": round(loader_rate),
            },
            "resultsWrite": {
                "seconds": round(results_seconds, 3),
                "recordsPerSecond": round(rate(rows, results_seconds)),
                "shareOfSluiceTime": round(results_seconds / sluice.seconds, 4),
            },
            "sluice": {
                "seconds": round(sluice.seconds, 3),
                "recordsPerSecond": round(sluice_rate),
                "acceptedAfterSeconds": round(sluice.accepted_seconds, 3),
                "workerPeakRssMb": round(sluice.worker_peak_rss_mb, 1),
                "job": {k: sluice.job[k] for k in ("jobId", "progress", "summary")},
            },
        },
        "ratios": {
            "sluiceToCopy": round(sluice_rate / copy_rate, 4),
            "sluiceToValidatingLoader": round(loader_ratio, 4),
        },
        "targets": targets,
    }


def report(results: dict[str, Any]) -> str:
    p, g, m, r = (results[k] for k in ("parameters", "input", "methods", "ratios"))
    lines = [
        f"\nSluice import benchmark: {p['rows']:,} rows ({g['invalid']:,} invalid, "
        f"{g['duplicates']:,} duplicates, {g['distinct']:,} distinct users), chunk size "
        f"{p['chunkSize']}, {p['partitions']} partitions, {p['writers']} writers, "
        f"PostgreSQL: {results['machine']['postgres']}",
        "",
        f"{'method':<38}{'seconds':>10}{'records/s':>14}",
    ]
    for label, key in (
        ("COPY raw CSV (physical limit)", "copy"),
        (f"validating loader ({p['chunkSize']} rows/txn)", "validatingLoader"),
        ("Sluice end to end", "sluice"),
    ):
        lines.append(f"{label:<38}{m[key]['seconds']:>10.2f}{m[key]['recordsPerSecond']:>14,}")
    lines += [
        "",
        f"Sluice / COPY: {r['sluiceToCopy']:.3f}×   "
        f"Sluice / validating loader: {r['sluiceToValidatingLoader']:.2f}×",
        f"upload answered 202 after {m['sluice']['acceptedAfterSeconds']:.2f} s; "
        f"worker peak RSS (with its writer processes) {m['sluice']['workerPeakRssMb']:.0f} MB",
        f"keeping every record's outcome: {m['resultsWrite']['seconds']:.2f} s of COPY "
        f"({m['resultsWrite']['recordsPerSecond']:,} records/s), "
        f"{100 * m['resultsWrite']['shareOfSluiceTime']:.1f}% of Sluice's end-to-end time",
        "",
        "targets:",
    ]
    for target in results["targets"]:
        lines.append(
            f"  {target['target']}: {target['shown']} — {'met' if target['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_import", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=1000, help="100-10000 (Sluice's range)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds the Sluice job may take"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if not 100 <= args.chunk_size <= 10_000:
        parser.error("--chunk-size must be between 100 and 10000")
    if args.partitions < 1 or args.writers < 1:
        parser.error("--partitions and --writers must be at least 1")
    args.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench("import", parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
