"""Build a worker and run it: the runtime, the writer pool and the chunk processor, the agents
(an explicit list), and whatever the caller serves on the app's web server (the HTTP API)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from streams.agents import chunks, finish, housekeeping, intake, progress, standing
from streams.config import Settings
from streams.exports.signing import signing_key
from streams.kafka.admission import InOrderAdmission
from streams.logs import HUMAN, logging_config
from streams.memory import tune_gc
from streams.processing.outbox import Outbox
from streams.processing.pool import WriterPool, writer_processes
from streams.processing.processor import ChunkProcessor
from streams.runtime import Runtime, create_runtime
from streams.sink.sessions import SessionLimits
from streams.worker import broker_loss
from streams.worker.idle import exit_when_idle


@dataclass(frozen=True)
class Api:
    """What the `sluice` command hands a worker (api/http.py): `mount` adds the HTTP API's
    routes to the runtime's web server; `welcome` tells a person where to find it."""

    mount: Callable[[Runtime], object]
    welcome: Callable[[Settings], str]
    #: options of the aiohttp Application Faust serves (its request handling), by settings
    web_options: Callable[[Settings], Mapping[str, Any]] = lambda _settings: {}


def build_worker(settings: Settings, *, api: Api | None, until_idle: bool = False) -> Runtime:
    runtime = create_runtime(settings, web_options=api.web_options(settings) if api else None)
    # before anything is consumed or served: jobs a broker lost with its data end failed
    broker_loss.check(settings, runtime.engine)
    pool = WriterPool(
        settings.database_url.get_secret_value(),
        writer_processes(settings, runtime.engine.dialect.name),
        SessionLimits.of(settings),
        settings.chunk_timeout,
        settings.app_id,
        signing_key(settings),
        settings.upstream_tenant_names,
    )
    processor = ChunkProcessor(
        pool,
        Outbox(runtime.app, runtime.progress_topic, runtime.engine),
        InOrderAdmission(runtime.commit_guard, runtime.consumer),
        runtime.state,
    )
    chunks.register(runtime, processor)
    progress.register(runtime, finish.attach(runtime), standing.attach(runtime))
    intake.register(runtime)
    housekeeping.register(runtime)
    if until_idle:
        exit_when_idle(runtime)
    if api is not None:
        api.mount(runtime)
    return runtime


def run_worker(runtime: Runtime, *, verbosity: int = 0, log_format: str = HUMAN) -> None:
    """Run until stopped (or, built `until_idle`, until drained), logging as streams/logs.py
    says. SIGTERM and SIGINT stop it gracefully (Faust's handlers)."""
    tune_gc()
    worker = faust.Worker(
        runtime.app,
        loglevel="info",  # below WARN: no spinner; the levels are logging_config's
        quiet=True,
        logging_config=logging_config(verbosity, log_format),
        redirect_stdouts=False,  # what the worker prints (the welcome) is not a log line
    )
    worker.execute_from_commandline()
