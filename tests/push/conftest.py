"""Push fixtures: the HTTP app served by a real uvicorn on a loopback port, in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import ingest
from mailroom.delivery.resolve import resolve
from mailroom.web import build_app
from tests.lifespan import served


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"push_heartbeat_seconds": 0.5}


@pytest.fixture
async def server(mailroom: Mailroom) -> AsyncIterator[str]:
    """``http://127.0.0.1:<port>`` serving the app over real sockets (WebSocket included)."""
    async with served(build_app(mailroom)) as port:
        yield f"127.0.0.1:{port}"


async def ws_open(host: str, token: str | None = None, *, query: str = "") -> ClientConnection:
    url = f"ws://{host}/api/v1/events"
    if token is not None:
        url += f"?token={token}" + (f"&{query}" if query else "")
    elif query:
        url += f"?{query}"
    return await connect(url, open_timeout=5)


async def ws_next(ws: ClientConnection, *, skip_pings: bool = True, wait: float = 5) -> dict[str, Any]:
    """The next message that is not a ping, within ``wait`` seconds (else TimeoutError)."""
    async with asyncio.timeout(wait):
        while True:
            message: dict[str, Any] = orjson.loads(await ws.recv())
            if skip_pings and message.get("type") == "ping":
                continue
            return message


async def ws_subscribed(host: str, token: str, *, query: str = "") -> ClientConnection:
    ws = await ws_open(host, token, query=query)
    assert await ws_next(ws) == {"type": "subscribed"}
    return ws


Deliver = Callable[..., Awaitable[int]]


@pytest.fixture
def deliver(mailroom: Mailroom) -> Deliver:
    """Deliver a raw message to one address through ingest (LMTP's path); the email id."""

    async def _deliver(raw: bytes, rcpt: str, *, mail_from: str = "bob@example.net") -> int:
        async with mailroom.runtime.db.read() as tx:
            resolved = await resolve(tx, rcpt)
        [result] = await ingest(
            mailroom.runtime, raw, mail_from=mail_from, recipients=[resolved], source="lmtp"
        )
        assert result.ok, result.reply
        return result.email_ids[0]

    return _deliver


class SSE:
    """A minimal Server-Sent Events reader over an httpx stream."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, wait: float = 5) -> dict[str, str]:
        return await asyncio.wait_for(self._next(), wait)

    async def _next(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if "data" in fields or "event" in fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise EOFError("the stream ended")
