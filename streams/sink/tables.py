"""Every table Sluice owns, as SQLAlchemy Core metadata; `create_tables` creates what is missing."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from streams.access import DEFAULT_TENANT
from streams.retry import retrying_sync

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_Id = BigInteger().with_variant(Integer(), "sqlite")

# Imported data belongs to a tenant: a user's identity is (tenant, email), so one tenant can
# neither read, overwrite nor probe another's rows. Rows written before tenants existed, or by
# hand without one, belong to the default tenant.
users = Table(
    "users",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, server_default=DEFAULT_TENANT),
    Column("email", String(254), nullable=False),
    Column("name", String(200), nullable=False),
    Column("country", String(2)),
    Column("age", SmallInteger),
    Column("signup_ts", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("batch_job_id", String(36)),
    UniqueConstraint("tenant", "email", name="users_tenant_email_key"),
)

jobs = Table(
    "sluice_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("options", Text, nullable=False, doc="JSON object"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("total_records", BigInteger),
    Column("total_chunks", Integer),
    Column("split_completed_at", DateTime(timezone=True)),
    Column("error", Text),
    Column(
        "stopped",
        String(16),
        doc="cancelled | stopped (stopOnError) | aborted (upload broke off): skip what is left",
    ),
    # kept in step by the progress agent, for listings and retention
    Column("status", String(16), doc="queued | active | completed | failed | cancelled"),
    Column("completed_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    # where the job came from; a topic job is its producer's batch (the `sluice-batch` header).
    # NULL on rows from before the columns.
    Column("batch_id", String(200), doc="the producer's batch id (topic jobs)"),
    Column("origin", String(16), doc="api | topic"),
    Column("chunks_allocated", BigInteger, doc="intake chunks: the next free chunk index"),
    # the form of the job's outcome events (streams/wire/outcomes.py): NULL is JSON, except on
    # a topic batch, where it is not settled yet (its begin named none, no record read yet)
    Column("outcome_format", String(8), doc="json | avro"),
    # the durable truth of a finished job, for when the broker's data is gone (streams/kept.py)
    Column("kept_state", Text, doc="JSON: the job's final progress state, without bookkeeping"),
    Column("dead_letters_lost", Integer, doc="its dead-lettered chunks the broker lost"),
    Index("sluice_jobs_listing", "tenant", "created_at", "id"),
    Index("sluice_jobs_expiry", "expires_at"),
    Index("sluice_jobs_batch", "tenant", "batch_id"),
)

# The ledger of applied chunks: written in the chunk's own transaction, so a redelivered chunk
# finds its outcome here instead of being applied a second time.
chunks = Table(
    "sluice_chunks",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("chunk_index", Integer, primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("partition_seq", Integer, nullable=False),
    Column("records", Integer, nullable=False),
    Column("successful", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("errors", Text, nullable=False, doc="JSON list of a few failures"),
    Column("stopped", String(16), doc="why the chunk was skipped rather than applied"),
    # what was applied (streams/sink/ledger.py content_digest): a chunk that reuses the pair
    # with other content is told from a redelivery. NULL on rows from before the column.
    Column("digest", String(64), doc="SHA-256 of the chunk's content, hex"),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every record's outcome, written in its chunk's transaction (streams/sink/results.py).
results = Table(
    "sluice_results",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("row_no", BigInteger, primary_key=True, doc="the record number in the upload"),
    Column("outcome", String(8), nullable=False, doc="created | updated | skipped | failed"),
    Column("entity_id", BigInteger),
    Column("field", String(64)),
    Column("reason", Text),
    Column("original", Text, doc="a failed record's fields, JSON"),
    # set on the rows a dead-lettered chunk leaves as failed: that chunk, applied after all,
    # replaces them, while another chunk holding the same record counts it as recorded
    Column("dead_chunk", Integer, doc="the dead-lettered chunk this failed row stands for"),
    # pages of failed or skipped records read few rows, not the whole job
    Index(
        "sluice_results_not_successful",
        "job_id",
        "outcome",
        "row_no",
        postgresql_where=text("outcome IN ('skipped', 'failed')"),
        sqlite_where=text("outcome IN ('skipped', 'failed')"),
    ),
)

# Dead letters already published again, so a second replay of the same ones is a no-op.
dead_letter_replays = Table(
    "sluice_dead_letter_replays",
    metadata,
    Column("dead_letter", String(400), primary_key=True, doc="<topic>:<partition>:<offset>@<ms>"),
    Column("job_id", String(36)),
    Column("replayed_at", DateTime(timezone=True), nullable=False),
)

# The mark that tells whether the broker still holds what it held (streams/worker/broker_loss.py):
# one per app id, also written to the app's mark topic.
broker_marks = Table(
    "sluice_broker_marks",
    metadata,
    Column("app_id", String(200), primary_key=True),
    Column("mark", String(36), nullable=False, doc="a UUID, also a record of <app>.mark"),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("lost_at", DateTime(timezone=True), doc="when the broker's data was last found lost"),
)

# Upstream batches whose job was removed (retention, DELETE): a batch id is used once, so one
# produced again later is answered, not applied (streams/sink/removed_batches.py).
removed_batches = Table(
    "sluice_removed_batches",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("batch_id", Text, nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=False),
)

# API keys (streams/access.py): only a key's SHA-256 is kept; its prefix names it to people.
api_keys = Table(
    "sluice_api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True, doc="SHA-256 of the key, hex"),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False),
    Column("scopes", String(64), nullable=False, doc="comma-separated: submit,read,dlq,admin"),
    Column("name", String(200), doc="what the key is for, said by whoever created it"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


def _add_missing_columns(engine: Engine) -> None:
    """The one kind of migration Sluice needs so far: new nullable columns, new indexes."""
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(
                        text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                    )
            for index in table.indexes:
                index.create(connection, checkfirst=True)


def _scope_users_by_tenant(engine: Engine) -> None:
    """A `users` table made before tenants (unique email) becomes one keyed by (tenant, email),
    its rows the default tenant's. PostgreSQL changes it in place; SQLite cannot drop a column's
    UNIQUE, so the table is rebuilt (a development database: small)."""
    inspector = inspect(engine)
    if not inspector.has_table("users"):
        return
    present = {c["name"] for c in inspector.get_columns("users")}
    if "tenant" in present:
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    "ALTER TABLE users ADD COLUMN tenant varchar(64) NOT NULL "
                    f"DEFAULT '{DEFAULT_TENANT}'"
                )
            )
            connection.execute(text("ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key"))
            connection.execute(
                text(
                    "ALTER TABLE users ADD CONSTRAINT users_tenant_email_key UNIQUE (tenant, email)"
                )
            )
            return
        connection.execute(text("ALTER TABLE users RENAME TO users_before_tenants"))
        users.create(connection)
        kept = ", ".join(c.name for c in users.columns if c.name in present)
        connection.execute(
            text(f"INSERT INTO users ({kept}) SELECT {kept} FROM users_before_tenants")
        )
        connection.execute(text("DROP TABLE users_before_tenants"))


def create_tables(engine: Engine) -> None:
    """Create Sluice's tables or add their new columns (idempotent, safe to race)."""
    # two workers starting together: the other one created a table between our check and our
    # CREATE (PostgreSQL reports a unique violation on pg_type); the next try sees it
    racing = (IntegrityError, ProgrammingError, OperationalError)
    for attempt in retrying_sync(3, "creating Sluice's tables", on=racing):
        with attempt:
            metadata.create_all(engine, checkfirst=True)
            _scope_users_by_tenant(engine)
            _add_missing_columns(engine)
