"""The `sluice` command: run workers and the dev broker, submit jobs and follow them."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from streams.config import load_settings
from streams.exceptions import ConfigError

TERMINAL = {"completed", "failed", "cancelled"}
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
}


def api_url() -> str:
    default_port = os.environ.get("SLUICE_API_PORT", "8000")
    return os.environ.get("SLUICE_API_URL", f"http://127.0.0.1:{default_port}").rstrip("/")


# -- processes --------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from api.http import mount
    from streams.app import create_app
    from streams.worker import run_worker

    if args.port:
        os.environ["SLUICE_API_PORT"] = str(args.port)
    settings = load_settings()
    if not settings.bootstrap_servers:
        raise ConfigError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: point it at a Kafka cluster, "
            "or use `sluice run` to start the embedded dev broker with a worker"
        )
    sluice = create_app(settings)
    mount(sluice)
    run_worker(sluice, until_idle=args.until_idle, loglevel=args.loglevel)
    return 0


def cmd_devbroker(args: argparse.Namespace) -> int:
    from streams.devbroker import start_dev_broker

    broker = start_dev_broker(port=args.port)
    print(f"dev broker listening on {broker.bootstrap_servers} (Ctrl-C stops it)", flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Dev broker (unless KAFKA_BOOTSTRAP_SERVERS is set) + one worker serving the API."""
    from streams.devbroker import start_dev_broker

    broker = None
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        data_dir = Path(os.environ.get("SLUICE_DATA_DIR", ".sluice"))
        data_dir.mkdir(parents=True, exist_ok=True)
        broker = start_dev_broker(log_path=data_dir / "devbroker.log")
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        # the dev broker keeps nothing across restarts: neither may the worker's local state
        for stale in data_dir.glob("*-*/"):
            _remove_tree(stale)
    settings = load_settings()
    url = f"http://{settings.api_host}:{settings.api_port}"
    where = "embedded dev broker" if broker else "KAFKA_BOOTSTRAP_SERVERS"
    print(
        f"Sluice: Kafka {settings.bootstrap_servers} ({where}), "
        f"database {settings.database_url_masked}\n"
        f"API: {url}  (ready once `curl {url}/api/health` answers 200)\n"
        f"Submit a job:\n"
        f"  .venv/bin/sluice submit docs/examples/users.csv --type user-import "
        f"--opt skipDuplicates=true --follow\n"
        f"  curl -X POST -H 'Content-Type: text/csv' --data-binary @docs/examples/users.csv "
        f"'{url}/api/batch/jobs?type=user-import'\n",
        flush=True,
    )
    try:
        args.until_idle = False
        args.port = None
        return cmd_worker(args)
    finally:
        if broker is not None:
            broker.stop()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- client -----------------------------------------------------------------------------------


def _request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = 600,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload)
        except ValueError:
            return error.code, {"error": {"message": payload.decode(errors="replace")}}


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
        status, answer = _request(
            "POST", f"{base}/api/batch/jobs", body, {"Content-Type": "application/json"}
        )
    else:
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise SystemExit(f"cannot tell the format of {path.name}: use .csv, .ndjson or .json")
        query = urllib.parse.urlencode({"type": args.type, **options})
        with path.open("rb") as upload:  # streamed by http.client, never read whole
            status, answer = _request(
                "POST",
                f"{base}/api/batch/jobs?{query}",
                upload,
                {"Content-Type": content_type, "Content-Length": str(path.stat().st_size)},
            )
    if status != 202:
        message = answer.get("error", {}).get("message", answer)
        print(f"rejected ({status}): {message}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    if args.follow:
        return follow(base, answer["jobId"])
    return 0


def follow(base: str, job_id: str, interval: float = 0.5) -> int:
    """A live progress bar until the job ends; then the summary. Exit 0 only if completed."""
    from tqdm import tqdm

    bar = tqdm(total=None, unit="rec", unit_scale=True, desc=job_id[:8], file=sys.stderr)
    view: dict[str, Any] = {}
    try:
        while True:
            status, view = _request("GET", f"{base}/api/batch/jobs/{job_id}")
            if status == 200:
                progress = view["progress"]
                if progress["total"] is not None and bar.total != progress["total"]:
                    bar.total = progress["total"]
                bar.n = progress["processed"]
                bar.set_postfix(
                    status=view["status"], failed=progress["failed"], skipped=progress["skipped"]
                )
                bar.refresh()
                if view["status"] in TERMINAL:
                    break
            time.sleep(interval)
    finally:
        bar.close()
    print(
        json.dumps(
            {
                "status": view["status"],
                "progress": view["progress"],
                "summary": view["summary"],
                "error": view["error"],
            },
            indent=2,
        )
    )
    return 0 if view["status"] == "completed" else 1


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
    status, answer = _request(
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
        code = follow(base, job_id)
    else:
        code = _wait_finished(base, job_id)
    if code != 0:
        return code
    status, view = _request("GET", f"{base}/api/batch/jobs/{job_id}")
    result = view.get("result") if status == 200 else None
    if not result:
        print(f"job {job_id} has no result: {view}", file=sys.stderr)
        return 1
    return _download(base + result["downloadUrl"], Path(args.output), result)


def _wait_finished(base: str, job_id: str, interval: float = 0.5) -> int:
    while True:
        status, view = _request("GET", f"{base}/api/batch/jobs/{job_id}")
        if status == 200 and view["status"] in TERMINAL:
            if view["status"] != "completed":
                print(f"job {job_id} {view['status']}: {view['error']}", file=sys.stderr)
            return 0 if view["status"] == "completed" else 1
        time.sleep(interval)


def _download(url: str, path: Path, result: dict[str, Any]) -> int:
    """Stream the file to `path` (a temporary name, renamed once its SHA-256 matches)."""
    temp = path.with_name(f".{path.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=600) as answer, temp.open("wb") as out:
            while block := answer.read(1 << 16):
                out.write(block)
                digest.update(block)
                size += len(block)
    except urllib.error.HTTPError as error:
        temp.unlink(missing_ok=True)
        print(
            f"download failed ({error.code}): {error.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    if (size, digest.hexdigest()) != (result["bytes"], result["sha256"]):
        temp.unlink(missing_ok=True)
        print(
            f"download corrupt: {size} bytes, sha256 {digest.hexdigest()}; expected "
            f"{result['bytes']} bytes, sha256 {result['sha256']}",
            file=sys.stderr,
        )
        return 1
    os.replace(temp, path)
    print(
        f"wrote {path}: {result['recordCount']:,} records, {size:,} bytes, "
        f"sha256 {result['sha256']}",
        file=sys.stderr,
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status, answer = _request("GET", f"{api_url()}/api/batch/jobs/{args.job_id}")
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    status, answer = _request("POST", f"{api_url()}/api/batch/jobs/{args.job_id}/cancel")
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
            with urllib.request.urlopen(url, timeout=600) as answer, open(args.output, "wb") as out:
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
        status, answer = _request("GET", f"{base}/results?{urllib.parse.urlencode(query)}")
        if status != 200:
            print(json.dumps(answer, indent=2), file=sys.stderr)
            return 1
        for item in answer["items"]:
            print(json.dumps(item))
        if not answer["nextCursor"]:
            return 0
        query["cursor"] = answer["nextCursor"]


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
    status, answer = _request("GET", f"{api_url()}/api/batch/dlq?{urllib.parse.urlencode(query)}")
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
    status, answer = _request("GET", f"{api_url()}/api/batch/dlq/{quoted}")
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {**_dlq_query(args), "dryRun": args.dry_run}
    if args.rate is not None:
        body["rate"] = args.rate
    status, answer = _request(
        "POST",
        f"{api_url()}/api/batch/dlq/replay",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        timeout=None,  # a rate-limited replay answers when it is done
    )
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def _rate(text: str) -> float:
    value = text.removesuffix("/s")
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate takes N or N/s, got {text!r}") from None


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    for field in dataclasses.fields(settings):
        value = (
            settings.database_url_masked
            if field.name == "database_url"
            else getattr(settings, field.name)
        )
        if field.name == "signing_key" and value:
            value = "***"
        print(f"{field.name} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="dev broker + a worker serving the API")
    run.add_argument("--loglevel", default="info")
    run.set_defaults(func=cmd_run)

    worker = commands.add_parser("worker", help="a worker (consumes chunks, serves the API)")
    worker.add_argument(
        "--until-idle",
        action="store_true",
        help="drain the topics, then exit (tests, benchmarks, one-shot jobs)",
    )
    worker.add_argument("--port", type=int, help="HTTP port (default SLUICE_API_PORT)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=cmd_worker)

    broker = commands.add_parser("devbroker", help="the embedded Kafka-protocol dev broker")
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(func=cmd_devbroker)

    submit = commands.add_parser("submit", help="submit a file as a batch job")
    submit.add_argument("file")
    submit.add_argument("--type", required=True, help="job type, e.g. user-import")
    submit.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job option, e.g. --opt skipDuplicates=true (repeatable)",
    )
    submit.add_argument("--follow", action="store_true", help="show progress until the job ends")
    submit.set_defaults(func=cmd_submit)

    status = commands.add_parser("status", help="a job's status")
    status.add_argument("job_id")
    status.set_defaults(func=cmd_status)

    cancel = commands.add_parser("cancel", help="cancel a job: its remaining chunks are skipped")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=cmd_cancel)

    results = commands.add_parser(
        "results", help="a job's per-record results; -o FILE writes its failed records"
    )
    results.add_argument("job_id")
    results.add_argument("--status", choices=["successful", "failed", "skipped"])
    results.add_argument(
        "-o", "--output", help="write failed records with their errors (.csv or .ndjson)"
    )
    results.set_defaults(func=cmd_results)

    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)

    def dlq_filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--job", help="only this job's dead letters")
        parser.add_argument("--error", help="only this error class, e.g. OperationalError")
        parser.add_argument("--since", help="failed since: 90s, 15m, 2h, 7d or an ISO-8601 time")

    dlq_list = dlq_commands.add_parser("list", help="a table: id, job, chunk, error, attempts, age")
    dlq_filters(dlq_list)
    dlq_list.add_argument("--all", action="store_true", help="include those already replayed")
    dlq_list.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    dlq_list.add_argument("--cursor", help="continue where a previous list stopped")
    dlq_list.add_argument("--json", action="store_true", help="the API's answer, as JSON")
    dlq_list.set_defaults(func=cmd_dlq_list)

    dlq_show = dlq_commands.add_parser("show", help="one dead letter: every header, what it holds")
    dlq_show.add_argument("id", help="<topic>.dlq:<partition>:<offset>, as `dlq list` prints")
    dlq_show.set_defaults(func=cmd_dlq_show)

    dlq_replay = dlq_commands.add_parser(
        "replay", help="publish dead letters again to their source (each one once)"
    )
    dlq_filters(dlq_replay)
    dlq_replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    dlq_replay.add_argument("--rate", type=_rate, metavar="N/s", help="at most N per second")
    dlq_replay.set_defaults(func=cmd_dlq_replay)

    export = commands.add_parser(
        "export", help="export users to a gzip file (csv, json or ndjson), filtered"
    )
    export.add_argument("--country", help="two letters, e.g. DE")
    export.add_argument("--signup-from", help="signed up at or after (ISO-8601)")
    export.add_argument("--signup-to", help="signed up before (ISO-8601)")
    export.add_argument("--age-min", type=int, help="13-130, inclusive")
    export.add_argument("--age-max", type=int, help="13-130, inclusive")
    export.add_argument("--format", required=True, choices=("csv", "json", "ndjson"))
    export.add_argument("-o", "--output", required=True, help="where to write the .gz file")
    export.add_argument(
        "--follow", action="store_true", help="show progress while waiting for the file"
    )
    export.set_defaults(func=cmd_export)

    config = commands.add_parser("config", help="print the settings in force")
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG


if __name__ == "__main__":
    sys.exit(main())
