"""Reading HTTP request bodies, shared by every HTTP front-end (REST, JSON-RPC, XML-RPC, the
web login, autoconfig, JMAP): bounded before anything is buffered, JSON parsed with one error,
its nesting bounded (``too_deep``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson

from mailroom.errors import BadRequest, PayloadTooLarge

JSON = "application/json"


class BodySource(Protocol):
    """Anything a body can be read from: an :class:`ApiRequest` or Starlette's ``Request``."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def stream(self) -> AsyncIterator[bytes]: ...


async def read_body(request: BodySource, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"the request body is larger than {limit} bytes", limit=limit)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    if not raw.strip():
        return None
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media != JSON and not media.endswith("+json"):
        raise BadRequest(f"send the body as {JSON}, not {media}", content_type=media)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from None


def too_deep(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
