"""`sluice run|worker|devbroker|config`: the processes, and the settings they run with.

What serves HTTP on a worker is not known here: the `sluice` command passes it in (api/http.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from pathlib import Path
from typing import Any

from streams.config import DEV_BROKER_HOST, load_settings
from streams.devbroker import DevBroker, start_dev_broker
from streams.exceptions import ConfigError, PortInUse
from streams.worker.build import Api, build_worker, run_worker
from streams.worker.dev_key import with_dev_key


def add_commands(commands: Any, api: Api) -> None:
    """The process commands, on the `sluice` parser's subcommands."""
    run = commands.add_parser("run", help="dev broker + a worker serving the API")
    run.add_argument("--loglevel", default="info")
    run.set_defaults(func=functools.partial(cmd_run, api=api))

    worker = commands.add_parser("worker", help="a worker (consumes chunks, serves the API)")
    worker.add_argument(
        "--until-idle",
        action="store_true",
        help="drain the topics, then exit (tests, benchmarks, one-shot jobs)",
    )
    worker.add_argument("--port", type=int, help="HTTP port (default SLUICE_API_PORT)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=functools.partial(cmd_worker, api=api))

    broker = commands.add_parser("devbroker", help="the embedded Kafka-protocol dev broker")
    broker.add_argument("--port", type=int, help="default SLUICE_DEV_BROKER_PORT (9092)")
    broker.set_defaults(func=cmd_devbroker)

    config = commands.add_parser("config", help="print the settings in force")
    config.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="as JSON")
    config.set_defaults(func=cmd_config)


def cmd_worker(args: argparse.Namespace, *, api: Api) -> int:
    overrides = {"api_port": args.port} if args.port else {}
    settings = load_settings(**overrides)
    if not settings.bootstrap_servers:
        raise ConfigError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: point it at a Kafka cluster, "
            "or use `sluice run` to start the embedded dev broker with a worker"
        )
    runtime = build_worker(settings, api=api, until_idle=args.until_idle)
    run_worker(runtime, loglevel=args.loglevel)
    return 0


def dev_broker(port: int, hint: str, log_path: Path | None = None) -> DevBroker:
    """The dev broker on DEV_BROKER_HOST:`port`; a port in use is a one-line ConfigError that
    ends with `hint` (what to change)."""
    try:
        return start_dev_broker(port=port, host=DEV_BROKER_HOST, log_path=log_path)
    except PortInUse as exc:
        raise ConfigError(f"port {exc.port} is in use (another Kafka or Sluice?): {hint}") from None


def cmd_devbroker(args: argparse.Namespace) -> int:
    port = args.port or load_settings().dev_broker_port
    broker = dev_broker(port, "pass --port (or set SLUICE_DEV_BROKER_PORT) with a free port")
    print(f"dev broker listening on {broker.bootstrap_servers} (Ctrl-C stops it)", flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()
    return 0


def cmd_run(args: argparse.Namespace, *, api: Api) -> int:
    """Dev broker (unless KAFKA_BOOTSTRAP_SERVERS is set) + one worker serving the API."""
    settings = load_settings()
    broker = None
    if not settings.bootstrap_servers:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        broker = dev_broker(
            settings.dev_broker_port,
            "set SLUICE_DEV_BROKER_PORT to a free port, "
            "or KAFKA_BOOTSTRAP_SERVERS to use that broker",
            log_path=settings.data_dir / "devbroker.log",
        )
        settings = settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        # the dev broker keeps nothing across restarts: neither may the worker's local state
        for stale in settings.data_dir.glob("*-*/"):
            shutil.rmtree(stale, ignore_errors=True)
    where = "embedded dev broker" if broker else "KAFKA_BOOTSTRAP_SERVERS"
    settings, key_told = with_dev_key(settings)
    print(
        f"Sluice: Kafka {settings.bootstrap_servers} ({where}), "
        f"database {settings.database_url_masked}\n{key_told}\n{api.welcome(settings)}",
        flush=True,
    )
    try:
        run_worker(build_worker(settings, api=api), loglevel=args.loglevel)
        return 0
    finally:
        if broker is not None:
            broker.stop()


def cmd_config(args: argparse.Namespace) -> int:
    shown = load_settings().shown()
    if getattr(args, "json", False):
        print(json.dumps(shown, indent=2, default=str))
        return 0
    for name, value in shown.items():
        print(f"{name} = {value}")
    return 0
