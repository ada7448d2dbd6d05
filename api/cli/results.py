"""`sluice results`: a job's per-record results, page after page, or its failed records as a
file to fix and submit again (-o)."""

from __future__ import annotations

import argparse
import gzip
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api.cli import ids
from api.cli.client import api_url, call, open_url
from api.cli.errors import OK, UsageError
from api.cli.files import format_of, written
from api.cli.options import command
from api.cli.output import print_json, print_json_array, print_lines, say
from api.cli.render import RESULT_HEADER, result_line

PAGE = 1000


def add_results_command(commands: Any) -> None:
    results = command(
        commands, "results", help="a job's per-record results; -o FILE writes its failed records"
    )
    results.add_argument("job_id", help="a job id, or any unique start of one")
    results.add_argument("--status", choices=["successful", "failed", "skipped"])
    results.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the failed records with their errors to FILE: .csv, .ndjson or .jsonl, "
        "gzip-compressed when the name ends in .gz",
    )
    results.set_defaults(func=cmd_results)


def output_kind(name: str) -> tuple[str, bool]:
    """The format a file name asks for (csv or ndjson) and whether it is gzip-compressed."""
    kind, compressed = format_of(name)
    if kind not in ("csv", "ndjson"):
        raise UsageError(f"-o {name}: name the file .csv, .ndjson or .jsonl (add .gz to compress)")
    return kind, compressed


def cmd_results(args: argparse.Namespace) -> int:
    base = api_url(args.api_url)
    job_id = ids.job_id(base, args.job_id)
    url = f"{base}/api/batch/jobs/{urllib.parse.quote(job_id)}"
    if args.output:
        return _write_failed(url, args)
    items = _results(url, args.status)
    if args.json:
        print_json_array(items)
        return OK
    print_lines([RESULT_HEADER])
    print_lines(result_line(item) for item in items)
    return OK


def _results(url: str, status: str | None) -> Iterator[dict[str, Any]]:
    query = {"limit": str(PAGE), **({"status": status} if status else {})}
    while True:
        page = call("GET", f"{url}/results?{urllib.parse.urlencode(query)}")
        yield from page["items"]
        if not page["nextCursor"]:
            return
        query["cursor"] = page["nextCursor"]


def _write_failed(url: str, args: argparse.Namespace) -> int:
    kind, compressed = output_kind(args.output)
    status_query = urllib.parse.urlencode({"status": args.status or "failed"})
    path = Path(args.output)
    size = 0
    with open_url(f"{url}/results.{kind}?{status_query}") as answer, written(path) as temp:
        out: Any = gzip.open(temp, "wb") if compressed else temp.open("wb")  # noqa: SIM115
        with out:
            while block := answer.read(1 << 16):
                out.write(block)
                size += len(block)
    if args.json:
        print_json({"file": str(path), "format": kind, "gzip": compressed, "bytes": size})
    else:
        say(f"wrote {path}: {kind}{', gzip-compressed' if compressed else ''}")
    return OK
