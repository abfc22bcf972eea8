"""gzip and deflate for every HTTP front-end, both directions (pure ASGI middleware).

Responses: compressed when the client accepts ``gzip`` or ``deflate`` (``Accept-Encoding``
with q-values; gzip preferred on a tie), the body reaches ``minimum_size`` bytes, and it is
not already encoded or of a type that does not shrink (images, archives, event streams).

Requests: a ``Content-Encoding: gzip`` or ``deflate`` body is decoded as it streams in,
refusing more than ``max_decompressed`` bytes of output (a "zip bomb" stops there, without
being inflated). The error is raised where the endpoint reads the body, so each front-end
answers it in its own format (problem+json 413, a JSON-RPC error, an XML-RPC fault). Other
content codings get 415 with the ones accepted in ``Accept-Encoding`` (RFC 9110 §15.5.16).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Awaitable
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailroom.errors import BadRequest, PayloadTooLarge

SUPPORTED = ("gzip", "deflate")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS
_Q = re.compile(r"^q=([0-9.]+)$")
#: Media types that are compressed already, or must flush as they go.
_INCOMPRESSIBLE = re.compile(
    r"^(image/(?!svg)|audio/|video/|application/(zip|gzip|x-gzip|zstd|x-7z-compressed|pdf|octet-stream)|"
    r"text/event-stream)"
)


@functools.lru_cache(maxsize=256)
def choose_encoding(accept_encoding: str) -> str | None:
    """The coding to use for an ``Accept-Encoding`` value, or None for identity."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        token, *params = (p.strip() for p in item.split(";"))
        if not token:
            continue
        q = 1.0
        for param in params:
            m = _Q.match(param.replace(" ", ""))
            if m:
                try:
                    q = float(m.group(1))
                except ValueError:
                    q = 0.0
        weights[token.lower()] = q
    best: str | None = None
    best_q = 0.0
    for coding in SUPPORTED:
        q = weights.get(coding, weights.get("*", 0.0) if coding not in weights else 0.0)
        if coding == "gzip" and "x-gzip" in weights and "gzip" not in weights:
            q = weights["x-gzip"]
        if q > best_q:
            best, best_q = coding, q
    return best


class _Inflater:
    """Streams gzip/deflate input into at most ``limit`` bytes of output."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.total = 0
        self._d: Any = None
        self._sniffed = b""

    def _start(self, data: bytes) -> Any:
        if self.coding == "gzip":
            return zlib.decompressobj(_GZIP_WBITS)
        # "deflate" is the zlib format (RFC 9110 §8.4.1.2); some clients send raw deflate.
        looks_zlib = len(data) >= 2 and (data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0
        return zlib.decompressobj(_ZLIB_WBITS if looks_zlib else _RAW_WBITS)

    def feed(self, data: bytes) -> bytes:
        if self._d is None:
            data, self._sniffed = self._sniffed + data, b""
            if not data or (self.coding == "deflate" and len(data) < 2):
                self._sniffed = data
                return b""
            self._d = self._start(data)
        out: list[bytes] = []
        while data:
            if self._d.eof:
                if self.coding != "gzip":
                    raise BadRequest("the request body has data after its deflate stream")
                self._d = zlib.decompressobj(_GZIP_WBITS)  # another gzip member (RFC 1952 §2.2)
            try:
                # At most one byte past the limit: enough to know it is exceeded.
                chunk = self._d.decompress(data, self.limit - self.total + 1)
            except zlib.error:
                raise BadRequest(f"the request body is not valid {self.coding} data") from None
            self.total += len(chunk)
            if self.total > self.limit:
                raise PayloadTooLarge(
                    f"the request body is larger than {self.limit} bytes once decompressed", limit=self.limit
                )
            out.append(chunk)
            data = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
        return b"".join(out)

    def finish(self) -> None:
        if self._d is None and not self._sniffed:
            return  # an empty body
        if self._d is None or not self._d.eof:
            raise BadRequest(f"the request body is truncated {self.coding} data")


class CompressionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 1024,
        max_decompressed: int = 20 * 1024 * 1024,
        level: int = 6,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.max_decompressed = max_decompressed
        self.level = level

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app's own coroutine when there is nothing to (de)compress (most API calls),
        else one that wraps ``receive`` or ``send``."""
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        # One pass over the raw headers (ASGI names are lower-case): a Headers object costs
        # a scan and a caught KeyError per header it does not find.
        coding = accept = ""
        for name, value in scope["headers"]:
            if name == b"content-encoding":
                coding = value.decode("latin-1").strip().lower()
            elif name == b"accept-encoding":
                accept = value.decode("latin-1")
        response_coding = choose_encoding(accept) if accept else None
        if coding in ("", "identity") and response_coding is None:
            return self.app(scope, receive, send)
        return self._coded(scope, receive, send, coding, response_coding)

    async def _coded(
        self, scope: Scope, receive: Receive, send: Send, coding: str, response_coding: str | None
    ) -> None:
        if coding and coding != "identity":
            if coding == "x-gzip":
                coding = "gzip"
            if coding not in SUPPORTED:
                await _unsupported_coding(coding, send)
                return
            scope = dict(scope)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k.lower() not in (b"content-encoding", b"content-length")
            ]
            receive = _inflating(receive, _Inflater(coding, self.max_decompressed))
        if response_coding is None:
            await self.app(scope, receive, send)
            return
        responder = _Compressor(send, response_coding, self.minimum_size, self.level)
        await self.app(scope, receive, responder.send)


def _inflating(receive: Receive, inflater: _Inflater) -> Receive:
    async def wrapped() -> Message:
        message = await receive()
        if message["type"] != "http.request":
            return message
        body = inflater.feed(message.get("body", b""))
        more = message.get("more_body", False)
        if not more:
            inflater.finish()
        return {"type": "http.request", "body": body, "more_body": more}

    return wrapped


async def _unsupported_coding(coding: str, send: Send) -> None:
    body = orjson.dumps(
        {
            "type": "urn:mailroom:problem:unsupported_media_type",
            "title": "Unsupported content coding",
            "status": 415,
            "detail": f"request bodies may be sent as {', '.join(SUPPORTED)} or unencoded, not {coding}",
            "code": "unsupported_media_type",
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 415,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"accept-encoding", ", ".join(SUPPORTED).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Compressor:
    """Holds the response start until the first body chunk says whether to compress."""

    def __init__(self, send: Send, coding: str, minimum_size: int, level: int) -> None:
        self._send = send
        self.coding = coding
        self.minimum_size = minimum_size
        self.level = level
        self._start: Message | None = None
        self._z: Any = None
        self._passthrough = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start = message
            return
        if kind != "http.response.body" or self._passthrough:
            await self._send(message)
            return
        if self._z is None:
            await self._first(message)
            return
        body = self._z.compress(message.get("body", b""))
        if message.get("more_body", False):
            body += self._z.flush(zlib.Z_SYNC_FLUSH)
        else:
            body += self._z.flush(zlib.Z_FINISH)
        await self._send(
            {"type": "http.response.body", "body": body, "more_body": message.get("more_body", False)}
        )

    async def _first(self, message: Message) -> None:
        assert self._start is not None
        start = self._start
        headers = MutableHeaders(raw=start["headers"])
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        skip = (
            "content-encoding" in headers
            or start["status"] in (204, 304)
            or bool(_INCOMPRESSIBLE.match(media))
            or "no-transform" in headers.get("cache-control", "")
        )
        if not skip:
            headers.add_vary_header("Accept-Encoding")
        if skip or (not more and len(body) < self.minimum_size):
            self._passthrough = True
            await self._send(start)
            await self._send(message)
            return
        wbits = _GZIP_WBITS if self.coding == "gzip" else _ZLIB_WBITS
        self._z = zlib.compressobj(self.level, zlib.DEFLATED, wbits)
        headers["Content-Encoding"] = self.coding
        etag = headers.get("etag")
        if etag and not etag.startswith("W/"):
            headers["ETag"] = "W/" + etag  # the bytes differ from the identity representation's
        compressed = self._z.compress(body)
        if more:
            compressed += self._z.flush(zlib.Z_SYNC_FLUSH)
            if "content-length" in headers:
                del headers["content-length"]
        else:
            compressed += self._z.flush(zlib.Z_FINISH)
            headers["Content-Length"] = str(len(compressed))
        await self._send(start)
        await self._send({"type": "http.response.body", "body": compressed, "more_body": more})
