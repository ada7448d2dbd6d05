"""`sluice submit|status|jobs|cancel|delete|errors`: jobs, as a client of the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from api.cli import ids
from api.cli.client import api_url, call, follow, request
from api.cli.errors import DATA, FAILED, INTERRUPTED, NOT_FOUND, OK, CliError, UsageError
from api.cli.options import command
from api.cli.output import print_fields, print_json, print_page, print_table, say
from api.cli.progress import Lines, UploadReader
from api.cli.render import (
    ERROR_COLUMNS,
    JOB_COLUMNS,
    accepted_fields,
    error_rows,
    job_fields,
    job_rows,
)
from streams.parse import media_type_of_file

UPLOAD_TIMEOUT = 600.0  # the answer comes once Kafka has every chunk: large files take a while
PROBE_TIMEOUT = 10.0
ENDED_BADLY = ("failed", "cancelled")


def add_job_commands(commands: Any) -> None:
    submit = command(commands, "submit", help="submit a file as a batch job")
    submit.add_argument("file", help=".csv, .ndjson/.jsonl (streamed) or .json (an array)")
    submit.add_argument("--type", required=True, help="job type, e.g. user-import")
    submit.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job option, e.g. --opt skipDuplicates=true (repeatable)",
    )
    submit.add_argument("--follow", action="store_true", help="show progress until the job ends")
    submit.add_argument(
        "--fail-on-errors",
        action="store_true",
        help="with --follow: exit 1 when any record failed, even if the job completed",
    )
    submit.set_defaults(func=cmd_submit)

    status = command(commands, "status", help="a job's status, by id (or prefix) or batch id")
    status.add_argument("job_id", nargs="?", help="a job id, or any unique start of one")
    status.add_argument("--batch", help="the sluice-batch id an upstream producer gave the job")
    status.set_defaults(func=cmd_status)

    jobs = command(commands, "jobs", help="the jobs you can see, newest first")
    jobs.add_argument("--status", help="queued, active, completed, failed or cancelled")
    jobs.add_argument("--type", help="job type, e.g. user-import")
    jobs.add_argument("--batch", help="only the jobs of this upstream batch id")
    jobs.add_argument("--tenant", help="only this tenant's (an admin key sees every tenant)")
    jobs.add_argument("--limit", type=int, default=20, help="at most this many (1-1000)")
    jobs.add_argument("--cursor", help="continue where a previous listing stopped")
    jobs.set_defaults(func=cmd_jobs)

    for name, func, told in (
        ("cancel", cmd_cancel, "cancel a job: its remaining chunks are skipped"),
        ("delete", cmd_delete, "remove an ended job's results and metadata now"),
        ("errors", cmd_errors, "a job's failed records, grouped by field and reason"),
    ):
        one = command(commands, name, help=told)
        one.add_argument("job_id", help="a job id, or any unique start of one")
        one.set_defaults(func=func)


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--opt takes key=value, got {pair!r}")
        options[key] = value
    return options


def _upload(base: str, path: Path, job_type: str, options: dict[str, str]) -> dict[str, Any]:
    url = f"{base}/api/batch/jobs"
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise CliError(f"{path} is not JSON: {exc}", DATA) from None
        body = json.dumps({"type": job_type, "data": data, "options": options}).encode()
        kind = {"Content-Type": "application/json"}
        return call("POST", url, body, kind, ok=(202,), timeout=UPLOAD_TIMEOUT)
    content_type = media_type_of_file(path.name)
    if content_type is None:
        raise UsageError(f"cannot tell the format of {path.name}: use .csv, .ndjson or .json")
    query = urllib.parse.urlencode({"type": job_type, **options})
    size = path.stat().st_size
    headers = {"Content-Type": content_type, "Content-Length": str(size)}
    header = content_type == "text/csv"
    with (
        path.open("rb") as file,  # streamed by http.client, never read whole
        UploadReader(file, size, path.name, Lines(sys.stderr), header=header) as upload,
    ):
        return call("POST", f"{url}?{query}", upload, headers, ok=(202,), timeout=UPLOAD_TIMEOUT)


def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}", NOT_FOUND)
    if args.fail_on_errors and not args.follow:
        raise UsageError("--fail-on-errors needs --follow (the job's end decides the exit code)")
    options = _options(args.opt)
    base = api_url(args.api_url)
    # a URL that is not Sluice's fails here in seconds, not after the whole upload
    request("GET", f"{base}/api/batch/jobs?limit=1", timeout=PROBE_TIMEOUT)
    answer = _upload(base, path, args.type, options)
    if not args.follow or not args.json:  # with both, the job's end is the one document
        print_json(answer) if args.json else print_fields(accepted_fields(answer))
    if not args.follow:
        return OK
    sys.stdout.flush()  # the job's id is read before the bar starts, even through a pipe
    view = followed(base, answer["jobId"], answer.get("estimatedTime"))
    show_job(view, args.json)
    code, why = verdict(view, fail_on_errors=args.fail_on_errors)
    if why:
        say(f"sluice: {why}")
    return code


def followed(base: str, job_id: str, estimated_seconds: int | None = None) -> dict[str, Any]:
    """follow() the job to its end; Ctrl-C stops following, not the job, and says so."""
    try:
        return follow(base, job_id, estimated_seconds=estimated_seconds)
    except KeyboardInterrupt:
        shown = ids.short(job_id)
        raise CliError(
            f"interrupted; job {shown} goes on (`sluice status {shown}` shows it, "
            f"`sluice cancel {shown}` stops it)",
            INTERRUPTED,
        ) from None


def verdict(view: dict[str, Any], *, fail_on_errors: bool) -> tuple[int, str | None]:
    """The exit code of a followed job that has ended, and why it is not 0."""
    status, job = view.get("status"), ids.short(view.get("jobId"))
    if status in ENDED_BADLY:
        return FAILED, f"job {job} {status}: {view.get('error') or 'no reason given'}"
    failed = (view.get("progress") or {}).get("failed") or 0
    if fail_on_errors and failed:
        return FAILED, f"job {job} {status}, but {failed:,} records failed (--fail-on-errors)"
    return OK, None


def show_job(view: dict[str, Any], as_json: bool) -> None:
    print_json(view) if as_json else print_fields(job_fields(view))


def cmd_status(args: argparse.Namespace) -> int:
    if (args.job_id is None) == (args.batch is None):
        raise UsageError("status: give a job id or --batch ID (not both)")
    base = api_url(args.api_url)
    if args.batch is not None:  # the job an upstream batch became
        query = urllib.parse.urlencode({"batchId": args.batch})
        listing = call("GET", f"{base}/api/batch/jobs?{query}")
        if not listing["items"]:
            raise CliError(f"no job for batch {args.batch!r} (yet) at {base}", NOT_FOUND)
        job_id = listing["items"][0]["jobId"]
    else:
        job_id = ids.job_id(base, args.job_id)
    show_job(call("GET", f"{base}/api/batch/jobs/{urllib.parse.quote(job_id)}"), args.json)
    return OK


def cmd_jobs(args: argparse.Namespace) -> int:
    base = api_url(args.api_url)
    given = (
        ("status", args.status),
        ("type", args.type),
        ("batchId", args.batch),
        ("tenant", args.tenant),
        ("limit", str(args.limit)),
        ("cursor", args.cursor),
    )
    query = urllib.parse.urlencode({name: value for name, value in given if value})
    page = call("GET", f"{base}/api/batch/jobs?{query}")
    if args.json:
        print_json(page)
        return OK
    rows = list(job_rows(page["items"]))
    print_page(JOB_COLUMNS, rows, page["nextCursor"], f"no jobs at {base}")
    return OK


def _job_url(args: argparse.Namespace) -> tuple[str, str]:
    base = api_url(args.api_url)
    job_id = ids.job_id(base, args.job_id)
    return job_id, f"{base}/api/batch/jobs/{urllib.parse.quote(job_id)}"


def cmd_cancel(args: argparse.Namespace) -> int:
    job_id, url = _job_url(args)
    answer = call("POST", f"{url}/cancel", ok=(202,))
    if args.json:
        print_json(answer)
    else:
        say(f"cancelling job {job_id}: its chunks not applied yet are skipped")
    return OK


def cmd_delete(args: argparse.Namespace) -> int:
    job_id, url = _job_url(args)
    call("DELETE", url, ok=(204,))
    if args.json:
        print_json({"jobId": job_id, "deleted": True})
    else:
        say(f"deleted job {job_id}: its results and metadata (the rows it imported stay)")
    return OK


def cmd_errors(args: argparse.Namespace) -> int:
    job_id, url = _job_url(args)
    answer = call("GET", f"{url}/errors")
    if args.json:
        print_json(answer)
    elif not answer["groups"]:
        say(f"job {job_id} has no failed records")
    else:
        print_table(ERROR_COLUMNS, error_rows(answer["groups"]))
    return OK
