"""What a worker process runs on: its Faust app, topics and table, the job registry's database
engine, and the state of its work. Nothing here knows the agents or the API: the worker builder
(streams/worker/build.py) attaches them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from sqlalchemy import Engine

from streams import topics
from streams.config import Settings
from streams.jobtypes import input_job_types
from streams.kafka import commit_guard, pressure
from streams.kafka.consumer import Backlog, ConsumerView
from streams.kafka.end_offsets import install_faust_fix
from streams.sink.database import make_engine
from streams.sink.sessions import SessionLimits, answer_within, session_name
from streams.worker_state import WorkerState

# A chunk of 10,000 wide records can pass aiokafka's 1 MiB default; the broker has no limit.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    app: faust.App
    chunk_topic: Any
    progress_topic: Any
    outcome_topic: Any
    #: job type → the input topic upstream systems produce its records to
    input_topics: Mapping[str, Any]
    dead_letter_topics: tuple[Any, ...]
    progress_table: Any
    #: this process reads and writes the job registry; chunks go to writer processes
    engine: Engine
    commit_guard: commit_guard.CommitGuard
    consumer: ConsumerView
    state: WorkerState = field(default_factory=WorkerState)
    #: partitions read by consumers of their own (the intake's), beside the Faust consumer's
    backlogs: list[Callable[[], list[Backlog]]] = field(default_factory=list)

    @property
    def source_topics(self) -> frozenset[str]:
        """The topics the Faust consumer reads and Sluice commits itself (not changelogs, not
        Faust's own; the input topics have a consumer of their own)."""
        return frozenset((self.chunk_topic.get_topic_name(), self.progress_topic.get_topic_name()))

    @property
    def consumed_topics(self) -> frozenset[str]:
        """Every topic this worker consumes: its source topics and the input topics."""
        inputs = (topic.get_topic_name() for topic in self.input_topics.values())
        return self.source_topics | frozenset(inputs)

    def backlog(self) -> list[Backlog]:
        """Every partition assigned to this worker, and how far behind its end it is."""
        backlog = self.consumer.backlog(self.source_topics)
        for more in self.backlogs:
            backlog.extend(more())
        return backlog

    @property
    def dead_letter_topic_names(self) -> list[str]:
        return sorted(topic.get_topic_name() for topic in self.dead_letter_topics)


def broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def create_faust_app(settings: Settings, web_options: Mapping[str, Any] | None = None) -> faust.App:
    install_faust_fix()
    web_port = settings.api_port
    datadir = settings.data_dir / f"{settings.app_id}-{web_port}"
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=broker_url(settings.bootstrap_servers),
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        # Chunks are large: a deep per-partition buffer would hold hundreds of MB.
        stream_buffer_maxsize=16,
        table_standby_replicas=1,
        web_enabled=True,
        web_host=settings.api_host,
        web_port=web_port,
        web_bind=settings.api_host,
        canonical_url=f"http://{settings.api_host}:{web_port}",
        datadir=str(datadir),
        web_in_thread=False,
        web_application_options=dict(web_options or {}),
    )


def _registry_engine(settings: Settings) -> Engine:
    """This process's engine, for the job registry (chunks go to writer processes); every
    wait on PostgreSQL here is bounded (streams/sink/sessions.py)."""
    limits = SessionLimits.of(settings)
    url = settings.database_url.get_secret_value()
    name = session_name("worker", settings.app_id, os.getpid())
    engine = make_engine(url, pool_size=2, limits=limits, name=name)
    if engine.dialect.name == "postgresql":
        answer_within(limits.answer_deadline)
    return engine


def _input_topics(app: Any, settings: Settings) -> dict[str, Any]:
    """The input topic of each job type that takes records (`<app>.in.<type>`)."""
    return {
        name: app.topic(
            topics.input_topic(settings.app_id, name),
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        for name in input_job_types()
    }


def _dead_letter_topics(app: Any, settings: Settings, sources: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        app.topic(
            topics.dead_letter_topic(source.get_topic_name()),
            value_serializer="raw",
            partitions=settings.partitions,
            internal=True,
        )
        for source in sources
    )


def _bytes_topic(app: Any, name: str, settings: Settings) -> Any:
    """A topic Sluice creates, whose keys and values are bytes it encodes itself."""
    return app.topic(
        name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
    )


def create_runtime(settings: Settings, web_options: Mapping[str, Any] | None = None) -> Runtime:
    """The app with its topics and table, the commit guard installed under its consumer;
    `web_options` go to the aiohttp Application of its web server (given by the API)."""
    app = create_faust_app(settings, web_options)
    chunk_topic = _bytes_topic(app, topics.chunk_topic(settings.app_id), settings)
    progress_topic = app.topic(
        topics.progress_topic(settings.app_id),
        key_type=str,
        key_serializer="json",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
    )
    outcome_topic = _bytes_topic(app, topics.outcome_topic(settings.app_id), settings)
    input_topics = _input_topics(app, settings)
    dead_letter_topics = _dead_letter_topics(
        app, settings, (chunk_topic, progress_topic, *input_topics.values())
    )
    progress_table = app.Table(
        topics.PROGRESS_TABLE,
        default=None,
        # JSON keys on both sides, or table routing picks the wrong worker (BROKER.md #5)
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        partitions=settings.partitions,
        # standbys apply changelog updates every N events; 1 keeps them exact
        standby_buffer_size=1,
    )
    guard = commit_guard.CommitGuard(
        {chunk_topic.get_topic_name(), progress_topic.get_topic_name()}
    )
    commit_guard.install(app, guard)
    # chunks are fetched as the chunk agent has room, after progress events and changelogs
    pressure.install(app, [chunk_topic.get_topic_name()])
    return Runtime(
        settings=settings,
        app=app,
        chunk_topic=chunk_topic,
        progress_topic=progress_topic,
        outcome_topic=outcome_topic,
        input_topics=input_topics,
        dead_letter_topics=dead_letter_topics,
        progress_table=progress_table,
        engine=_registry_engine(settings),
        commit_guard=guard,
        consumer=ConsumerView(app),
    )
