"""Turn the three shapes of a batch request into a submitted job.

- a raw `text/csv` or `application/x-ndjson` body, type and options in the query string;
- `multipart/form-data`: option fields first, then the file part;
- `application/json` `{type, data: [...], options: {...}}` for small inline batches, or
  `{type, options}` without `data` for a type that makes its own records (`user-export`).
Bodies are streamed block by block into the parser and the splitter; only the inline JSON form
is read whole, and it is bounded by SLUICE_MAX_INLINE_BYTES.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from api.auth import principal_of
from api.bodies import BodyLimits, body_blocks, encoding_of, read_whole
from streams.exceptions import LimitExceeded, RequestError, UploadError
from streams.jobtypes import JOB_TYPES, get_job_type
from streams.jobtypes.base import JobType
from streams.models import ParsedRecord
from streams.parse import (
    NdjsonParser,
    ParseLimits,
    RecordParser,
    json_body,
    media_type_of_file,
    parser_for,
    records_from_json_items,
)
from streams.runtime import Runtime
from streams.submit import Accepted, JobSubmission, check_columns, submit_generated


def _job_type_and_options(raw: Mapping[str, Any]) -> tuple[JobType, dict[str, Any]]:
    values = dict(raw)
    job_type = get_job_type(values.pop("type", None))
    return job_type, job_type.parse_options(values)


def _check_takes_upload(job_type: JobType) -> None:
    if job_type.generates_records:
        uploads = sorted(name for name, t in JOB_TYPES.items() if not t.generates_records)
        raise RequestError(
            f"job type {job_type.name!r} takes no upload (it reads its records itself): "
            f'POST application/json {{"type": "{job_type.name}", "options": {{...}}}}; '
            f"uploads are for {', '.join(uploads)}",
            field="type",
        )


def _generating_type(name: Any) -> JobType | None:
    job_type = JOB_TYPES.get(name) if isinstance(name, str) else None
    return job_type if job_type is not None and job_type.generates_records else None


async def submit_stream(
    runtime: Runtime,
    job_type: JobType,
    options: Mapping[str, Any],
    parser: RecordParser,
    blocks: AsyncIterator[bytes],
    tenant: str,
) -> Accepted:
    """Parse and split an upload while it arrives; the job exists once its columns are known."""
    _check_takes_upload(job_type)
    submission: JobSubmission | None = None
    waiting: list[ParsedRecord] = []
    per_record_columns = isinstance(parser, NdjsonParser)

    async def forward(records: list[ParsedRecord]) -> None:
        nonlocal submission, waiting
        if submission is None:
            waiting.extend(records)
            if parser.columns is None:
                return
            check_columns(job_type, parser.columns)
            submission = JobSubmission(runtime, job_type, options, tenant)
            await submission.open()
            submission.note_columns(parser.columns)
            if per_record_columns:
                submission.describe_records(json_values=True)
            else:
                submission.describe_records(columns=parser.columns, json_values=False)
            records, waiting = waiting, []
        if per_record_columns:
            for record in records:
                if record.fields is not None:
                    submission.note_columns(record.fields)
        await submission.add(records)

    try:
        async for block in blocks:
            await forward(parser.feed(block))
        await forward(parser.close())
        if submission is None:  # a header and nothing else: still a (zero-record) job
            if parser.columns is None:
                raise UploadError("the upload is empty")
            check_columns(job_type, parser.columns)
            submission = JobSubmission(runtime, job_type, options, tenant)
            await submission.open()
        return await submission.close()
    except BaseException as exc:
        if submission is not None:
            await submission.abort(_abort_reason(exc))
        raise


def _abort_reason(exc: BaseException) -> str:
    if isinstance(exc, RequestError):
        return f"upload rejected: {exc}"
    return f"upload interrupted: {type(exc).__name__}"


async def submit_raw(runtime: Runtime, request: web.Request) -> Accepted:
    job_type, options = _job_type_and_options(request.query)
    parser = parser_for(request.headers.get("Content-Type", ""), ParseLimits.of(runtime.settings))
    limits = BodyLimits.upload(runtime.settings)
    blocks = body_blocks(request.content.read, limits, encoding_of(request))
    return await submit_stream(
        runtime, job_type, options, parser, blocks, principal_of(request).tenant
    )


async def submit_multipart(runtime: Runtime, request: web.Request) -> Accepted:
    if encoding_of(request) is not None:
        raise RequestError(
            "send a multipart form uncompressed (compress the file part's body "
            "instead: send it raw as text/csv with Content-Encoding)",
            status=415,
        )
    try:
        return await _submit_form(runtime, request)
    except (ValueError, LookupError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:
        # HttpProcessingError: a part's headers aiohttp cannot parse (bytes a header may not hold)
        raise RequestError(f"the multipart form cannot be read: {type(exc).__name__}") from None


async def _submit_form(runtime: Runtime, request: web.Request) -> Accepted:
    settings = runtime.settings
    fields: dict[str, Any] = dict(request.query)
    field_limits = BodyLimits(
        settings.max_field_bytes, settings.body_timeout, "SLUICE_MAX_FIELD_BYTES"
    )
    reader = await request.multipart()
    accepted: Accepted | None = None
    parts = 0
    async for part in reader:
        parts += 1
        if parts > settings.max_form_parts:
            raise LimitExceeded(
                f"the form has more than {settings.max_form_parts} parts (SLUICE_MAX_FORM_PARTS)"
            )
        if not isinstance(part, BodyPartReader):
            raise RequestError("nested multipart bodies are not supported")
        if part.filename is None and part.name != "file":
            if accepted is not None:
                raise RequestError(f"field {part.name!r} came after the file: send options first")
            value = await read_whole(part.read_chunk, field_limits, None)
            fields[part.name or ""] = value.decode("utf-8", "replace")
            continue
        if accepted is not None:
            raise RequestError("send exactly one file part")
        if "type" not in fields:  # the file is read as it arrives: what it is must come first
            raise RequestError(
                "'type' is required before the file part: send the form's fields (type, then "
                "options) first and the file last, or give type in the query string",
                field="type",
            )
        job_type, options = _job_type_and_options(fields)
        parser = parser_for(_part_content_type(part), ParseLimits.of(settings))
        blocks = body_blocks(part.read_chunk, BodyLimits.upload(settings), None)
        accepted = await submit_stream(
            runtime, job_type, options, parser, blocks, principal_of(request).tenant
        )
    if accepted is None:
        raise RequestError("the form has no file part (send the upload as a field named 'file')")
    return accepted


def _part_content_type(part: BodyPartReader) -> str:
    declared = part.headers.get("Content-Type", "")
    if declared and not declared.startswith("application/octet-stream"):
        return declared
    by_name = media_type_of_file(part.filename or "")
    if by_name is not None:
        return by_name
    raise UploadError(
        "cannot tell the file's format: give the part a Content-Type of text/csv or "
        "application/x-ndjson, or a .csv / .ndjson file name"
    )


async def submit_inline(runtime: Runtime, request: web.Request) -> Accepted:
    limits = BodyLimits.inline(runtime.settings)
    body = await read_whole(request.content.read, limits, encoding_of(request))
    # the records' depth plus the body's own two levels ({"data": [record, ...]})
    payload = await asyncio.to_thread(json_body, body, runtime.settings.max_json_depth + 2)
    if not isinstance(payload, dict):
        raise RequestError("the body must be a JSON object {type, data, options}")
    options = payload.get("options", {})
    if not isinstance(options, dict):
        raise RequestError("'options' must be a JSON object", field="options")
    data = payload.get("data")
    generating = _generating_type(payload.get("type"))
    if generating is not None:
        if data is not None:
            raise RequestError(
                f"job type {generating.name!r} takes no 'data': it reads its records itself",
                field="data",
            )
        return await submit_generated(
            runtime, generating, generating.parse_options(options), principal_of(request).tenant
        )
    if not isinstance(data, list) or not data:
        raise RequestError("'data' must be a non-empty JSON array of records", field="data")
    job_type, parsed_options = _job_type_and_options({**options, "type": payload.get("type")})
    first = next((item for item in data if isinstance(item, dict)), {})
    check_columns(job_type, first)
    submission = JobSubmission(runtime, job_type, parsed_options, principal_of(request).tenant)
    await submission.open()
    submission.describe_records(json_values=True)
    try:
        records = list(records_from_json_items(data))
        _note_columns(submission, records)
        await submission.add(records)
        return await submission.close()
    except BaseException as exc:
        await submission.abort(_abort_reason(exc))
        raise


def _note_columns(submission: JobSubmission, records: Iterable[ParsedRecord]) -> None:
    for record in records:
        if record.fields is not None:
            submission.note_columns(record.fields)
