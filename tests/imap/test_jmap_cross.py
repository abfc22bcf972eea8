"""IMAP and JMAP on one started mailroom see the same keywords and the same object ids:
a flag STOREd over IMAP is a JMAP keyword at once (with Email/changes listing the email),
a keyword set by JMAP's Email/set is an IMAP flag (and another IMAP session learns of it in
IDLE and on NOOP), IMAP's OBJECTID ids are JMAP's. imaplib/IMAPClient over loopback, JMAP
over HTTP with Basic authentication (tests/jmap/client.py)."""

from __future__ import annotations

import asyncio
import base64
import imaplib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from imapclient import IMAPClient

from mailroom.web import build_app
from tests.imap.conftest import PASSWORD, Imap
from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio

EMAIL_PROPS = ["id", "threadId", "mailboxIds", "keywords"]


def imap_client(imap: Imap) -> IMAPClient:
    conn = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
    conn.login("alice@example.org", PASSWORD)
    return conn


@pytest.fixture
async def jmap(imap: Imap) -> AsyncIterator[JmapClient]:
    """A JMAP client of the same mailroom as ``imap``, as alice with her password."""
    token = base64.b64encode(f"alice@example.org:{PASSWORD}".encode()).decode()
    transport = httpx.ASGITransport(app=build_app(imap.mailroom), client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as http:
        c = JmapClient(http, {"Authorization": f"Basic {token}"})
        await c.session()
        yield c


async def fetch(conn: IMAPClient, items: list[str]) -> dict[int, dict[bytes, Any]]:
    return dict(await asyncio.to_thread(conn.fetch, "1:*", items))


async def only_email(jmap: JmapClient) -> dict[str, Any]:
    [email_id] = (await jmap.call("Email/query", {}))["ids"]
    [email] = (await jmap.call("Email/get", {"ids": [email_id], "properties": EMAIL_PROPS}))["list"]
    return dict(email)


async def test_objectid_ids_are_the_jmap_ids(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="same ids")
    email = await only_email(jmap)
    conn = await asyncio.to_thread(imap_client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "INBOX")
        fetched = (await fetch(conn, ["EMAILID", "THREADID"]))[1]
        assert fetched[b"EMAILID"] == (email["id"].encode(),)
        assert fetched[b"THREADID"] == (email["threadId"].encode(),)
        # MAILBOXID of SELECT's response code and of STATUS: the JMAP Mailbox id of INBOX.
        boxes = (await jmap.call("Mailbox/get", {"properties": ["id", "role"]}))["list"]
        inbox = next(b["id"] for b in boxes if b["role"] == "inbox")
        assert list(email["mailboxIds"]) == [inbox]
        plain = await asyncio.to_thread(imap.login)
        try:
            typ, data = await asyncio.to_thread(plain.status, "INBOX", "(MAILBOXID)")
            assert typ == "OK"
            assert data == [f"INBOX (MAILBOXID ({inbox}))".encode()]
            typ, _ = await asyncio.to_thread(plain.select, "INBOX")
            assert typ == "OK"
            assert f"[MAILBOXID ({inbox})]".encode() in b" ".join(plain.untagged_responses.get("OK", []))
        finally:
            await asyncio.to_thread(plain.logout)
        # SEARCH EMAILID / THREADID take the same ids.
        assert await asyncio.to_thread(conn.search, ["EMAILID", email["id"]]) == [1]
        assert await asyncio.to_thread(conn.search, ["THREADID", email["threadId"]]) == [1]
        assert await asyncio.to_thread(conn.search, ["EMAILID", "M" + email["id"][1:]]) == []
    finally:
        await asyncio.to_thread(conn.logout)


async def test_a_flag_stored_over_imap_is_a_jmap_keyword_at_once(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="flag me")
    email = await only_email(jmap)
    assert email["keywords"] == {}
    before = (await jmap.call("Email/get", {"ids": [], "properties": ["id"]}))["state"]
    conn = await asyncio.to_thread(imap_client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "INBOX")
        await asyncio.to_thread(conn.add_flags, [1], [b"\\Answered", b"\\Seen", b"$Forwarded", b"Work"])
    finally:
        await asyncio.to_thread(conn.logout)
    got = await jmap.call("Email/get", {"ids": [email["id"]], "properties": ["keywords"]})
    assert got["list"][0]["keywords"] == {
        "$answered": True,
        "$seen": True,
        "$forwarded": True,
        "work": True,
    }
    assert got["state"] != before
    # The REST client API shows the same (read is \\Seen; the rest are its keywords).
    principal = await imap.mailroom.authenticator.basic("alice@example.org", PASSWORD, "127.0.0.1")
    number = int(email["id"][1:])
    detail = await imap.mailroom.registry.call("mail.emails.get", {"id": number}, principal=principal)
    assert detail["is_read"]
    assert detail["keywords"] == ["$answered", "$forwarded", "work"]
    changes = await jmap.call("Email/changes", {"sinceState": before})
    assert changes["updated"] == [email["id"]]
    assert changes["created"] == []
    assert changes["destroyed"] == []
    assert changes["newState"] == got["state"]
    # Email/query's keyword conditions see them too, in any case.
    for condition, expected in [
        ({"hasKeyword": "$answered"}, [email["id"]]),
        ({"hasKeyword": "WORK"}, [email["id"]]),
        ({"notKeyword": "$forwarded"}, []),
        ({"allInThreadHaveKeyword": "work"}, [email["id"]]),
        ({"someInThreadHaveKeyword": "$Answered"}, [email["id"]]),
        ({"noneInThreadHaveKeyword": "work"}, []),
        ({"hasKeyword": "$mdnsent"}, []),
    ]:
        assert (await jmap.call("Email/query", {"filter": condition}))["ids"] == expected, condition


async def test_a_jmap_keyword_is_an_imap_flag_and_other_sessions_see_it(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="from jmap")
    email = await only_email(jmap)
    idler = await asyncio.to_thread(imap_client, imap)
    other = await asyncio.to_thread(imap_client, imap)
    try:
        await asyncio.to_thread(idler.select_folder, "INBOX")
        await asyncio.to_thread(other.select_folder, "INBOX")
        await asyncio.to_thread(idler.idle)
        result = await jmap.call(
            "Email/set",
            {"update": {email["id"]: {"keywords": {"$answered": True, "$Flagged": True, "Project-X": True}}}},
        )
        assert result["updated"] == {email["id"]: None}
        pushed = await asyncio.to_thread(idler.idle_check, 5)
        await asyncio.to_thread(idler.idle_done)
        fetches = [r for r in pushed if len(r) > 1 and r[1] == b"FETCH"]
        assert fetches, pushed
        # The idler selected first: the message is \\Recent there alone (RFC 3501 §2.3.2).
        assert set(fetches[-1][2][fetches[-1][2].index(b"FLAGS") + 1]) == {
            b"\\Answered",
            b"\\Flagged",
            b"\\Recent",
            b"project-x",
        }
        noop = await asyncio.to_thread(other.noop)
        assert any(b"FETCH" in line for line in noop[1]), noop
        flags = await asyncio.to_thread(other.get_flags, [1])
        assert set(flags[1]) == {b"\\Answered", b"\\Flagged", b"project-x"}
        # A keyword patch from JMAP removes one: IMAP sees it gone.
        await jmap.call("Email/set", {"update": {email["id"]: {"keywords/$answered": None}}})
        flags = await asyncio.to_thread(other.get_flags, [1])
        assert set(flags[1]) == {b"\\Flagged", b"project-x"}
    finally:
        await asyncio.to_thread(idler.logout)
        await asyncio.to_thread(other.logout)


async def test_jmap_refuses_keywords_outside_the_rfc_syntax(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="bad keywords")
    email = await only_email(jmap)
    for bad in ["a b", "with(paren", "back\\slash", "x]", "%", "é", "k" * 65, "k" * 256]:
        result = await jmap.call("Email/set", {"update": {email["id"]: {"keywords": {bad: True}}}})
        error = result["notUpdated"][email["id"]]
        assert error["type"] == "invalidProperties", (bad, error)
        assert error["properties"] == ["keywords"]
        patched = await jmap.call("Email/set", {"update": {email["id"]: {f"keywords/{bad}": True}}})
        assert patched["notUpdated"][email["id"]]["type"] == "invalidProperties", bad
    assert (await only_email(jmap))["keywords"] == {}


async def test_an_email_created_by_jmap_has_its_keywords_in_imap(imap: Imap, jmap: JmapClient) -> None:
    boxes = (await jmap.call("Mailbox/get", {"properties": ["id", "role"]}))["list"]
    drafts = next(b["id"] for b in boxes if b["role"] == "drafts")
    result = await jmap.call(
        "Email/set",
        {
            "create": {
                "d": {
                    "mailboxIds": {drafts: True},
                    "keywords": {"$draft": True, "$seen": True, "$MDNSent": True, "Later": True},
                    "from": [{"email": "alice@example.org"}],
                    "subject": "draft",
                    "textBody": [{"partId": "t", "type": "text/plain"}],
                    "bodyValues": {"t": {"value": "hello"}},
                }
            }
        },
    )
    new_id = result["created"]["d"]["id"]
    [email] = (await jmap.call("Email/get", {"ids": [new_id], "properties": ["keywords"]}))["list"]
    assert email["keywords"] == {"$draft": True, "$seen": True, "$mdnsent": True, "later": True}
    conn = await asyncio.to_thread(imap_client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "Drafts")
        fetched = (await fetch(conn, ["FLAGS", "EMAILID"]))[1]
        assert fetched[b"EMAILID"] == (new_id.encode(),)
        # The first IMAP4rev1 session told of it has it as \\Recent (RFC 3501 §2.3.2).
        assert set(fetched[b"FLAGS"]) == {b"\\Draft", b"\\Seen", b"$MDNSent", b"later", b"\\Recent"}
    finally:
        await asyncio.to_thread(conn.logout)


async def test_imap_keywords_named_like_the_jmap_flags_are_those_flags(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="dollar seen")
    email = await only_email(jmap)
    conn = await asyncio.to_thread(imap_client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "INBOX")
        await asyncio.to_thread(conn.add_flags, [1], [b"$Seen", b"$Flagged"])
        assert set((await fetch(conn, ["FLAGS"]))[1][b"FLAGS"]) == {b"\\Seen", b"\\Flagged", b"\\Recent"}
        [got] = (await jmap.call("Email/get", {"ids": [email["id"]], "properties": ["keywords"]}))["list"]
        assert got["keywords"] == {"$seen": True, "$flagged": True}
        await asyncio.to_thread(conn.remove_flags, [1], [b"$seen"])
        assert set((await fetch(conn, ["FLAGS"]))[1][b"FLAGS"]) == {b"\\Flagged", b"\\Recent"}
    finally:
        await asyncio.to_thread(conn.logout)


async def test_every_jmap_keyword_can_be_stored_back_over_imap(imap: Imap, jmap: JmapClient) -> None:
    """RFC 8621's keyword characters are IMAP's atom characters: a keyword JMAP set (with
    ``/``, ``:``, ``[``, ``}``, ``,``) is a flag an IMAP client can send back in STORE FLAGS.
    (imaplib: IMAPClient's response lexer does not take ``[`` in a flag.)"""
    await imap.deliver(subject="odd keywords")
    email = await only_email(jmap)
    odd = "a/b:c[d}e,f"
    await jmap.call("Email/set", {"update": {email["id"]: {"keywords": {odd: True, "k" * 64: True}}}})
    conn = await asyncio.to_thread(imap.login)
    try:
        await asyncio.to_thread(conn.select, "INBOX")
        typ, data = await asyncio.to_thread(conn.fetch, "1", "(FLAGS)")
        assert typ == "OK"
        assert data == [f"1 (FLAGS ({odd} {'k' * 64} \\Recent))".encode()]
        typ, data = await asyncio.to_thread(conn.store, "1", "FLAGS", f"({odd} {'k' * 64} x:y)")
        assert typ == "OK", data
        # A section left open is still refused.
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            await asyncio.to_thread(conn.fetch, "1", "(BODY[TEXT)")
    finally:
        await asyncio.to_thread(conn.logout)
    [got] = (await jmap.call("Email/get", {"ids": [email["id"]], "properties": ["keywords"]}))["list"]
    assert got["keywords"] == {odd: True, "k" * 64: True, "x:y": True}
