"""Mailbox ``isSubscribed`` (RFC 8621 §2) is IMAP's subscription (RFC 9051 §6.3.7), kept by
label id: IMAP UNSUBSCRIBE shows in JMAP (with the Mailbox state moving and Mailbox/changes
naming the mailbox), JMAP's Mailbox/set shows in IMAP LSUB, and a renamed mailbox (and its
children) keeps its choice, from either side. imaplib over loopback, JMAP over the tests'
httpx client."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from mailroom.web import build_app
from tests.imap.conftest import PASSWORD, Imap
from tests.imap.conftest import imap as imap  # the fixture, for this directory
from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio


@pytest.fixture
async def jmap(imap: Imap) -> AsyncIterator[JmapClient]:
    token = base64.b64encode(f"alice@example.org:{PASSWORD}".encode()).decode()
    transport = httpx.ASGITransport(app=build_app(imap.mailroom), client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as http:
        c = JmapClient(http, {"Authorization": f"Basic {token}"})
        await c.session()
        yield c


async def imap_do(imap: Imap, *commands: tuple[str, tuple[str, ...]]) -> None:
    def run() -> None:
        conn = imap.login()
        try:
            for name, args in commands:
                typ, data = getattr(conn, name)(*args)
                assert typ == "OK", (name, args, data)
        finally:
            conn.logout()

    await asyncio.to_thread(run)


async def lsub(imap: Imap) -> set[str]:
    def run() -> set[str]:
        conn = imap.login()
        try:
            typ, data = conn.lsub('""', "*")
            assert typ == "OK"
            return {line.rsplit(b" ", 1)[1].strip(b'"').decode() for line in data if isinstance(line, bytes)}
        finally:
            conn.logout()

    return await asyncio.to_thread(run)


async def boxes(jmap: JmapClient) -> dict[str, dict[str, object]]:
    found = await jmap.call("Mailbox/get", {"properties": ["id", "name", "parentId", "isSubscribed"]})
    return {str(b["name"]): b for b in found["list"]}


async def test_imap_unsubscribe_is_jmap_is_subscribed_and_follows_renames(
    imap: Imap, jmap: JmapClient
) -> None:
    await imap_do(imap, ("create", ("Work",)), ("create", ("Work/Clients",)))
    found = await boxes(jmap)
    work, clients = found["Work"], found["Clients"]
    assert work["isSubscribed"] is True
    assert clients["isSubscribed"] is True
    assert clients["parentId"] == work["id"]
    before = (await jmap.call("Mailbox/get", {"ids": []}))["state"]

    await imap_do(imap, ("unsubscribe", ("Work/Clients",)))

    found = await boxes(jmap)
    assert found["Clients"]["isSubscribed"] is False
    assert found["Work"]["isSubscribed"] is True
    changes = await jmap.call("Mailbox/changes", {"sinceState": before})
    assert changes["updated"] == [clients["id"]]
    assert changes["newState"] != before
    assert "Work/Clients" not in await lsub(imap)
    # Mailbox/query filters on it.
    query = await jmap.call("Mailbox/query", {"filter": {"isSubscribed": False}})
    assert query["ids"] == [clients["id"]]

    # Renaming the parent over JMAP renames the child's label: its choice stays.
    renamed = await jmap.call("Mailbox/set", {"update": {work["id"]: {"name": "Job"}}})
    assert renamed["updated"] == {work["id"]: None}
    found = await boxes(jmap)
    assert found["Clients"]["id"] == clients["id"]
    assert found["Clients"]["isSubscribed"] is False
    names = await lsub(imap)
    assert "Job" in names
    assert "Job/Clients" not in names
    assert "Work/Clients" not in names
    assert "Work" not in names

    # Renaming over IMAP keeps it too; subscribing again over IMAP shows in JMAP.
    await imap_do(imap, ("rename", ("Job/Clients", "Job/Customers")))
    assert (await boxes(jmap))["Customers"]["isSubscribed"] is False
    assert "Job/Customers" not in await lsub(imap)
    state = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    await imap_do(imap, ("subscribe", ("Job/Customers",)))
    assert (await boxes(jmap))["Customers"]["isSubscribed"] is True
    assert (await jmap.call("Mailbox/changes", {"sinceState": state}))["updated"] == [clients["id"]]


async def test_jmap_mailbox_set_is_subscribed_is_imap_lsub(imap: Imap, jmap: JmapClient) -> None:
    await imap_do(imap, ("create", ("Receipts",)))
    receipts = (await boxes(jmap))["Receipts"]
    inbox = next(b for b in (await boxes(jmap)).values() if b["name"] == "Inbox")
    before = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    result = await jmap.call(
        "Mailbox/set",
        {"update": {receipts["id"]: {"isSubscribed": False}, inbox["id"]: {"isSubscribed": False}}},
    )
    assert set(result["updated"]) == {receipts["id"], inbox["id"]}
    assert result["newState"] != before
    names = await lsub(imap)
    assert "Receipts" not in names
    assert "INBOX" not in names
    changes = await jmap.call("Mailbox/changes", {"sinceState": before})
    assert set(changes["updated"]) == {receipts["id"], inbox["id"]}
    # Setting the same value again changes nothing: no new state.
    same = await jmap.call("Mailbox/set", {"update": {receipts["id"]: {"isSubscribed": False}}})
    assert same["oldState"] == same["newState"]
    # Back on; a bad value is invalidProperties.
    await jmap.call("Mailbox/set", {"update": {receipts["id"]: {"isSubscribed": True}}})
    assert "Receipts" in await lsub(imap)
    bad = await jmap.call("Mailbox/set", {"update": {receipts["id"]: {"isSubscribed": "yes"}}})
    assert bad["notUpdated"][receipts["id"]]["type"] == "invalidProperties"
    assert bad["notUpdated"][receipts["id"]]["properties"] == ["isSubscribed"]
    # A mailbox created unsubscribed.
    made = await jmap.call("Mailbox/set", {"create": {"n": {"name": "Quiet", "isSubscribed": False}}})
    quiet = made["created"]["n"]["id"]
    assert (await boxes(jmap))["Quiet"] == {
        "id": quiet,
        "name": "Quiet",
        "parentId": None,
        "isSubscribed": False,
    }
    assert "Quiet" not in await lsub(imap)


async def test_a_name_subscribed_before_its_mailbox_and_after_its_deletion(
    imap: Imap, jmap: JmapClient
) -> None:
    # RFC 9051 §6.3.7: a client may subscribe to a name that has no mailbox.
    await imap_do(imap, ("subscribe", ("Later",)))
    assert "Later" in await lsub(imap)
    await imap_do(imap, ("create", ("Later",)))
    later = (await boxes(jmap))["Later"]
    assert later["isSubscribed"] is True
    await jmap.call("Mailbox/set", {"update": {later["id"]: {"isSubscribed": False}}})
    assert "Later" not in await lsub(imap)
    await imap_do(imap, ("subscribe", ("Later",)))
    # Deleting the mailbox keeps the explicit subscription, as a name (RFC 9051 §6.3.4).
    await imap_do(imap, ("delete", ("Later",)))
    assert "Later" in await lsub(imap)
    assert "Later" not in await boxes(jmap)
