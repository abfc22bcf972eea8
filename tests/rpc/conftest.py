"""RPC test fixtures: the interop API on, wire-level helpers, a real server on loopback."""

from __future__ import annotations

import asyncio
import socket
import xmlrpc.client
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from mailroom.bootstrap import Mailroom
from mailroom.web import build_app


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"interop_api": True}


async def jsonrpc(
    client: httpx.AsyncClient, method: str, params: Any = None, *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One JSON-RPC call; returns the whole response object."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        body["params"] = params
    r = await client.post("/rpc/json", json=body, headers=headers)
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    return reply


async def xmlrpc_call(
    client: httpx.AsyncClient,
    method: str,
    *args: Any,
    headers: dict[str, str] | None = None,
    path: str = "/rpc/xml",
) -> Any:
    """One XML-RPC call over the ASGI app, decoded as ``xmlrpc.client`` does (Fault raised)."""
    body = xmlrpc.client.dumps(args, method, allow_none=True)
    r = await client.post(path, content=body, headers={"content-type": "text/xml", **(headers or {})})
    assert r.status_code == 200, r.text
    (result,), _ = xmlrpc.client.loads(r.content, use_builtin_types=True)
    return result


def fault_code(fault: xmlrpc.client.Fault) -> str:
    """The stable code at the start of a faultString."""
    return str(fault.faultString).split(":", 1)[0]


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def server_url(mailroom: Mailroom) -> AsyncIterator[str]:
    """The base URL of this test's mailroom served over real HTTP on loopback."""
    async with serve(build_app(mailroom)) as url:
        yield url
