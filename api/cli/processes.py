"""`sluice run|worker|devbroker|config`: the processes, and the settings they run with."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from streams.config import load_settings
from streams.exceptions import ConfigError

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
