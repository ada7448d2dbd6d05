"""`sluice dlq list|show|replay`: dead letters, as a client of the HTTP API."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from typing import Any

from api.cli import ids
from api.cli.client import api_url, call
from api.cli.errors import OK
from api.cli.options import command
from api.cli.output import print_fields, print_json, print_page
from api.cli.render import DLQ_COLUMNS, dead_letter_fields, dead_letter_rows, replay_text


def add_dlq_commands(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)

    def dlq_filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--job", help="only this job's dead letters (an id, or its start)")
        parser.add_argument("--error", help="only this error class, e.g. OperationalError")
        parser.add_argument("--since", help="failed since: 90s, 15m, 2h, 7d or an ISO-8601 time")

    dlq_list = command(
        dlq_commands, "list", help="a table: id, job, chunk, error, attempts, age, replayed"
    )
    dlq_filters(dlq_list)
    dlq_list.add_argument("--all", action="store_true", help="include those already replayed")
    dlq_list.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    dlq_list.add_argument("--cursor", help="continue where a previous list stopped")
    dlq_list.set_defaults(func=cmd_dlq_list)

    dlq_show = command(dlq_commands, "show", help="one dead letter: every header, what it holds")
    dlq_show.add_argument("id", help="<topic>.dlq:<partition>:<offset>, as `dlq list` prints")
    dlq_show.set_defaults(func=cmd_dlq_show)

    dlq_replay = command(
        dlq_commands, "replay", help="publish dead letters again to their source (each one once)"
    )
    dlq_filters(dlq_replay)
    dlq_replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    dlq_replay.add_argument("--rate", type=parse_rate, metavar="N/s", help="at most N per second")
    dlq_replay.set_defaults(func=cmd_dlq_replay)


def _dlq_query(base: str, args: argparse.Namespace) -> dict[str, str]:
    job = None if args.job is None else ids.job_id(base, args.job)
    return {
        name: value
        for name, value in (("job", job), ("error", args.error), ("since", args.since))
        if value
    }


def cmd_dlq_list(args: argparse.Namespace) -> int:
    base = api_url(args.api_url)
    query = {**_dlq_query(base, args), "limit": str(args.limit)}
    if args.all:
        query["all"] = "true"
    if args.cursor:
        query["cursor"] = args.cursor
    answer = call("GET", f"{base}/api/batch/dlq?{urllib.parse.urlencode(query)}")
    if args.json:
        print_json(answer)
        return OK
    waiting = "" if args.all else " waiting for a replay (--all: every one)"
    rows = list(dead_letter_rows(answer["items"]))
    print_page(DLQ_COLUMNS, rows, answer["nextCursor"], f"no dead letters{waiting} at {base}")
    return OK


def cmd_dlq_show(args: argparse.Namespace) -> int:
    base = api_url(args.api_url)
    quoted = urllib.parse.quote(args.id, safe=":")
    answer = call("GET", f"{base}/api/batch/dlq/{quoted}")
    print_json(answer) if args.json else print_fields(dead_letter_fields(answer))
    return OK


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    base = api_url(args.api_url)
    body: dict[str, Any] = {**_dlq_query(base, args), "dryRun": args.dry_run}
    if args.rate is not None:
        body["rate"] = args.rate
    answer = call(
        "POST",
        f"{base}/api/batch/dlq/replay",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        timeout=None,  # a rate-limited replay answers when it is done
    )
    if args.json:
        print_json(answer)
    else:
        print(replay_text(answer))
    return OK


def parse_rate(text: str) -> float:
    value = text.removesuffix("/s")
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate takes N or N/s, got {text!r}") from None
