"""The `sluice` command: run workers and the dev broker, submit jobs and follow them, look at
and replay dead letters. Each group of commands has its module; this one wires the parser."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api.cli.deadletters import cmd_dlq_list, cmd_dlq_replay, cmd_dlq_show, parse_rate
from api.cli.jobs import cmd_cancel, cmd_export, cmd_results, cmd_status, cmd_submit
from api.cli.keys import add_key_commands
from api.http import mount, web_options, welcome
from streams.exceptions import ConfigError
from streams.worker.build import Api
from streams.worker.commands import add_commands

DESCRIPTION = (
    "Sluice: batch jobs on Kafka. Run workers and the dev broker, submit jobs and follow them, "
    "get their results, export users, look at and replay dead letters, manage API keys."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    add_commands(commands, Api(mount, welcome, web_options))  # run, worker, devbroker, config
    _job_commands(commands)
    _dlq_commands(commands)
    _export_command(commands)
    add_key_commands(commands)
    return parser


def _job_commands(commands: Any) -> None:
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

    status = commands.add_parser("status", help="a job's status, by id or by upstream batch id")
    status.add_argument("job_id", nargs="?")
    status.add_argument("--batch", help="the sluice-batch id an upstream producer gave the job")
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


def _dlq_commands(commands: Any) -> None:
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
    dlq_replay.add_argument("--rate", type=parse_rate, metavar="N/s", help="at most N per second")
    dlq_replay.set_defaults(func=cmd_dlq_replay)


def _export_command(commands: Any) -> None:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG


if __name__ == "__main__":
    sys.exit(main())
