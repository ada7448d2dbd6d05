"""Reading request bodies within limits: how many bytes (counted after a gzip or deflate body is
inflated, which happens off the event loop a bounded block at a time), and how long a client may
send nothing (408). Every upload, form field and inline JSON body is read through here."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from streams.config import Settings
from streams.exceptions import LimitExceeded, RequestError

BLOCK_SIZE = 64 * 1024
INFLATE_BLOCK = 1 << 20  # the most one step of inflating may produce
# Content-Encoding → zlib's window bits (deflate: zlib-wrapped, as HTTP says; raw if not)
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

Read = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    idle_seconds: float
    what: str = "SLUICE_MAX_UPLOAD_BYTES"  # the setting a person raises

    @classmethod
    def upload(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_upload_bytes, settings.body_timeout)

    @classmethod
    def field(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_field_bytes, settings.body_timeout, "SLUICE_MAX_FIELD_BYTES")

    @classmethod
    def inline(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_inline_bytes, settings.body_timeout, "SLUICE_MAX_INLINE_BYTES")

    def too_large(self) -> LimitExceeded:
        return LimitExceeded(f"the body is larger than {self.max_bytes:,} bytes ({self.what})")


def encoding_of(request: web.Request) -> str | None:
    """The body's Content-Encoding, if compressed; a 415 for one Sluice does not read."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in ENCODINGS:
        raise RequestError(
            f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none",
            status=415,
        )
    return encoding


async def raw_blocks(read: Read, limits: BodyLimits) -> AsyncIterator[bytes]:
    """Blocks as `read` gives them until it gives none; a 408 when nothing comes for
    `limits.idle_seconds`."""
    while True:
        try:
            block = await asyncio.wait_for(read(BLOCK_SIZE), limits.idle_seconds)
        except TimeoutError:
            raise RequestError(
                f"no data for {limits.idle_seconds:g} s (SLUICE_BODY_TIMEOUT)", status=408
            ) from None
        if not block:
            return
        yield block


async def body_blocks(read: Read, limits: BodyLimits, encoding: str | None) -> AsyncIterator[bytes]:
    """The body's bytes as sent (or inflated), block by block, at most `limits.max_bytes`."""
    total = 0
    blocks = raw_blocks(read, limits)
    if encoding is not None:
        blocks = _inflated(blocks, encoding)
    async for block in blocks:
        total += len(block)
        if total > limits.max_bytes:
            raise limits.too_large()
        yield block


async def _inflated(blocks: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    inflater = zlib.decompressobj(ENCODINGS[encoding])
    started = False
    async for block in blocks:
        data = block
        while data:
            try:
                out = await asyncio.to_thread(inflater.decompress, data, INFLATE_BLOCK)
            except zlib.error as exc:
                if encoding == "deflate" and not started:  # raw deflate, as some clients send
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    started = True
                    continue
                raise RequestError(f"the {encoding} body cannot be inflated: {exc}") from None
            started = True
            data = inflater.unconsumed_tail
            if out:
                yield out
    if not inflater.eof:
        raise RequestError(f"the {encoding} body ends before its compressed stream does")


async def read_whole(read: Read, limits: BodyLimits, encoding: str | None) -> bytes:
    """A body that is read whole (inline JSON, a form field), within its limit."""
    parts = [block async for block in body_blocks(read, limits, encoding)]
    return b"".join(parts)
