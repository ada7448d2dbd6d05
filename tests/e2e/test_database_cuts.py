"""PostgreSQL connections cut in the middle of chunks: chunks retry, the job applies once."""

from __future__ import annotations

import time

from sqlalchemy import Engine, make_url, text

from tests.e2e.helpers import assert_job_matches, assert_table_matches, seed_existing
from tests.support.tcp_proxy import TcpProxy
from tests.support.users_data import expected, generate
from tests.support.workers import Stack, http

SLOW = {"SLUICE_WRITERS": "1", "SLUICE_BATCH_CHUNKS": "1"}


def test_connections_cut_mid_job(stack: Stack, db: Engine) -> None:
    url = make_url(stack.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        stack.database_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        worker = stack.worker(None, **SLOW).wait_ready()
        upload = generate(30_000, seed=61)
        seed_existing(db, upload)
        accepted = stack.submit_csv(
            worker, upload.csv_bytes(), chunkSize="100", updateDuplicates="true"
        )
        job = accepted["jobId"]
        cut_connections = 0
        started = time.monotonic()
        for _ in range(4):  # cut while chunks are being applied
            time.sleep(0.7)
            cut_connections += proxy.cut()
        view = stack.wait_finished(worker, job, timeout=300)
        retries = worker.metric("sluice_chunks_total", 'result="retried"')
        took = time.monotonic() - started
        print(
            f"cut {cut_connections} connections in 4 cuts; {retries:.0f} chunk retries; "
            f"job done {took:.1f}s after the first cut"
        )
    assert cut_connections > 0
    want = expected(upload, "update")
    assert_job_matches(view, want, total=30_000)
    assert_table_matches(db, want)
    assert view["summary"]["deadLettered"] == 0
    with db.connect() as connection:
        chunks = connection.execute(
            text("SELECT count(*) FROM sluice_chunks WHERE job_id = :j"), {"j": job}
        ).scalar_one()
    assert chunks == accepted["totalChunks"]
    assert http("GET", f"{worker.url}/api/health")[0] == 200
