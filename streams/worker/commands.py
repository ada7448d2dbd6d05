"""`sluice run|worker|devbroker|config`: the processes, and the settings they run with.

What serves HTTP on a worker is not known here: the `sluice` command passes it in (api/http.py).
Every port a command needs is checked before it starts anything, and a port in use is one line
naming the port and the setting to change (ConfigError, exit 78). SIGTERM (systemd, Docker,
Kubernetes) stops a command as SIGINT (Ctrl-C) does, and it stops what it started: the dev
broker (in a session of its own, so that Ctrl-C reaches it only through us) and the writer
processes.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import signal
from pathlib import Path
from typing import Any

from streams import logs
from streams.config import DEV_BROKER_HOST, Settings, load_settings
from streams.devbroker import DevBroker, port_free, start_dev_broker
from streams.exceptions import ConfigError, PortInUse
from streams.worker.build import Api, build_worker, run_worker
from streams.worker.dev_key import with_dev_key
from streams.worker.ready import tell_when_ready


def add_commands(commands: Any, api: Api) -> None:
    """The process commands, on the `sluice` parser's subcommands."""
    run = commands.add_parser("run", help="dev broker + a worker serving the API")
    _log_options(run)
    run.set_defaults(func=functools.partial(cmd_run, api=api))

    worker = commands.add_parser("worker", help="a worker (consumes chunks, serves the API)")
    worker.add_argument(
        "--until-idle",
        action="store_true",
        help="drain the topics, then exit (tests, benchmarks, one-shot jobs)",
    )
    worker.add_argument("--port", type=int, help="HTTP port (default SLUICE_API_PORT)")
    _log_options(worker)
    worker.set_defaults(func=functools.partial(cmd_worker, api=api))

    broker = commands.add_parser("devbroker", help="the embedded Kafka-protocol dev broker")
    broker.add_argument("--port", type=int, help="default SLUICE_DEV_BROKER_PORT (9092)")
    broker.set_defaults(func=cmd_devbroker)

    config = commands.add_parser("config", help="print the settings in force")
    config.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="as JSON")
    config.set_defaults(func=cmd_config)


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="Faust's and Kafka's own INFO lines (-vv: DEBUG); default: one line per event",
    )
    parser.add_argument(
        "--log-format",
        choices=("human", "json"),
        help="human lines or one JSON object per line (default SLUICE_LOG_FORMAT, human)",
    )


def _stop_on_sigterm() -> None:
    """SIGTERM stops the command as Ctrl-C does (KeyboardInterrupt), until Faust's worker puts
    its own graceful handlers in place: a stop while starting still stops the dev broker."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def check_api_port(settings: Settings, hint: str) -> None:
    """Before anything starts: the API's port is free, or a one-line ConfigError."""
    if not port_free(settings.api_host, settings.api_port):
        raise ConfigError(
            f"port {settings.api_port} is in use (another Sluice?), so the API cannot listen "
            f"on {settings.api_host}:{settings.api_port}: {hint}"
        )


def _ready_event(settings: Settings) -> None:
    url = f"http://{settings.api_host}:{settings.api_port}"
    logs.ready(url, settings.bootstrap_servers, settings.database_url_masked)


def cmd_worker(args: argparse.Namespace, *, api: Api) -> int:
    _stop_on_sigterm()
    overrides = {"api_port": args.port} if args.port else {}
    settings = load_settings(**overrides)
    if not settings.bootstrap_servers:
        raise ConfigError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: point it at a Kafka cluster, "
            "or use `sluice run` to start the embedded dev broker with a worker"
        )
    check_api_port(settings, "pass --port (or set SLUICE_API_PORT) with a free port")
    try:
        runtime = build_worker(settings, api=api, until_idle=args.until_idle)
        tell_when_ready(runtime, functools.partial(_ready_event, settings))
        run_worker(runtime, verbosity=args.verbose, log_format=_log_format(args, settings))
    except KeyboardInterrupt:  # stopped while starting
        pass
    return 0


def _log_format(args: argparse.Namespace, settings: Settings) -> str:
    return str(args.log_format or settings.log_format)


def dev_broker(port: int, hint: str, log_path: Path | None = None) -> DevBroker:
    """The dev broker on DEV_BROKER_HOST:`port`; a port in use is a one-line ConfigError that
    ends with `hint` (what to change)."""
    try:
        return start_dev_broker(port=port, host=DEV_BROKER_HOST, log_path=log_path)
    except PortInUse as exc:
        raise ConfigError(f"port {exc.port} is in use (another Kafka or Sluice?): {hint}") from None


def cmd_devbroker(args: argparse.Namespace) -> int:
    _stop_on_sigterm()
    port = args.port or load_settings().dev_broker_port
    try:
        broker = dev_broker(port, "pass --port (or set SLUICE_DEV_BROKER_PORT) with a free port")
    except KeyboardInterrupt:  # start_dev_broker stopped what it had started
        return 0
    try:
        print(f"dev broker listening on {broker.bootstrap_servers} (Ctrl-C stops it)", flush=True)
        broker.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def cmd_run(args: argparse.Namespace, *, api: Api) -> int:
    """Dev broker (unless KAFKA_BOOTSTRAP_SERVERS is set) + one worker serving the API; the
    welcome once the API answers."""
    _stop_on_sigterm()
    settings = load_settings()
    check_api_port(
        settings, "set SLUICE_API_PORT to a free port (and SLUICE_API_URL for the sluice command)"
    )
    broker = None
    try:
        if not settings.bootstrap_servers:
            settings, broker = _with_dev_broker(settings)
        where = "embedded dev broker" if broker else "KAFKA_BOOTSTRAP_SERVERS"
        settings, key_told = with_dev_key(settings)
        print(
            f"Sluice: Kafka {settings.bootstrap_servers} ({where}), "
            f"database {settings.database_url_masked}\n{key_told}",
            flush=True,
        )
        runtime = build_worker(settings, api=api)
        tell_when_ready(runtime, functools.partial(_welcome, settings, api))
        run_worker(runtime, verbosity=args.verbose, log_format=_log_format(args, settings))
    except KeyboardInterrupt:  # stopped while starting
        pass
    finally:
        if broker is not None:
            broker.stop()
    return 0


def _with_dev_broker(settings: Settings) -> tuple[Settings, DevBroker]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = dev_broker(
        settings.dev_broker_port,
        "set SLUICE_DEV_BROKER_PORT to a free port, or KAFKA_BOOTSTRAP_SERVERS to use that broker",
        log_path=settings.data_dir / "devbroker.log",
    )
    # the dev broker keeps nothing across restarts: neither may the worker's local state
    for stale in settings.data_dir.glob("*-*/"):
        shutil.rmtree(stale, ignore_errors=True)
    return settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers}), broker


def _welcome(settings: Settings, api: Api) -> None:
    _ready_event(settings)
    print(api.welcome(settings), flush=True)


def cmd_config(args: argparse.Namespace) -> int:
    shown = load_settings().shown()
    if getattr(args, "json", False):
        print(json.dumps(shown, indent=2, default=str))
        return 0
    for name, value in shown.items():
        print(f"{name} = {value}")
    return 0
