"""The switches every `sluice` command that talks to the API, or prints data, shares: given
before the command or after it (`sluice --json jobs`, `sluice jobs --json`)."""

from __future__ import annotations

import argparse
from typing import Any

API_URL_HELP = (
    "the Sluice API to talk to, e.g. http://127.0.0.1:8001 "
    "(default: SLUICE_API_URL, else http://127.0.0.1:SLUICE_API_PORT)"
)
JSON_HELP = "print one JSON document on stdout, for programs (default: tables for people)"


def add_shared(parser: argparse.ArgumentParser, *, api: bool, json: bool, top: bool) -> None:
    """--api-url and --json on `parser`. On a command's parser they default to nothing at all,
    so that the same switch given before the command is not overwritten."""
    default: Any = None if top else argparse.SUPPRESS
    if api:
        parser.add_argument("--api-url", metavar="URL", default=default, help=API_URL_HELP)
    if json:
        parser.add_argument(
            "--json", action="store_true", default=False if top else default, help=JSON_HELP
        )


def command(
    commands: Any, name: str, *, api: bool = True, json: bool = True, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand with the shared switches it needs."""
    parser: argparse.ArgumentParser = commands.add_parser(name, **kwargs)
    add_shared(parser, api=api, json=json, top=False)
    return parser
