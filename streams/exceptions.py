"""Sluice's errors, and what each one means for a request or a message.

SluiceError
├── ConfigError            a setting is missing or malformed: the process refuses to start
│   └── PortInUse          the port a process was to listen on is taken (carries host, port)
├── RequestError           a batch request is wrong: HTTP 4xx naming the problem
│   ├── OptionError        an option is unknown or out of range (carries the field)
│   ├── UploadError        the upload as a whole cannot be read (streams/parse/)
│   ├── LimitExceeded      a configured limit was passed: 413 naming it
│   ├── NotAuthenticated   no API key, or one that is not valid (revoked, unknown): 401
│   └── NotPermitted       the key's scopes do not cover the request: 403
├── BrokerUnavailable      Kafka did not acknowledge in time: HTTP 503 with Retry-After
├── DatabaseUnavailable    the database is away (refused, lost, no answer): HTTP 503
└── ChunkError             processing one chunk failed; the subclass carries the decision
    ├── PoisonMessage      cannot be decoded or names an unknown type: dead-letter at once
    │   └── ChunkConflict  its (job, chunk) was applied with other content: dead-letter at
    │                      once, counted in no job (the first chunk's outcome stands)
    └── TransientError     may succeed later (connection lost, deadlock): retry after a delay
"""

from __future__ import annotations


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""


class ConfigError(SluiceError):
    """A setting from the environment is missing or malformed."""


class PortInUse(ConfigError):
    """The port a process was to listen on is taken; the caller names the setting to change."""

    def __init__(self, host: str, port: int):
        super().__init__(f"port {port} is in use on {host}")
        self.host = host
        self.port = port


class RequestError(SluiceError):
    """A batch request that cannot be accepted; becomes a 4xx answer."""

    status = 400
    code: str | None = None  # what kind of problem, for programs (default: by status)

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class OptionError(RequestError):
    """A job option that is unknown, malformed or out of range."""

    code = "invalid_option"

    def __init__(self, field: str, reason: str):
        super().__init__(f"option {field!r} {reason}", field=field)


class UploadError(RequestError):
    """The upload as a whole cannot be read; the message tells a person what to fix."""

    code = "unreadable_upload"


class LimitExceeded(RequestError):
    """A request passed a configured limit (413 unless said otherwise); the message names it."""

    status = 413
    code = "limit_exceeded"


class NotAuthenticated(RequestError):
    """The request has no valid API key (missing, malformed, unknown or revoked)."""

    status = 401
    code = "unauthorized"


class NotPermitted(RequestError):
    """The key is valid, but its scopes do not include what the request needs."""

    status = 403
    code = "forbidden"


class BrokerUnavailable(SluiceError):
    """Kafka did not acknowledge in time; nothing of the job was kept."""

    retry_after = 5


class DatabaseUnavailable(SluiceError):
    """The database refused, lost or did not answer the connection; try again shortly."""

    retry_after = 5


class ChunkError(SluiceError):
    """Processing one chunk failed."""


class PoisonMessage(ChunkError):
    """The message cannot be decoded or names something unknown: dead-letter, never retry."""


class ChunkConflict(PoisonMessage):
    """The chunk's (job, chunk index) is in the ledger with a different content digest: it is
    not a redelivery but another chunk reusing the pair. It is dead-lettered without counting
    in the job, whose first outcome for that chunk stands."""

    counts_in_job = False


class TransientError(ChunkError):
    """The chunk may succeed later; retry after `delay` seconds."""

    def __init__(self, message: str, *, delay: float = 0.0):
        super().__init__(message)
        self.delay = delay
