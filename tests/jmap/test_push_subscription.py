"""PushSubscription/get|set: verification by a real HTTP POST to a loopback server, then a
StateChange POSTed when mail arrives over LMTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from mailroom.frontends.smtp import Listeners
from tests.client_mail.conftest import message
from tests.jmap.client import CORE, JmapClient
from tests.mailhelpers import lmtp_send

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jmap_push_allow_loopback": True}


class Receiver:
    """A loopback HTTP server that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length)
            await self.bodies.put(orjson.loads(body))
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    async def next(self, wait: float = 5) -> dict[str, Any]:
        return await asyncio.wait_for(self.bodies.get(), wait)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/push"
    try:
        yield r
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_verify_then_push(jmap: JmapClient, receiver: Receiver, listeners: Listeners) -> None:
    made = await jmap.call(
        "PushSubscription/set",
        {"create": {"s": {"deviceClientId": "phone-1", "url": receiver.url, "types": ["Email", "Mailbox"]}}},
        [CORE],
    )
    sub_id = made["created"]["s"]["id"]
    assert "accountId" not in made
    verification = await receiver.next()
    assert verification["@type"] == "PushVerification"
    assert verification["pushSubscriptionId"] == sub_id
    # Not verified yet: nothing is pushed.
    raw = message(message_id="<p1@example.net>")
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "bob@example.net", ["alice@example.org"], raw
    )
    assert out.data[0][0] == 250
    with pytest.raises(TimeoutError):
        await receiver.next(wait=0.5)
    wrong = await jmap.call(
        "PushSubscription/set", {"update": {sub_id: {"verificationCode": "nope"}}}, [CORE]
    )
    assert wrong["notUpdated"][sub_id]["type"] == "invalidProperties"
    ok = await jmap.call(
        "PushSubscription/set",
        {"update": {sub_id: {"verificationCode": verification["verificationCode"]}}},
        [CORE],
    )
    assert ok["updated"] == {sub_id: None}
    got = await jmap.call("PushSubscription/get", {"ids": None}, [CORE])
    [sub] = got["list"]
    assert sub["url"] is None  # never returned
    assert sub["verificationCode"] == verification["verificationCode"]
    assert sub["types"] == ["Email", "Mailbox"]
    raw = message(message_id="<p2@example.net>")
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "bob@example.net", ["alice@example.org"], raw
    )
    assert out.data[0][0] == 250
    change = await receiver.next()
    assert change["@type"] == "StateChange"
    states = change["changed"][jmap.account_id]
    assert set(states) == {"Email", "Mailbox"}
    current = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    assert states["Email"] == current
    gone = await jmap.call("PushSubscription/set", {"destroy": [sub_id]}, [CORE])
    assert gone["destroyed"] == [sub_id]
    assert (await jmap.call("PushSubscription/get", {}, [CORE]))["list"] == []


async def test_refused_subscriptions(jmap: JmapClient) -> None:
    made = await jmap.call(
        "PushSubscription/set",
        {
            "create": {
                "plain": {"deviceClientId": "d", "url": "http://push.example.com/x"},
                "private": {"deviceClientId": "d", "url": "https://10.1.2.3/x"},
                "keys": {
                    "deviceClientId": "d",
                    "url": "https://push.example.com/x",
                    "keys": {"p256dh": "a", "auth": "b"},
                },
                "nodevice": {"url": "https://push.example.com/x"},
                "badexpiry": {
                    "deviceClientId": "d",
                    "url": "https://push.example.com/x",
                    "expires": "tomorrow",
                },
            }
        },
        [CORE],
    )
    assert made["created"] is None
    assert {k: v["properties"] for k, v in made["notCreated"].items()} == {
        "plain": ["url"],
        "private": ["url"],
        "keys": ["keys"],
        "nodevice": ["deviceClientId"],
        "badexpiry": ["expires"],
    }
    err = await jmap.error("PushSubscription/set", {"accountId": jmap.account_id}, [CORE])
    assert err["type"] == "invalidArguments"  # PushSubscription has no accountId


async def test_update_unknown_subscription(jmap: JmapClient) -> None:
    r = await jmap.call("PushSubscription/set", {"update": {"Pnope": {"types": None}}}, [CORE])
    assert r["notUpdated"]["Pnope"]["type"] == "notFound"


async def test_host_names_inside_the_network_are_not_pushed_to() -> None:
    from mailroom.services.jmap.push_subscription import _public_host

    assert await _public_host("https://localhost/x", allow_loopback=False) is False
    assert await _public_host("https://127.0.0.1/x", allow_loopback=False) is False
    assert await _public_host("http://127.0.0.1:9/x", allow_loopback=True) is True
    assert await _public_host("https://10.0.0.1/x", allow_loopback=True) is False


async def test_deliveries_ask_for_subscriptions_only_when_someone_has_one(
    jmap: JmapClient, receiver: Receiver, listeners: Listeners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no verified subscription anywhere a delivery reads no subscription rows (one
    cached list of subscribers serves every delivery); once one exists its owner's
    deliveries are pushed at once, from this worker."""
    from mailroom.store import jmap as jmap_store

    reads: list[int] = []
    original = jmap_store.push_subscriptions

    async def counting(tx: Any, user_id: int) -> Any:
        reads.append(user_id)
        return await original(tx, user_id)

    monkeypatch.setattr(jmap_store, "push_subscriptions", counting)
    port = listeners.ports["lmtp"]
    for n in range(3):
        raw = message(message_id=f"<quiet{n}@example.net>")
        out = await asyncio.to_thread(lmtp_send, port, "bob@example.net", ["alice@example.org"], raw)
        assert out.data[0][0] == 250
    assert reads == []
    made = await jmap.call(
        "PushSubscription/set", {"create": {"s": {"deviceClientId": "d", "url": receiver.url}}}, [CORE]
    )
    sub_id = made["created"]["s"]["id"]
    code = (await receiver.next())["verificationCode"]
    await jmap.call("PushSubscription/set", {"update": {sub_id: {"verificationCode": code}}}, [CORE])
    raw = message(message_id="<loud@example.net>")
    out = await asyncio.to_thread(lmtp_send, port, "bob@example.net", ["alice@example.org"], raw)
    assert out.data[0][0] == 250
    assert (await receiver.next())["@type"] == "StateChange"
    assert reads  # now the owner's subscriptions are read
