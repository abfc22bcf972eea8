"""JMAP push across processes: two servers sharing one database and Redis; a change made
through one reaches a JMAP EventSource and WebSocket client of the other."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.push.conftest import SSE
from tests.push.test_workers import REDIS_URL, _import, prepared, servers

__all__ = ["prepared", "servers"]

pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set"),
]


def test_state_changes_cross_servers(servers: list[str], prepared: tuple[Path, str, str]) -> None:
    one, two = servers
    _, key, _ = prepared
    auth = {"Authorization": f"Bearer {key}"}

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=f"http://{one}", timeout=10) as http:
            session = (await http.get("/.well-known/jmap", headers=auth)).json()
            account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
            ws = await connect(
                f"ws://{two}/jmap/ws",
                subprotocols=["jmap"],  # type: ignore[list-item]
                additional_headers=auth,
                open_timeout=5,
            )
            await ws.send(orjson.dumps({"@type": "WebSocketPushEnable", "dataTypes": None}).decode())
            async with http.stream(
                "GET", "/jmap/eventsource/?types=Email&closeafter=state&ping=0", headers=auth
            ) as r:
                sse = SSE(r)
                await asyncio.sleep(0.2)
                await _import(two, key, "through two")
                event = await sse.next(wait=10)
                assert event["event"] == "state"
                assert set(orjson.loads(event["data"])["changed"][account]) == {"Email"}
            await _import(one, key, "through one")
            for _ in range(5):  # the first import's StateChange may come first
                change = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert change["@type"] == "StateChange"
                if "Email" in change["changed"][account]:
                    break
            await ws.close()

    asyncio.run(scenario())
