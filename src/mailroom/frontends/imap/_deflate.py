"""COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways once the command's OK is out.

The reader inflates on demand (pulled by the session's reads, at most 64 KiB of output per
step), so a small compressed input cannot grow into an unbounded buffer; the line limit
applies to the inflated text as before. The writer deflates each flush with a sync flush,
so every answer reaches the client whole.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

STEP = 64 * 1024


class InflatingReader:
    """``readuntil`` / ``readexactly`` over a DEFLATE stream read from ``inner``."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.buffer = bytearray()
        self.inflater = zlib.decompressobj(-15)

    async def _more(self) -> None:
        if self.inflater.unconsumed_tail:
            data = self.inflater.unconsumed_tail
        else:
            data = await self.inner.read(STEP)
            if not data:
                raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        try:
            self.buffer += self.inflater.decompress(data, STEP)
        except zlib.error:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None) from None

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        start = 0
        while True:
            index = self.buffer.find(separator, start)
            if index >= 0:
                if index + 1 > self.limit:
                    raise asyncio.LimitOverrunError("line longer than the limit", index)
                out = bytes(self.buffer[: index + len(separator)])
                del self.buffer[: index + len(separator)]
                return out
            if len(self.buffer) > self.limit:
                raise asyncio.LimitOverrunError("line longer than the limit", len(self.buffer))
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._more()

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._more()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read(self, n: int = -1) -> bytes:
        if not self.buffer:
            await self._more()
        size = len(self.buffer) if n < 0 else min(n, len(self.buffer))
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out


class DeflatingWriter:
    """The stream writer's interface, deflating what is written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)

    def write(self, data: bytes) -> None:
        self.inner.write(self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH))

    async def drain(self) -> None:
        await self.inner.drain()

    def close(self) -> None:
        self.inner.close()

    async def wait_closed(self) -> None:
        await self.inner.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)
