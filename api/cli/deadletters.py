"""`sluice dlq list|show|replay`: dead letters, as a client of the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from api.cli.client import api_url, request


def _dlq_query(args: argparse.Namespace) -> dict[str, str]:
    return {
        name: value
        for name, value in (("job", args.job), ("error", args.error), ("since", args.since))
        if value
    }


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_dlq_list(args: argparse.Namespace) -> int:
    query = {**_dlq_query(args), "limit": str(args.limit)}
    if args.all:
        query["all"] = "true"
    if args.cursor:
        query["cursor"] = args.cursor
    status, answer = request("GET", f"{api_url()}/api/batch/dlq?{urllib.parse.urlencode(query)}")
    if status != 200:
        print(
            f"error ({status}): {answer.get('error', {}).get('message', answer)}", file=sys.stderr
        )
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    rows = [("ID", "JOB", "CHUNK", "ERROR", "ATTEMPTS", "AGE", "REPLAYED")]
    for item in answer["items"]:
        rows.append(
            (
                item["id"],
                item["jobId"] or "-",
                "-" if item["chunkIndex"] is None else str(item["chunkIndex"]),
                item["errorClass"],
                "-" if item["attempts"] is None else str(item["attempts"]),
                _age(item["ageSeconds"]),
                "yes" if item["replayedAt"] else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if answer["nextCursor"]:
        print(f"(more: --cursor {answer['nextCursor']})")
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    quoted = urllib.parse.quote(args.id, safe=":")
    status, answer = request("GET", f"{api_url()}/api/batch/dlq/{quoted}")
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {**_dlq_query(args), "dryRun": args.dry_run}
    if args.rate is not None:
        body["rate"] = args.rate
    status, answer = request(
        "POST",
        f"{api_url()}/api/batch/dlq/replay",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        timeout=None,  # a rate-limited replay answers when it is done
    )
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def parse_rate(text: str) -> float:
    value = text.removesuffix("/s")
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate takes N or N/s, got {text!r}") from None
