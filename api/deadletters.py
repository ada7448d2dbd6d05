"""HTTP routes for dead letters: list, show, replay (streams/deadletter does the work)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.auth import principal_of, tenant_seen
from api.bodies import BodyLimits, encoding_of, read_whole
from api.deadletter_views import dead_letter_details, dead_letter_view, replay_view
from api.owners import OwnerRouting
from api.queries import page_limit
from streams.clock import now_ms
from streams.deadletter.listing import list_dead_letters, show_dead_letter
from streams.deadletter.reader import Filters, parse_since
from streams.deadletter.replay import replay
from streams.exceptions import RequestError
from streams.parse import json_body
from streams.runtime import Runtime

MIN_RATE, MAX_RATE = 0.01, 10_000.0  # at most 100 s between two dead letters
MAX_JOBS_WAITED = 100
REOPEN_WAIT_SECONDS = 10.0
REPLAY_DEPTH = 2  # {"job": ...}: nothing deeper
REPLAY_FIELDS = {"job", "error", "since", "dryRun", "rate", "tenant"}


def _text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestError(f"{field} must be a string", field=field)
    return value


def filters_of(job: Any, error: Any, since: Any, tenant: str | None) -> Filters:
    since_text = _text(since, "since")
    return Filters(
        job=_text(job, "job"),
        error=_text(error, "error"),
        since_ms=None if since_text is None else parse_since(since_text),
        tenant=tenant,
    )


def _flag(value: str | None, field: str) -> bool:
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise RequestError(f"{field} must be true or false", field=field)


def _replay_request(request: web.Request, body: Any) -> tuple[Filters, bool, float | None]:
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    unknown = sorted(set(body) - REPLAY_FIELDS)
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}", field=unknown[0])
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise RequestError("dryRun must be true or false", field="dryRun")
    rate = body.get("rate")
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not MIN_RATE <= rate <= MAX_RATE
    ):
        raise RequestError(
            f"rate must be a number of dead letters per second, from {MIN_RATE:g} to {MAX_RATE:g}",
            field="rate",
        )
    tenant = tenant_seen(request, body.get("tenant"))
    filters = filters_of(body.get("job"), body.get("error"), body.get("since"), tenant)
    return filters, dry_run, rate


@dataclass(frozen=True)
class DeadLetterApi:
    runtime: Runtime
    owners: OwnerRouting

    async def list_letters(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        page = await list_dead_letters(
            self.runtime,
            filters_of(
                query.get("job"),
                query.get("error"),
                query.get("since"),
                tenant_seen(request, query.get("tenant")),
            ),
            cursor=query.get("cursor") or None,
            limit=page_limit(query.get("limit")),
            include_replayed=_flag(query.get("all"), "all"),
        )
        now = now_ms()
        items = [dead_letter_view(letter, now, replayed) for letter, replayed in page.letters]
        return web.json_response({"items": items, "nextCursor": page.next_cursor})

    async def show(self, request: web.Request) -> web.StreamResponse:
        dead_letter_id = request.match_info["dead_letter_id"]
        found = await show_dead_letter(self.runtime, dead_letter_id)
        if found is None or not principal_of(request).sees(found[0].tenant):
            raise RequestError(f"no dead letter {dead_letter_id[:80]!r}", status=404)
        letter, replayed = found
        return web.json_response(
            {**dead_letter_view(letter, now_ms(), replayed), **dead_letter_details(letter)}
        )

    async def replay(self, request: web.Request) -> web.StreamResponse:
        limits = BodyLimits.field(self.runtime.settings)
        raw = await read_whole(request.content.read, limits, encoding_of(request))
        body = json_body(raw, REPLAY_DEPTH)
        filters, dry_run, rate = _replay_request(request, body)
        started_ms = now_ms()
        report = await replay(self.runtime, filters, dry_run=dry_run, rate=rate)
        if report.replayed and not dry_run:
            waited = list(report.jobs)[:MAX_JOBS_WAITED]
            await self._wait_until_jobs_read_it(request, waited, started_ms)
        return web.json_response(replay_view(report))

    async def _wait_until_jobs_read_it(
        self, request: web.Request, job_ids: list[str], since_ms: int
    ) -> None:
        """Answer once each job's status has taken the replay in (it reads `active`, or has
        already ended again): a client polling for the end must not see the old ending."""
        deadline = time.monotonic() + REOPEN_WAIT_SECONDS
        for job_id in job_ids:
            while time.monotonic() < deadline:
                if await self.owners.replay_seen(request, job_id, since_ms):
                    break
                await asyncio.sleep(0.05)
