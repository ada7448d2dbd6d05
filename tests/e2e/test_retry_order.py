"""A chunk retried after transient failures still lands before a later chunk on the same emails."""

from __future__ import annotations

from sqlalchemy import Engine, text

from streams.split import partition_for
from tests.support.workers import Stack

USERS = 50


def _emails(stack: Stack) -> list[str]:
    # One partition only, so each job is exactly one chunk and job B's chunk queues behind A's.
    partitions = int(stack.env()["SLUICE_PARTITIONS"])
    emails: list[str] = []
    i = 0
    while len(emails) < USERS:
        email = f"u{i}@example.com"
        if partition_for(email, partitions) == 0:
            emails.append(email)
        i += 1
    return emails


def _csv(emails: list[str], prefix: str) -> bytes:
    rows = ["email,name"] + [f"{email},{prefix} {i}" for i, email in enumerate(emails)]
    return ("\n".join(rows) + "\n").encode()


def _fail_first_attempts(db: Engine, attempts: int, seconds: float = 0.0) -> None:
    """A real transient failure: serialization_failure (40001), after `seconds`, on the first
    `attempts` attempts of the chunk writing `first …` names. Sequences are not rolled back, so
    the count survives the failed transactions."""
    with db.begin() as connection:
        # unqualified names resolve in the test's schema (the fixtures' search_path)
        connection.execute(text("CREATE SEQUENCE fail_count"))
        connection.execute(
            text(
                f"""
                CREATE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.name LIKE 'first %' THEN
                        IF nextval('fail_count') <= {attempts} THEN
                            PERFORM pg_sleep({seconds});
                            RAISE EXCEPTION 'injected failure' USING ERRCODE = '40001';
                        END IF;
                    END IF;
                    RETURN NEW;
                END $$
                """
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER fail_first BEFORE INSERT OR UPDATE ON users "
                "FOR EACH ROW EXECUTE FUNCTION fail_first()"
            )
        )


def test_retried_chunk_keeps_per_key_order(stack: Stack, db: Engine) -> None:
    worker = stack.worker(None).wait_ready()  # creates `users` in the test's schema
    _fail_first_attempts(db, attempts=2)
    emails = _emails(stack)

    first = stack.submit_csv(worker, _csv(emails, "first"), updateDuplicates="true")
    # the 202 comes after every chunk is acked, so B's chunk follows A's in the partition
    second = stack.submit_csv(worker, _csv(emails, "second"), updateDuplicates="true")
    assert first["totalChunks"] == second["totalChunks"] == 1, (first, second)

    view_a = stack.wait_finished(worker, first["jobId"], timeout=60)
    view_b = stack.wait_finished(worker, second["jobId"], timeout=60)
    for view in (view_a, view_b):
        progress = view["progress"]
        counts = (progress["successful"], progress["failed"], progress["skipped"])
        # the worker's log says why a chunk was retried or dead-lettered
        assert view["status"] == "completed" and counts == (USERS, 0, 0), (view, worker.tail())
        assert view["summary"]["deadLettered"] == 0, view
    assert (view_a["summary"]["created"], view_a["summary"]["updated"]) == (USERS, 0), view_a
    assert (view_b["summary"]["created"], view_b["summary"]["updated"]) == (0, USERS), view_b

    with db.connect() as connection:
        rows = connection.execute(text("SELECT email, name, batch_job_id FROM users")).all()
        # two failed attempts took one number each; the third took one per row
        fired = connection.execute(text("SELECT last_value FROM fail_count")).scalar_one()
    want = {email: f"second {i}" for i, email in enumerate(emails)}
    assert {email: name for email, name, _ in rows} == want
    assert len(rows) == USERS
    assert {job for _, _, job in rows} == {second["jobId"]}
    assert fired == 2 + USERS
    assert worker.metric("sluice_chunks_total", 'result="retried"') == 2


def test_a_parked_chunk_holds_back_only_the_chunks_sharing_its_keys(
    stack: Stack, db: Engine
) -> None:
    worker = stack.worker(None).wait_ready()
    # slow failures keep it parked long enough to see later chunks pass it
    _fail_first_attempts(db, attempts=3, seconds=0.3)
    emails = _emails(stack)  # all on partition 0: one chunk per job, in submission order
    shared, other = emails[:25], emails[25:]

    jobs = [
        stack.submit_csv(worker, _csv(shared, "first"), updateDuplicates="true"),  # parked
        stack.submit_csv(worker, _csv(other, "other"), updateDuplicates="true"),  # passes it
        stack.submit_csv(worker, _csv(shared, "second"), updateDuplicates="true"),  # waits
    ]
    for accepted in jobs:
        view = stack.wait_finished(worker, accepted["jobId"], timeout=60)
        assert view["status"] == "completed" and view["progress"]["failed"] == 0, view

    with db.connect() as connection:
        applied = dict(
            connection.execute(text("SELECT job_id, applied_at FROM sluice_chunks")).all()
        )
        names = dict(connection.execute(text("SELECT email, name FROM users")).all())
    parked, passing, waiting = (applied[accepted["jobId"]] for accepted in jobs)
    # applied_at is each chunk's transaction start: the disjoint chunk went ahead of the parked
    # one, the chunk on the same emails only after it
    assert passing < parked < waiting, (passing, parked, waiting)
    assert names == {
        **{email: f"second {i}" for i, email in enumerate(shared)},
        **{email: f"other {i}" for i, email in enumerate(other)},
    }
    assert worker.metric("sluice_chunks_total", 'result="retried"') == 3
