"""How a worker process logs: quiet by default, Faust's detail on request, JSON by switch.

Quiet (the default) is one line per event that matters: the worker is ready, a job was
accepted, a job finished (all on the `sluice` logger, EVENTS), and every warning or error of any
library, each on one line (a traceback, and the lines after a message's first, only with `-v`).
Faust's and aiokafka's start-up tables, subscriptions, rebalances and timer drift ("woke up too
late": a busy 2-core machine) stay out of it. `-v` gives every library's INFO lines in Faust's
own format, `-vv` DEBUG. JSON (`--log-format json`, SLUICE_LOG_FORMAT) is one object per line:
time, level, logger, message, the event's fields and any traceback.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

EVENTS = logging.getLogger("sluice")  # the events that matter, logged at INFO

HUMAN, JSON = "human", "json"
FAUST_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s"
#: loggers too chatty even at WARNING in quiet mode
QUIET_LOGGERS = {"mode.timers": "ERROR"}  # "Timer … woke up too late, with a drift of …"


def event(message: str, *args: Any, **fields: Any) -> None:
    """Log an event that matters: `message % args` for people, `fields` for JSON readers."""
    EVENTS.info(message, *args, extra={"fields": fields})


def ready(api_url: str, bootstrap_servers: str, database: str) -> None:
    event(
        "ready: API %s, Kafka %s, database %s",
        api_url,
        bootstrap_servers,
        database,
        event="ready",
        api=api_url,
    )


def job_accepted(job_id: str, job_type: str, tenant: str, records: int, chunks: int) -> None:
    event(
        "job %s accepted: %s, %s records in %s chunks (tenant %s)",
        job_id,
        job_type,
        f"{records:,}",
        f"{chunks:,}",
        tenant,
        event="job_accepted",
        jobId=job_id,
        type=job_type,
        tenant=tenant,
        records=records,
        chunks=chunks,
    )


def job_finished(job_id: str, status: str, state: dict[str, Any]) -> None:
    """A job's status turned completed, failed or cancelled (streams/progress.py's state)."""
    started, ended = state.get("acceptedAt"), state.get("completedAt")
    seconds = (ended - started) / 1000 if started and ended else None
    counts = {name: state[name] for name in ("records", "successful", "failed", "skipped")}
    event(
        "job %s %s: %s records (%s successful, %s failed, %s skipped)%s%s",
        job_id,
        status,
        *(f"{value:,}" for value in counts.values()),
        "" if seconds is None else f" in {seconds:.1f} s",
        f"; {state['error']}" if state.get("error") else "",
        event=f"job_{status}",
        jobId=job_id,
        status=status,
        seconds=seconds,
        **counts,
    )


class QuietFormatter(logging.Formatter):
    """`HH:MM:SS message`, one line: a warning says so and names its logger; an exception adds
    its type and first line, never its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        message = _first_line(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {_first_line(str(error))}; -v shows more)"
        if record.name == EVENTS.name and record.levelno == logging.INFO:
            return f"{moment} {message}"
        return f"{moment} {record.levelname.lower()} [{record.name}]: {message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def logging_config(verbosity: int = 0, log_format: str = HUMAN) -> dict[str, Any]:
    """A `logging.config.dictConfig` for a worker process: quiet at verbosity 0, every
    library's INFO lines at 1, DEBUG at 2 and more; `log_format` human or json."""
    if log_format == JSON:
        formatter: dict[str, Any] = {"()": JsonFormatter}
    elif verbosity:
        formatter = {"format": FAUST_FORMAT}
    else:
        formatter = {"()": QuietFormatter}
    if verbosity:
        root_level = "DEBUG" if verbosity > 1 else "INFO"
        loggers: dict[str, Any] = {}
    else:
        root_level = "WARNING"
        loggers = {name: {"level": level} for name, level in QUIET_LOGGERS.items()}
    loggers[EVENTS.name] = {"level": "INFO"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sluice": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "sluice",
            }
        },
        "root": {"level": root_level, "handlers": ["stderr"]},
        "loggers": loggers,
    }
