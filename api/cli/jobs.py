"""`sluice submit|status|cancel|results|export`: jobs, as a client of the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from api.cli.client import api_url, download, follow, open_url, request, wait_finished
from api.cli.progress import Lines, UploadReader
from streams.parse import media_type_of_file


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--opt takes key=value, got {pair!r}")
        options[key] = value
    return options


def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    options = _options(args.opt)
    base = api_url()
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        body = json.dumps({"type": args.type, "data": data, "options": options}).encode()
        status, answer = request(
            "POST", f"{base}/api/batch/jobs", body, {"Content-Type": "application/json"}
        )
    else:
        content_type = media_type_of_file(path.name)
        if content_type is None:
            raise SystemExit(f"cannot tell the format of {path.name}: use .csv, .ndjson or .json")
        query = urllib.parse.urlencode({"type": args.type, **options})
        size = path.stat().st_size
        with (
            path.open("rb") as file,  # streamed by http.client, never read whole
            UploadReader(file, size, path.name, Lines(sys.stderr), header=is_csv(path)) as upload,
        ):
            status, answer = request(
                "POST",
                f"{base}/api/batch/jobs?{query}",
                upload,
                {"Content-Type": content_type, "Content-Length": str(size)},
            )
    if status != 202:
        message = answer.get("error", {}).get("message", answer)
        print(f"rejected ({status}): {message}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    if args.follow:
        return follow(base, answer["jobId"], estimated_seconds=answer.get("estimatedTime"))
    return 0


def is_csv(path: Path) -> bool:
    return media_type_of_file(path.name) == "text/csv"


def cmd_status(args: argparse.Namespace) -> int:
    if (args.job_id is None) == (args.batch is None):
        print("sluice status: give a job id or --batch ID (not both)", file=sys.stderr)
        return 2
    job_id = args.job_id
    if args.batch is not None:  # the job an upstream batch became
        query = urllib.parse.urlencode({"batchId": args.batch})
        status, listing = request("GET", f"{api_url()}/api/batch/jobs?{query}")
        if status != 200:
            print(json.dumps(listing, indent=2))
            return 1
        if not listing["items"]:
            print(f"sluice status: no job for batch {args.batch!r} (yet)", file=sys.stderr)
            return 1
        job_id = listing["items"][0]["jobId"]
    status, answer = request("GET", f"{api_url()}/api/batch/jobs/{urllib.parse.quote(job_id)}")
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    status, answer = request("POST", f"{api_url()}/api/batch/jobs/{args.job_id}/cancel")
    print(json.dumps(answer, indent=2))
    return 0 if status == 202 else 1


def cmd_results(args: argparse.Namespace) -> int:
    """Per-record results: a file of failed records to fix and resubmit (-o), or JSON pages."""
    base = f"{api_url()}/api/batch/jobs/{urllib.parse.quote(args.job_id)}"
    if args.output:
        kind = "ndjson" if args.output.endswith((".ndjson", ".jsonl")) else "csv"
        status_query = urllib.parse.urlencode({"status": args.status or "failed"})
        try:
            url = f"{base}/results.{kind}?{status_query}"
            with open_url(url) as answer, open(args.output, "wb") as out:
                while block := answer.read(1 << 16):
                    out.write(block)
        except urllib.error.HTTPError as error:
            print(f"error ({error.code}): {error.read().decode(errors='replace')}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    query = {"limit": "1000"}
    if args.status:
        query["status"] = args.status
    while True:
        status, answer = request("GET", f"{base}/results?{urllib.parse.urlencode(query)}")
        if status != 200:
            print(json.dumps(answer, indent=2), file=sys.stderr)
            return 1
        for item in answer["items"]:
            print(json.dumps(item))
        if not answer["nextCursor"]:
            return 0
        query["cursor"] = answer["nextCursor"]


def cmd_export(args: argparse.Namespace) -> int:
    """Export users to a gzip file: submit, wait (with --follow: a progress bar), download the
    file through its signed URL and check its size and SHA-256."""
    user_filter = {
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
    body = {"type": "user-export", "options": {"format": args.format, "filter": user_filter}}
    base = api_url()
    status, answer = request(
        "POST",
        f"{base}/api/batch/jobs",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 202:
        message = answer.get("error", {}).get("message", answer)
        print(f"rejected ({status}): {message}", file=sys.stderr)
        return 2
    job_id = answer["jobId"]
    if args.follow:
        print(json.dumps(answer, indent=2))
        code = follow(base, job_id, estimated_seconds=answer.get("estimatedTime"))
    else:
        code = wait_finished(base, job_id)
    if code != 0:
        return code
    status, view = request("GET", f"{base}/api/batch/jobs/{job_id}")
    result = view.get("result") if status == 200 else None
    if not result:
        print(f"job {job_id} has no result: {view}", file=sys.stderr)
        return 1
    return download(base + result["downloadUrl"], Path(args.output), result)
