"""JMAP push over a real server: EventSource (RFC 8620 §7.3) and WebSocket (RFC 8887),
with mail arriving over a real LMTP connection."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from mailroom.frontends.smtp import Listeners
from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import JmapClient
from tests.mailhelpers import lmtp_send
from tests.push.conftest import SSE, server

__all__ = ["server"]

pytestmark = pytest.mark.anyio

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


async def lmtp_deliver(listeners: Listeners, n: int = 1) -> None:
    raw = message(message_id=f"<push{n}@example.net>", subject=f"Push {n}")
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "bob@example.net", ["alice@example.org"], raw
    )
    assert out.data[0][0] == 250, out


async def state_of(host: str, alice: Actor) -> str:
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        r = await http.post(
            "/jmap/api",
            json={
                "using": USING,
                "methodCalls": [["Mailbox/get", {"accountId": account(alice), "ids": []}, "0"]],
            },
            headers=alice.headers,
        )
        return str(r.json()["methodResponses"][0][1]["state"])


def account(alice: Actor) -> str:
    return f"u{alice.principal.user_id}"


async def test_eventsource_gets_an_lmtp_delivery_within_a_second(
    server: str, listeners: Listeners, alice: Actor
) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http,
        http.stream(
            "GET", "/jmap/eventsource/?types=*&closeafter=no&ping=0", headers=alice.headers
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        sse = SSE(response)
        await asyncio.sleep(0.05)
        await lmtp_deliver(listeners)
        delivered = time.monotonic()  # the LMTP 250: the mail is stored
        event = await sse.next(wait=5)
        elapsed = time.monotonic() - delivered
        assert event["event"] == "state"
        change = orjson.loads(event["data"])
        assert change["@type"] == "StateChange"
        states = change["changed"][account(alice)]
        assert set(states) == {"Mailbox", "Email", "Thread", "EmailDelivery"}
        assert elapsed < 1.0, elapsed
    assert states["Email"] == await state_of(server, alice)


async def test_eventsource_types_closeafter_and_ping(server: str, listeners: Listeners, alice: Actor) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http:
        async with http.stream(
            "GET", "/jmap/eventsource/?types=Mailbox&closeafter=state&ping=1", headers=alice.headers
        ) as response:
            sse = SSE(response)
            ping = await sse.next(wait=3)
            assert ping["event"] == "ping"
            assert orjson.loads(ping["data"]) == {"interval": 1}
            await lmtp_deliver(listeners)
            event = await sse.next(wait=5)
            while event["event"] == "ping":
                event = await sse.next(wait=5)
            assert set(orjson.loads(event["data"])["changed"][account(alice)]) == {"Mailbox"}
            with pytest.raises(EOFError):  # closeafter=state: the stream ends
                await sse.next(wait=3)
        r = await http.get("/jmap/eventsource/?types=*&closeafter=maybe&ping=0", headers=alice.headers)
        assert r.status_code == 400
        r = await http.get("/jmap/eventsource/?types=*&closeafter=no&ping=0")
        assert r.status_code == 401


async def test_eventsource_with_basic_auth(server: str, listeners: Listeners, alice: Actor) -> None:
    basic = base64.b64encode(f"{alice.email}:{alice.password}".encode()).decode()
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http,
        http.stream(
            "GET",
            "/jmap/eventsource/?types=Email&closeafter=state&ping=0",
            headers={"Authorization": f"Basic {basic}"},
        ) as response,
    ):
        assert response.status_code == 200
        sse = SSE(response)
        await asyncio.sleep(0.05)
        await lmtp_deliver(listeners)
        event = await sse.next(wait=5)
        assert set(orjson.loads(event["data"])["changed"][account(alice)]) == {"Email"}


async def ws_connect(host: str, alice: Actor, subprotocols: list[str] | None = None) -> ClientConnection:
    return await connect(
        f"ws://{host}/jmap/ws",
        subprotocols=subprotocols or ["jmap"],  # type: ignore[list-item]
        additional_headers=alice.headers,
        open_timeout=5,
    )


async def ws_recv(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(wait):
        value: dict[str, Any] = orjson.loads(await ws.recv())
        return value


async def test_websocket_requests_and_push(server: str, listeners: Listeners, alice: Actor) -> None:
    ws = await ws_connect(server, alice)
    try:
        assert ws.subprotocol == "jmap"
        await ws.send(
            orjson.dumps(
                {
                    "@type": "Request",
                    "id": "r1",
                    "using": USING,
                    "methodCalls": [["Mailbox/get", {"accountId": account(alice), "ids": []}, "0"]],
                }
            ).decode()
        )
        response = await ws_recv(ws)
        assert response["@type"] == "Response"
        assert response["requestId"] == "r1"
        before = response["methodResponses"][0][1]["state"]
        await ws.send(
            orjson.dumps({"@type": "WebSocketPushEnable", "dataTypes": ["Email", "Mailbox"]}).decode()
        )
        await asyncio.sleep(0.1)
        await lmtp_deliver(listeners)
        delivered = time.monotonic()  # the LMTP 250: the mail is stored
        change = await ws_recv(ws)
        assert time.monotonic() - delivered < 1.0
        assert change["@type"] == "StateChange"
        states = change["changed"][account(alice)]
        assert set(states) == {"Email", "Mailbox"}
        assert states["Email"] != before
        assert change["pushState"] == states["Email"]
        # Request errors come back as RequestError with the request id.
        await ws.send(
            orjson.dumps({"@type": "Request", "id": "r2", "using": ["urn:x"], "methodCalls": []}).decode()
        )
        error = await ws_recv(ws)
        assert error["@type"] == "RequestError"
        assert error["requestId"] == "r2"
        assert error["type"] == "urn:ietf:params:jmap:error:unknownCapability"
        await ws.send("not json")
        error = await ws_recv(ws)
        assert error["type"] == "urn:ietf:params:jmap:error:notJSON"
        await ws.send(orjson.dumps({"@type": "WebSocketPushDisable"}).decode())
        await asyncio.sleep(0.1)
        await lmtp_deliver(listeners, 2)
        with pytest.raises(TimeoutError):
            await ws_recv(ws, wait=0.7)
        # Enabling again with an old pushState: the current state at once.
        await ws.send(
            orjson.dumps({"@type": "WebSocketPushEnable", "dataTypes": None, "pushState": before}).decode()
        )
        catch_up = await ws_recv(ws)
        assert catch_up["@type"] == "StateChange"
        assert catch_up["pushState"] != before
    finally:
        await ws.close()


async def test_websocket_refusals(server: str, alice: Actor) -> None:
    with pytest.raises(InvalidStatus):
        await ws_connect(server, Actor("nobody", alice.principal))  # no credentials
    with pytest.raises(InvalidStatus):
        await ws_connect(server, alice, subprotocols=["chat"])


async def test_access_token_for_clients_without_headers(
    server: str, listeners: Listeners, alice: Actor
) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http,
        http.stream(
            "GET", f"/jmap/eventsource/?types=*&closeafter=state&ping=0&access_token={alice.key}"
        ) as r,
    ):
        assert r.status_code == 200
        sse = SSE(r)
        await asyncio.sleep(0.05)
        await lmtp_deliver(listeners)
        assert (await sse.next(wait=5))["event"] == "state"
    ws = await connect(
        f"ws://{server}/jmap/ws?access_token={alice.key}", subprotocols=["jmap"], open_timeout=5
    )  # type: ignore[list-item]
    try:
        await ws.send(
            orjson.dumps(
                {"@type": "Request", "using": USING, "methodCalls": [["Core/echo", {}, "e"]]}
            ).decode()
        )
        assert (await ws_recv(ws))["methodResponses"] == [["Core/echo", {}, "e"]]
    finally:
        await ws.close()


async def test_eventsource_gets_a_submission_cancel(server: str, bob: Actor, alice: Actor) -> None:
    """Canceling a delayed send (``undoStatus: canceled``) changes the EmailSubmission: a
    StateChange names it with the state EmailSubmission/get then answers."""
    using = [*USING, "urn:ietf:params:jmap:submission"]
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http:
        jmap = JmapClient(http, alice.headers)
        await jmap.session()
        boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
        [identity] = (await jmap.call("Identity/get", {"ids": None}, using))["list"]
        draft = {
            "mailboxIds": {boxes["drafts"]: True},
            "keywords": {"$draft": True},
            "from": [{"email": "alice@example.org"}],
            "to": [{"email": "bob@example.org"}],
            "subject": "later",
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "bodyValues": {"t": {"value": "later"}},
        }
        made = await jmap.call("Email/set", {"create": {"d": draft}})
        envelope = {
            "mailFrom": {"email": "alice@example.org", "parameters": {"holdFor": "3600"}},
            "rcptTo": [{"email": "bob@example.org", "parameters": None}],
        }
        create = {"identityId": identity["id"], "emailId": made["created"]["d"]["id"], "envelope": envelope}
        sent = await jmap.call("EmailSubmission/set", {"create": {"s": create}}, using)
        sid = sent["created"]["s"]["id"]
        async with http.stream(
            "GET", "/jmap/eventsource/?types=EmailSubmission&closeafter=state&ping=0", headers=alice.headers
        ) as response:
            assert response.status_code == 200
            sse = SSE(response)
            await asyncio.sleep(0.05)
            r = await jmap.call("EmailSubmission/set", {"update": {sid: {"undoStatus": "canceled"}}}, using)
            assert r["updated"] == {sid: None}
            event = await sse.next(wait=5)
        change = orjson.loads(event["data"])
        assert change["changed"] == {account(alice): {"EmailSubmission": r["newState"]}}
        assert r["newState"] != r["oldState"]
        got = await jmap.call("EmailSubmission/get", {"ids": [sid]}, using)
        assert got["state"] == r["newState"]
        assert got["list"][0]["undoStatus"] == "canceled"
