"""What every PostgreSQL session Sluice opens is told, so that no fault leaves it waiting forever.

The server ends a statement that runs too long, a lock wait that lasts too long, and a
transaction left idle by a client that vanished (its locks go with it); TCP keepalives on both
ends notice a peer that is gone; connecting has a deadline. In the worker process, where
nothing uses COPY, psycopg2 also waits through `answer_within`: a connection that gives no
answer at all (a network that black-holes it, where keepalives see nothing wrong) is abandoned
after `statement_timeout + ANSWER_MARGIN_SECONDS` and the caller gets an OperationalError that
SQLAlchemy treats as a lost connection. Writer processes use COPY, which psycopg2 cannot run
that way: their deadline is the chunk timeout (streams/processing/writer.py).
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE
from sqlalchemy import Engine, text

from streams.config import Settings

ANSWER_MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class SessionLimits:
    statement_timeout: float
    lock_timeout: float
    idle_in_transaction_timeout: float
    connect_timeout: int
    keepalives_idle: int
    keepalives_interval: int
    keepalives_count: int

    @classmethod
    def of(cls, settings: Settings) -> SessionLimits:
        """From the settings of the same names, `SLUICE_DB_*`."""
        return cls(**{name: getattr(settings, f"db_{name}") for name in fields_of(cls)})

    @property
    def answer_deadline(self) -> float:
        return self.statement_timeout + ANSWER_MARGIN_SECONDS

    def connect_args(self, url_options: str | None = None) -> dict[str, Any]:
        """psycopg2 connection arguments; `url_options` (the URL's own `options`, such as a
        search_path) are kept."""
        dead_after = self.keepalives_idle + self.keepalives_interval * self.keepalives_count
        server = {
            "statement_timeout": _ms(self.statement_timeout),
            "lock_timeout": _ms(self.lock_timeout),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_timeout),
            "tcp_keepalives_idle": self.keepalives_idle,
            "tcp_keepalives_interval": self.keepalives_interval,
            "tcp_keepalives_count": self.keepalives_count,
            "tcp_user_timeout": dead_after * 1000,
        }
        settings = [f"-c {name}={value}" for name, value in server.items()]
        return {
            "options": " ".join([url_options, *settings] if url_options else settings),
            "connect_timeout": self.connect_timeout,
            "keepalives": 1,
            "keepalives_idle": self.keepalives_idle,
            "keepalives_interval": self.keepalives_interval,
            "keepalives_count": self.keepalives_count,
            # data sent and not acknowledged for this long: the peer is gone
            "tcp_user_timeout": dead_after * 1000,
        }


def fields_of(cls: type) -> list[str]:
    return [field.name for field in dataclass_fields(cls)]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


LOCK_NOT_AVAILABLE = "55P03"


def session_name(role: str, app_id: str, pid: int) -> str:
    """What a session shows as in pg_stat_activity: `sluice-writer-<app id>-<pid>`."""
    return f"sluice-{role}-{app_id}-{pid}"[:63]


def end_abandoned_writers(engine: Engine, app_id: str, older_than: float) -> list[int]:
    """End the sessions of this app's writer processes that have been in one transaction for
    longer than `older_than` seconds (the chunk timeout): their writer is gone, or past its
    deadline and about to go, and their locks hold other chunks back. PostgreSQL cannot end
    them itself when they are blocked writing to a client that stopped reading (neither the
    statement timeout nor the idle-in-transaction timeout applies then). The pids ended."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.begin() as connection:
        ended = connection.execute(
            # chosen first, then ended: in one WHERE, PostgreSQL may call
            # pg_terminate_backend before the other conditions, on any session
            text(
                "WITH abandoned AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
                "WHERE application_name LIKE :writers AND pid <> pg_backend_pid() "
                "AND datname = current_database() "
                "AND xact_start < now() - make_interval(secs => :seconds)) "
                "SELECT pid FROM abandoned WHERE pg_terminate_backend(pid)"
            ),
            {"writers": session_name("writer", app_id, 0)[:-1] + "%", "seconds": older_than},
        ).scalars()
        return list(ended)


def answer_within(seconds: float) -> None:
    """Every psycopg2 connection of this process gives up waiting after `seconds` per
    operation (connect, statement, fetch). Process-wide; never in a process that uses COPY."""

    def wait(connection: Any) -> None:
        deadline = time.monotonic() + seconds
        while (state := connection.poll()) != POLL_OK:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise psycopg2.OperationalError(
                    f"the database gave no answer within {seconds:g} s: connection abandoned"
                )
            descriptor = connection.fileno()
            if state == POLL_READ:
                select.select([descriptor], [], [], remaining)
            elif state == POLL_WRITE:
                select.select([], [descriptor], [], remaining)
            else:
                raise psycopg2.OperationalError(f"unexpected poll state {state}")

    psycopg2.extensions.set_wait_callback(wait)
