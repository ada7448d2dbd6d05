"""Export benchmark: Sluice's user-export in each format against a single-stream export, one run.

    .venv/bin/python -m tests.bench.bench_export [--rows N] [--partitions 8] [--writers 2]
                                                 [--formats csv,json,ndjson]

Seeds N users (INSERT … SELECT generate_series) into a fresh schema on the PostgreSQL that
tests/support/postgres.py finds, then measures, on the same data:

a. `COPY (SELECT … ORDER BY id) TO STDOUT (FORMAT csv)` into Python's gzip at Sluice's level:
   one stream, no formatting in Python (the physical limit);
b. a plain exporter: a server-side cursor, the csv module with the same formula neutralization,
   gzip (what one process does without Sluice);
c. Sluice: embedded broker + one worker process; POST the export, poll until completed (the
   file assembled), download it through the signed URL, check its SHA-256 and row count.

Prints rows/s, the phases of each Sluice export (accepted after the split, chunks applied, file
assembled), ratios to (a) and (b), and the worker's peak RSS with its writer processes (VmHWM);
writes `bench-results/export-<timestamp>.json`. Exit 0 whether or not it is fast; non-zero only
for errors and wrong results. Compare ratios measured in one run (shared/BASELINES.md).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import time
import urllib.request
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from streams.exports.formats import COLUMNS, COMPRESS_LEVEL, FORMATS, neutralize
from tests.bench.bench_import import (
    WorkerProcess,
    engine_for,
    http_json,
    rate,
    start_worker_stack,
)
from tests.bench.common import REPO, BenchFailure, run_bench

RESULTS_DIR = REPO / "bench-results"
POLL_SECONDS = 0.1
SELECT = f"SELECT {', '.join(COLUMNS)} FROM users ORDER BY id"
SEED_SQL = """
INSERT INTO users (email, name, country, age, signup_ts, created_at, updated_at)
SELECT 'user' || i || '@example.com',
       CASE WHEN i % 97 = 0 THEN 'Doe, Jane ' || i
            WHEN i % 89 = 0 THEN '=cmd ' || i
            WHEN i % 13 = 0 THEN 'Zoë Ünïcødé ' || i
            ELSE 'Name ' || i END,
       (ARRAY['DE', 'US', 'FR', 'GB', NULL])[1 + i % 5],
       CASE WHEN i % 7 = 0 THEN NULL ELSE 13 + i % 118 END,
       CASE WHEN i % 3 = 0 THEN NULL
            ELSE timestamptz '2020-01-01 00:00:00+00' + (i % 150000000) * interval '1 second' END,
       now(), now()
FROM generate_series(1, :rows) AS i
"""


def seed(engine: Engine, rows: int) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(SEED_SQL), {"rows": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE users"))
    return time.perf_counter() - started


# -- a. COPY TO STDOUT into gzip -------------------------------------------------------------


class _GzipSink(io.RawIOBase):
    """What COPY writes to: compressed as it arrives, counted, never kept."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
        self.compressed = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.compressed += len(self._compressor.compress(bytes(data)))
        return len(data)

    def finish(self) -> None:
        self.compressed += len(self._compressor.flush())


def measure_copy(engine: Engine, rows: int) -> dict[str, Any]:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        sink = _GzipSink()
        started = time.perf_counter()
        cursor.copy_expert(f"COPY ({SELECT}) TO STDOUT WITH (FORMAT csv, HEADER true)", sink)
        sink.finish()
        seconds = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
    return {"seconds": seconds, "rowsPerSecond": rate(rows, seconds), "bytes": sink.compressed}


# -- b. a plain single-process exporter ------------------------------------------------------


def measure_plain(engine: Engine, rows: int, work: Path) -> dict[str, Any]:
    raw = engine.raw_connection()
    path = work / "plain.csv.gz"
    written = 0
    try:
        started = time.perf_counter()
        cursor = raw.cursor(name="bench_plain")  # psycopg2: a server-side cursor
        cursor.itersize = 5000
        cursor.execute(SELECT)
        with gzip.open(path, "wt", compresslevel=COMPRESS_LEVEL, newline="") as out:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for row in cursor:
                writer.writerow(
                    [
                        neutralize(v)
                        if isinstance(v, str)
                        else (v.isoformat() if isinstance(v, datetime) else v)
                        for v in row
                    ]
                )
                written += 1
        seconds = time.perf_counter() - started
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    if written != rows:
        raise BenchFailure(f"the plain exporter wrote {written} rows, the table has {rows}")
    return {"seconds": seconds, "rowsPerSecond": rate(rows, seconds), "bytes": path.stat().st_size}


# -- c. Sluice ---------------------------------------------------------------------------------


def run_export(
    worker: WorkerProcess, fmt: str, rows: int, work: Path, timeout: float
) -> dict[str, Any]:
    body = json.dumps({"type": "user-export", "options": {"format": fmt}}).encode()
    started = time.perf_counter()
    status, answer = http_json(
        "POST",
        f"{worker.url}/api/batch/jobs",
        body,
        {"Content-Type": "application/json"},
        timeout=timeout,
    )
    accepted = time.perf_counter() - started
    if status != 202:
        raise BenchFailure(f"POST answered {status}: {answer}")
    status_url = worker.url + answer["statusUrl"]
    applied: float | None = None
    while True:
        worker.check_alive()
        status, view = http_json("GET", status_url, timeout=30)
        now = time.perf_counter() - started
        if status == 200:
            progress = view["progress"]
            if applied is None and progress["currentChunk"] == progress["totalChunks"]:
                applied = now
            if view["status"] == "completed":
                seconds = now
                break
            if view["status"] in ("failed", "cancelled"):
                raise BenchFailure(f"the export ended {view['status']}: {json.dumps(view)}")
        if now > timeout:
            raise BenchFailure(f"the export was not completed after {timeout:g} s; last: {view}")
        time.sleep(POLL_SECONDS)
    result = view["result"]
    if result["recordCount"] != rows or view["progress"]["successful"] != rows:
        raise BenchFailure(f"the export has {result['recordCount']} rows, the table {rows}")
    path = work / f"sluice.{fmt}.gz"
    download_started = time.perf_counter()
    digest = hashlib.sha256()
    link = worker.url + result["downloadUrl"]
    with urllib.request.urlopen(link, timeout=timeout) as answer, path.open("wb") as out:
        while block := answer.read(1 << 20):
            out.write(block)
            digest.update(block)
    download_seconds = time.perf_counter() - download_started
    if digest.hexdigest() != result["sha256"] or path.stat().st_size != result["bytes"]:
        raise BenchFailure(f"the downloaded {fmt} file does not match its result")
    lines = _count_rows(path, fmt)
    if lines != rows:
        raise BenchFailure(f"the {fmt} file decompresses to {lines} rows, expected {rows}")
    path.unlink()
    return {
        "seconds": round(seconds, 3),
        "rowsPerSecond": round(rate(rows, seconds)),
        "acceptedAfterSeconds": round(accepted, 3),
        "chunksAppliedAfterSeconds": round(applied or seconds, 3),
        "assembledAfterSeconds": round(seconds, 3),
        "downloadSeconds": round(download_seconds, 3),
        "bytes": result["bytes"],
        "totalChunks": view["progress"]["totalChunks"],
    }


def _count_rows(path: Path, fmt: str) -> int:
    """Rows in the file (the generated names hold no line breaks)."""
    with gzip.open(path, "rb") as data:
        lines = sum(block.count(b"\n") for block in iter(lambda: data.read(1 << 20), b""))
    return {"csv": lines - 1, "json": lines - 2, "ndjson": lines}[fmt]


# -- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        started = start_worker_stack(stack, args, "export")
        work, source, url, worker = started.work, started.postgres, started.url, started.worker
        engine = stack.enter_context(engine_for(url))  # the worker created the tables

        print(f"seeding {args.rows:,} users ...", flush=True)
        seed_seconds = seed(engine, args.rows)
        print(f"  {seed_seconds:.1f} s", flush=True)

        print("a. COPY … TO STDOUT into gzip ...", flush=True)
        copy = measure_copy(engine, args.rows)
        print("b. plain exporter (server-side cursor, csv module, gzip) ...", flush=True)
        plain = measure_plain(engine, args.rows, work)

        exports: dict[str, Any] = {}
        for fmt in args.formats:
            print(f"c. Sluice export, {fmt} ...", flush=True)
            exports[fmt] = run_export(worker, fmt, args.rows, work, args.timeout)
        rss = worker.peak_rss_mb()
        worker.stop()

    return {
        "startedAt": args.started_at,
        "parameters": {
            "rows": args.rows,
            "partitions": args.partitions,
            "writers": args.writers,
            "formats": args.formats,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": source,
        },
        "methods": {
            "copyGzip": {k: round(v) if k != "seconds" else round(v, 3) for k, v in copy.items()},
            "plainExporter": {
                k: round(v) if k != "seconds" else round(v, 3) for k, v in plain.items()
            },
            "sluice": exports,
        },
        "workerPeakRssMb": round(rss, 1),
        "ratios": {
            fmt: {
                "toCopyGzip": round(e["rowsPerSecond"] / copy["rowsPerSecond"], 4),
                "toPlainExporter": round(e["rowsPerSecond"] / plain["rowsPerSecond"], 4),
            }
            for fmt, e in exports.items()
        },
    }


def report(results: dict[str, Any]) -> str:
    p, m = results["parameters"], results["methods"]
    lines = [
        f"\nSluice export benchmark: {p['rows']:,} users, {p['partitions']} partitions, "
        f"{p['writers']} writers, PostgreSQL: {results['machine']['postgres']}",
        "",
        f"{'method':<44}{'seconds':>9}{'rows/s':>11}{'MB':>8}",
        f"{'a. COPY TO STDOUT + gzip (one stream)':<44}{m['copyGzip']['seconds']:>9.2f}"
        f"{m['copyGzip']['rowsPerSecond']:>11,}{m['copyGzip']['bytes'] / 1e6:>8.1f}",
        f"{'b. plain exporter, csv (one process)':<44}{m['plainExporter']['seconds']:>9.2f}"
        f"{m['plainExporter']['rowsPerSecond']:>11,}{m['plainExporter']['bytes'] / 1e6:>8.1f}",
    ]
    for fmt, e in m["sluice"].items():
        label = f"c. Sluice end to end, {fmt}"
        lines.append(
            f"{label:<44}{e['seconds']:>9.2f}{e['rowsPerSecond']:>11,}{e['bytes'] / 1e6:>8.1f}"
        )
    lines += ["", "phases (seconds from the POST): accepted / chunks applied / file assembled"]
    for fmt, e in m["sluice"].items():
        r = results["ratios"][fmt]
        lines.append(
            f"  {fmt:<7} {e['acceptedAfterSeconds']:>6.2f} / {e['chunksAppliedAfterSeconds']:>6.2f}"
            f" / {e['assembledAfterSeconds']:>6.2f}   ({e['totalChunks']} chunks; "
            f"{r['toCopyGzip']:.2f}× COPY+gzip, {r['toPlainExporter']:.2f}× plain exporter)"
        )
    lines += [
        "",
        f"worker peak RSS (with its writer processes): {results['workerPeakRssMb']:.0f} MB",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_export", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one export may take")
    args = parser.parse_args(argv)
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if not args.formats or set(args.formats) - set(FORMATS):
        parser.error(f"--formats takes some of {', '.join(FORMATS)}")
    if args.partitions < 1 or args.writers < 1:
        parser.error("--partitions and --writers must be at least 1")
    args.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench("export", parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
