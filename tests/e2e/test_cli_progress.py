"""The CLI's progress as a person (or a log) sees it, driven as a subprocess against a real
worker: the upload shows bytes and records sent, then the job whole counts of its total, a
rate that is never absurd (at most the whole job in the 2 s a rate needs), failed records and
the end; `export --follow` the same. stderr is not a terminal here: one line every 5 s and at
each change of status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.users_data import generate
from tests.support.workers import REPO, Stack

COUNTS = re.compile(r"([\d,]+)/([\d,]+) records")
RATE = re.compile(r"· ([\d,]+)/s")


def sluice(stack: Stack, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=REPO,
        env=stack.env(SLUICE_API_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )


def number(text: str) -> int:
    return int(text.replace(",", ""))


def job_lines(stderr: str, total: int) -> list[str]:
    """The job's progress lines; each count a whole number of records out of `total`, each rate
    at most the whole job in the 2 s a rate needs."""
    lines = [line for line in stderr.splitlines() if line.startswith(("queued", "active"))]
    for line in lines:
        for done, of in COUNTS.findall(line):
            assert number(of) == total and 0 <= number(done) <= total, line
        for rate in RATE.findall(line):
            assert number(rate) <= total / 2, line
    assert not re.search(r"\d\.\d+/\d", stderr), stderr  # no count drawn as a float
    return lines


def test_submit_and_export_follow_show_progress_a_person_can_read(
    stack: Stack, tmp_path: Path
) -> None:
    worker = stack.worker().wait_ready()
    upload = generate(30_000, seed=11, existing=0)
    path = tmp_path / "users.csv"
    path.write_bytes(upload.csv_bytes())
    options = ("--opt", "chunkSize=100", "--opt", "skipDuplicates=true")
    done = sluice(
        stack,
        worker.url,
        "submit",
        str(path),
        "--type",
        "user-import",
        *options,
        "--follow",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    stderr = done.stderr
    assert "Traceback" not in stderr
    said = stderr.splitlines()

    # the upload: bytes and records sent, then the wait for the server to accept the job
    assert said[0].startswith("uploading users.csv"), stderr
    assert re.search(r"^sent users\.csv: [\d.]+ MB, 30,000 records in \d+:\d\d$", stderr, re.M)
    assert re.search(
        r"splits it into chunks and puts them on Kafka: done in \d+:\d\d$", stderr, re.M
    )

    # the job: whole counts, sane rates, and how it ended
    summary = json.loads(done.stdout)  # --json: the job as it ended, one document
    failed = summary["progress"]["failed"]
    assert failed > 0 and summary["outcome"] == "withErrors"  # generate() makes invalid rows
    assert job_lines(stderr, 30_000), stderr
    final = said[-1]
    assert final.startswith("completed: 30,000 records · "), stderr
    assert f"· {failed:,} failed ·" in final and "withErrors" in final

    # export --follow: the same progress, then the file
    target = tmp_path / "users.csv.gz"
    exported = sluice(stack, worker.url, "export", "--format", "csv", "-o", str(target), "--follow")
    assert exported.returncode == 0, exported.stderr
    total = summary["progress"]["successful"]
    job_lines(exported.stderr, total)
    assert f"completed: {total:,} records · {total:,} successful" in exported.stderr
    assert target.stat().st_size > 0
