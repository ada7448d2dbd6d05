"""`sluice export`: export users to a file. Submit the job, wait for it (--follow: a progress
bar), download the file through its signed URL and check its size and SHA-256. The API always
serves gzip; the file is written as its name says: gzip when it ends in .gz, plain otherwise."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from api.cli.client import api_url, call, open_url, wait_finished
from api.cli.errors import FAILED, OK, CliError, UsageError
from api.cli.files import format_of, written
from api.cli.jobs import followed, verdict
from api.cli.options import command
from api.cli.output import print_fields, print_json, say
from api.cli.render import accepted_fields

EXPORT_FORMATS = ("csv", "json", "ndjson")
DOWNLOAD_TIMEOUT = 600.0


def add_export_command(commands: Any) -> None:
    export = command(
        commands,
        "export",
        help="export users to a file (csv, json or ndjson; gzip when its name ends in .gz)",
    )
    export.add_argument("--country", help="two letters, e.g. DE")
    export.add_argument("--signup-from", help="signed up at or after (ISO-8601)")
    export.add_argument("--signup-to", help="signed up before (ISO-8601)")
    export.add_argument("--age-min", type=int, help="13-130, inclusive")
    export.add_argument("--age-max", type=int, help="13-130, inclusive")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="default: the one the -o name ends in (users.ndjson.gz: ndjson), else csv",
    )
    export.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write: .gz means gzip"
    )
    export.add_argument(
        "--follow", action="store_true", help="show progress while waiting for the file"
    )
    export.set_defaults(func=cmd_export)


def export_target(name: str, chosen: str | None) -> tuple[str, bool]:
    """The format to export (--format, else the one the file name ends in, else csv) and
    whether to keep the file gzip-compressed (its name ends in .gz)."""
    named, compressed = format_of(name)
    if chosen is not None and named is not None and named != chosen:
        raise UsageError(f"--format {chosen} but -o {name} names {named}: make them agree")
    return chosen or named or "csv", compressed


def _filter(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key: value
        for key, value in (
            ("country", args.country),
            ("signupFrom", args.signup_from),
            ("signupTo", args.signup_to),
            ("ageMin", args.age_min),
            ("ageMax", args.age_max),
        )
        if value is not None
    }


def cmd_export(args: argparse.Namespace) -> int:
    export_format, compressed = export_target(args.output, args.format)
    base = api_url(args.api_url)
    body = {"type": "user-export", "options": {"format": export_format, "filter": _filter(args)}}
    answer = call(
        "POST",
        f"{base}/api/batch/jobs",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        ok=(202,),
    )
    job_id = answer["jobId"]
    if args.follow:
        if not args.json:
            print_fields(accepted_fields(answer))
        view = followed(base, job_id, answer.get("estimatedTime"))
    else:
        view = wait_finished(base, job_id)
    code, why = verdict(view, fail_on_errors=False)
    result: dict[str, Any] = view.get("result") or {}
    if code == OK and not result:
        code, why = FAILED, f"job {job_id} has ended {view.get('status')} without a file"
    if code != OK:
        if args.json:
            print_json(view)
        say(f"sluice: {why}")
        return code
    path = Path(args.output)
    size = download(base + result["downloadUrl"], path, result, compressed)
    told = {
        "jobId": job_id,
        "file": str(path),
        "format": export_format,
        "gzip": compressed,
        "bytes": size,
        "recordCount": result["recordCount"],
        "sha256": result["sha256"],
    }
    if args.json:
        print_json(told)
    else:
        kind = "gzip" if compressed else f"{export_format}, uncompressed"
        say(f"wrote {path}: {result['recordCount']:,} records, {size:,} bytes ({kind})")
    return OK


def download(url: str, path: Path, result: dict[str, Any], compressed: bool) -> int:
    """Write the gzip file the signed `url` serves to `path`, kept compressed or not, once its
    size and SHA-256 match the job's result; the bytes written."""
    with written(path) as temp:
        if compressed:
            _fetch(url, temp, result)
        else:
            packed = temp.with_name(f"{temp.name}.gz")
            try:
                _fetch(url, packed, result)
                with gzip.open(packed) as inflated, temp.open("wb") as out:
                    shutil.copyfileobj(inflated, out, 1 << 20)  # every gzip member, in order
            finally:
                packed.unlink(missing_ok=True)
    return path.stat().st_size


def _fetch(url: str, target: Path, result: dict[str, Any]) -> None:
    digest, size = hashlib.sha256(), 0
    with open_url(url, DOWNLOAD_TIMEOUT, key=False) as answer, target.open("wb") as out:
        while block := answer.read(1 << 16):
            out.write(block)
            digest.update(block)
            size += len(block)
    if (size, digest.hexdigest()) != (result["bytes"], result["sha256"]):
        raise CliError(
            f"download corrupt: {size} bytes, sha256 {digest.hexdigest()}; expected "
            f"{result['bytes']} bytes, sha256 {result['sha256']}"
        )
