"""`sluice keys create|list|revoke`: API keys, against the database (DATABASE_URL, like the
worker), so the first key can be made before any key exists."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import Engine

from api.cli.credentials import save_key, saved_key
from api.cli.errors import NOT_FOUND, CliError, UsageError
from api.cli.options import command
from api.cli.output import print_json, print_table
from api.views import key_view
from streams.access import DEFAULT_SCOPES, SCOPE_MEANINGS, TENANT_RULE, parse_scopes, valid_tenant
from streams.clock import iso
from streams.config import settings
from streams.sink.database import make_engine
from streams.sink.keys import create_key, list_keys, revoke_key


def add_key_commands(commands: Any) -> None:
    keys = commands.add_parser(
        "keys", help="API keys: create, list, revoke (uses DATABASE_URL, like the worker)"
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)

    create = command(
        key_commands,
        "create",
        api=False,
        help="make a key for a tenant; prints it alone on the last line (shown once)",
        description="Scopes: "
        + "; ".join(f"{scope}: {meaning}" for scope, meaning in SCOPE_MEANINGS.items()),
    )
    create.add_argument("--tenant", required=True, help=TENANT_RULE)
    create.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help=f"submit, read, dlq or admin; repeatable or comma-separated "
        f"(default: {','.join(DEFAULT_SCOPES)})",
    )
    create.add_argument("--name", help="what the key is for (shown by `keys list`)")
    create.add_argument(
        "--save",
        action="store_true",
        help="keep it in the CLI's config file even if a key is kept there already",
    )
    create.set_defaults(func=cmd_keys_create)

    listing = command(
        key_commands, "list", api=False, help="keys by prefix: tenant, scopes, revoked"
    )
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.set_defaults(func=cmd_keys_list)

    revoke = command(
        key_commands, "revoke", api=False, help="revoke a key at once, on every worker"
    )
    revoke.add_argument("prefix", help="the key's prefix, as `keys list` shows it")
    revoke.set_defaults(func=cmd_keys_revoke)


def _engine() -> Engine:
    return make_engine(settings().database_url.get_secret_value(), pool_size=1, name="sluice-cli")


def cmd_keys_create(args: argparse.Namespace) -> int:
    if not valid_tenant(args.tenant):
        raise UsageError(f"--tenant must be {TENANT_RULE}")
    names = [name for given in args.scope or DEFAULT_SCOPES for name in given.split(",")]
    try:
        scopes = parse_scopes(names)
    except ValueError as exc:
        raise UsageError(f"--scope: {exc}") from None
    key, record = create_key(_engine(), args.tenant, scopes, args.name)
    config = settings().config_file
    told = f"made key {record.prefix}... for tenant {record.tenant!r}: {', '.join(scopes)}"
    if args.save or saved_key(config) is None:
        save_key(config, key)
        told += f"\nkept in {config} for the sluice command (SLUICE_API_KEY overrides it)"
    if args.json:
        print(f"{told}\nthe key is shown once, in the JSON below", file=sys.stderr)
        print_json({"key": key, **key_view(record)})
        return 0
    print(f"{told}\nthe key is shown once, on the next line:", file=sys.stderr)
    print(key, flush=True)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    if args.tenant is not None and not valid_tenant(args.tenant):
        raise UsageError(f"--tenant must be {TENANT_RULE}")
    shown = [key_view(record) for record in list_keys(_engine(), args.tenant)]
    if args.json:
        print_json(shown)
        return 0
    print_table(
        ("PREFIX", "TENANT", "SCOPES", "CREATED", "REVOKED", "NAME"),
        (
            (key["prefix"], key["tenant"], ",".join(key["scopes"]), *_times(key), key["name"])
            for key in shown
        ),
    )
    return 0


def _times(key: dict[str, Any]) -> tuple[str, str | None]:
    return key["createdAt"], key["revokedAt"]


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    record = revoke_key(_engine(), args.prefix)
    if record is None:
        raise CliError(f"no key {args.prefix!r} (see `sluice keys list`)", NOT_FOUND)
    if args.json:
        print_json(key_view(record))
    else:
        print(f"revoked {record.prefix}... (tenant {record.tenant!r}) at {iso(record.revoked_at)}")
    return 0
