"""The API's side of database faults: one more try on a dropped connection, then 503 with
Retry-After from any endpoint, never 500; and what counts as the database being away."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from api.database import database
from api.errors import errors_as_json
from streams.exceptions import DatabaseUnavailable
from streams.sink.faults import database_away

AWAY = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


async def answer(handler: Any) -> tuple[int, dict[str, str], Any]:
    app = web.Application(middlewares=[errors_as_json])
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, dict(response.headers), body


def test_a_database_that_is_away_is_a_503_with_retry_after() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise AWAY

    status, headers, body = asyncio.run(answer(handler))
    assert (status, headers["Retry-After"]) == (503, "5")
    assert body["error"]["code"] == "unavailable"
    assert "database is not answering" in body["error"]["message"]


def test_other_errors_are_a_json_500_that_tells_nothing_inside() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise ValueError("postgresql://sluice:secret@db/x in /srv/app.py line 3")

    status, _, body = asyncio.run(answer(handler))
    assert status == 500 and body["error"]["code"] == "internal"
    assert "secret" not in str(body) and "app.py" not in str(body)


def test_errors_aiohttp_raises_are_json_too() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPMethodNotAllowed("POST", ["GET"])

    status, headers, body = asyncio.run(answer(handler))
    assert (status, body["error"]["code"], headers["Allow"]) == (405, "method_not_allowed", "GET")


def test_a_call_is_tried_once_more_then_the_database_is_unavailable() -> None:
    calls: list[int] = []

    def flaky(fail_times: int) -> str:
        calls.append(1)
        if len(calls) <= fail_times:
            raise AWAY
        return "row"

    assert asyncio.run(database(flaky, 1)) == "row" and len(calls) == 2
    calls.clear()
    with pytest.raises(DatabaseUnavailable):
        asyncio.run(database(flaky, 2))
    assert len(calls) == 2


def test_a_locked_sqlite_file_counts_as_the_database_away(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a int)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    with pytest.raises(OperationalError) as caught, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert "locked" in str(caught.value) and database_away(caught.value)
    holder.close()
