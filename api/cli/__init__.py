"""The `sluice` command: run workers and the dev broker, submit jobs and follow them, look at
and replay dead letters. Each group of commands has its module; this one wires the parser and
turns every failure into one line on stderr and an exit code (api/cli/errors.py)."""

from __future__ import annotations

import argparse
import os
import sys

from api.cli.deadletters import add_dlq_commands
from api.cli.errors import failure
from api.cli.export import add_export_command
from api.cli.jobs import add_job_commands
from api.cli.keys import add_key_commands
from api.cli.options import add_shared
from api.cli.results import add_results_command
from api.http import mount, web_options, welcome
from streams.worker.build import Api
from streams.worker.commands import add_commands

DESCRIPTION = (
    "Sluice: batch jobs on Kafka. Run workers and the dev broker, submit jobs and follow them, "
    "get their results, export users, look at and replay dead letters, manage API keys."
)
EPILOG = (
    "Exit codes: 0 ok; 1 the job failed or was cancelled (or records failed, with "
    "--fail-on-errors); 2 usage; 65 the API refused the request; 66 no such job or file; "
    "69 the API is unreachable or unavailable; 73 cannot write the output; 76 not a Sluice API "
    "at that URL; 77 no key or not allowed; 78 bad settings; 130 interrupted."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=DESCRIPTION, epilog=EPILOG)
    add_shared(parser, api=True, json=True, top=True)
    commands = parser.add_subparsers(dest="command", required=True)
    add_commands(commands, Api(mount, welcome, web_options))  # run, worker, devbroker, config
    add_job_commands(commands)  # submit, status, jobs, cancel, delete, errors
    add_results_command(commands)
    add_export_command(commands)
    add_dlq_commands(commands)
    add_key_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2, with the usage
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader gone away shows here, not at exit
        return code
    except (Exception, KeyboardInterrupt) as exc:
        return _failed(exc)


def _failed(exc: BaseException) -> int:
    message, code = failure(exc)
    if isinstance(exc, BrokenPipeError):
        # nothing more can reach the reader; the flush at exit must not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if message:
        print(f"sluice: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
