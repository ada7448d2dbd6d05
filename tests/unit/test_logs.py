"""How workers log (streams/logs.py): quiet lines for people, one line per record whatever the
message or exception holds; JSON objects with the event's fields; the levels of each mode."""

from __future__ import annotations

import json
import logging
import sys

from streams.logs import (
    EVENTS,
    JsonFormatter,
    QuietFormatter,
    logging_config,
)


def record(
    name: str, level: int, message: str, *args: object, exc: bool = False, **fields: object
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("missing\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(name, level, __file__, 1, message, args, exc_info)
    if fields:
        made.fields = fields
    return made


def test_an_event_is_its_time_and_message_on_one_line() -> None:
    line = QuietFormatter().format(record(EVENTS.name, logging.INFO, "job %s accepted", "j1"))
    time, message = line.split(" ", 1)
    assert len(time) == 8 and time.count(":") == 2
    assert message == "job j1 accepted"


def test_a_warning_names_its_logger_and_keeps_its_first_line_only() -> None:
    line = QuietFormatter().format(
        record("sqlalchemy", logging.WARNING, "database is locked\n[SQL: INSERT ...]")
    )
    assert line.endswith(" warning [sqlalchemy]: database is locked")


def test_an_exception_adds_its_type_and_first_line_never_a_traceback() -> None:
    line = QuietFormatter().format(record("streams.x", logging.ERROR, "it failed", exc=True))
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith("error [streams.x]: it failed (ValueError: missing; -v shows more)")


def test_json_lines_carry_the_event_fields_and_the_traceback() -> None:
    line = JsonFormatter().format(
        record(EVENTS.name, logging.INFO, "job %s done", "j1", jobId="j1", records=3)
    )
    parsed = json.loads(line)
    assert parsed["message"] == "job j1 done" and parsed["level"] == "info"
    assert (parsed["jobId"], parsed["records"], parsed["logger"]) == ("j1", 3, "sluice")
    assert parsed["time"].endswith("+00:00")
    failed = json.loads(JsonFormatter().format(record("x", logging.ERROR, "boom", exc=True)))
    assert failed["exception"].startswith("Traceback") and "\n" not in line


def test_quiet_hides_library_info_and_timer_drift_but_keeps_events_and_warnings() -> None:
    quiet = logging_config()
    assert quiet["root"]["level"] == "WARNING"
    assert quiet["loggers"]["sluice"]["level"] == "INFO"
    assert quiet["loggers"]["mode.timers"]["level"] == "ERROR"
    assert quiet["formatters"]["sluice"]["()"] is QuietFormatter


def test_verbose_brings_back_every_library_and_json_is_a_switch() -> None:
    assert logging_config(1)["root"]["level"] == "INFO"
    assert logging_config(2)["root"]["level"] == "DEBUG"
    assert "mode.timers" not in logging_config(1)["loggers"]
    assert "format" in logging_config(1)["formatters"]["sluice"]
    assert logging_config(0, "json")["formatters"]["sluice"]["()"] is JsonFormatter
    assert logging_config(1, "json")["formatters"]["sluice"]["()"] is JsonFormatter
