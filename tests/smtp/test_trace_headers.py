"""Stored mail starts with Return-Path, Delivered-To and a Received line (RFC 5321 §4.4),
written by ingest for every way mail arrives (issue 11 §8), read back over REST.

Mail is sent over the real SMTP and LMTP listeners on loopback with smtplib; the stored
message is read with ``GET /emails/{id}/raw`` and ``GET /emails/{id}``.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import httpx
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.store.mail_schema import emails
from tests.conftest import Actor
from tests.mailhelpers import lmtp_send, message, smtp_send

pytestmark = pytest.mark.anyio

#: Return-Path, Delivered-To, then a Received line folded over three lines.
TRACE = re.compile(
    rb"\AReturn-Path: <(?P<return_path>[^>]*)>\r\n"
    rb"Delivered-To: (?P<delivered_to>\S+)\r\n"
    rb"Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\tby (?P<by>\S+) with (?P<protocol>[A-Za-z]+) id (?P<id>[0-9a-f]{16})\r\n"
    rb"\tfor <(?P<for>[^>]+)>; (?P<date>[^\r\n]+)\r\n"
)


async def ids_of(mailroom: Mailroom, user_id: int) -> list[int]:
    async with mailroom.runtime.db.read() as tx:
        return [int(i) for i in await tx.scalars(select(emails.c.id).where(emails.c.user_id == user_id))]


async def raw_of(client: httpx.AsyncClient, who: Actor, email_id: int) -> bytes:
    r = await client.get(f"/api/v1/emails/{email_id}/raw", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.content


@pytest.fixture
async def users(make_user: Callable[..., Awaitable[Actor]]) -> tuple[Actor, Actor]:
    return await make_user("alice@example.org"), await make_user("carol@example.org")


async def test_esmtp_arrival_gets_trace_headers_per_mailbox(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, carol = users
    raw = message()
    out = await asyncio.to_thread(
        smtp_send, listeners.ports["smtp"], "bob@example.net", ["alice@example.org", "carol@example.org"], raw
    )
    assert out.data[0][0] == 250
    stored = {}
    for who in (alice, carol):
        assert who.principal.user_id is not None
        [email_id] = await ids_of(mailroom, who.principal.user_id)
        stored[who.email] = await raw_of(client, who, email_id)
    found = {}
    for address, got in stored.items():
        match = TRACE.match(got)
        assert match is not None, got[:400]
        assert got[match.end() :] == raw  # the message itself follows, untouched
        assert match["return_path"] == b"bob@example.net"
        assert match["delivered_to"].decode() == address
        assert match["for"].decode() == address
        assert match["helo"] == b"client.test"
        assert match["ip"] == b"127.0.0.1"
        assert match["by"].decode() == mailroom.settings.hostname
        assert match["protocol"] == b"ESMTP"
        assert parsedate_to_datetime(match["date"].decode()) == mailroom.runtime.clock.now()
        found[address] = match
    # One arrival, one id; each mailbox its own Delivered-To.
    assert found["alice@example.org"]["id"] == found["carol@example.org"]["id"]
    # The headers as the API lists them, newest (ours) first; size is what raw serves.
    [email_id] = await ids_of(mailroom, alice.principal.user_id or 0)
    r = await client.get(f"/api/v1/emails/{email_id}", headers=alice.headers)
    detail = r.json()
    names = [h["name"] for h in detail["headers"]]
    assert names[:3] == ["Return-Path", "Delivered-To", "Received"]
    assert detail["headers"][2]["value"].startswith("from client.test ([127.0.0.1]) by ")
    assert detail["size"] == len(stored["alice@example.org"])


async def test_plain_helo_is_smtp_and_the_null_sender_an_empty_return_path(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users
    raw = message(message_id="<bounce@x>")

    def send() -> None:
        conn = smtplib.SMTP("127.0.0.1", listeners.ports["smtp"])
        try:
            conn.helo("old.client.test")
            conn.sendmail("<>", ["alice@example.org"], raw)
        finally:
            conn.quit()

    await asyncio.to_thread(send)
    [email_id] = await ids_of(mailroom, alice.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, alice, email_id))
    assert match is not None
    assert match["protocol"] == b"SMTP"
    assert match["helo"] == b"old.client.test"
    assert match["return_path"] == b""


async def test_lmtp_arrival_says_lmtp(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "bob@example.net", ["alice+tag@example.org"], message()
    )
    assert [c for c, _ in out.data] == [250]
    [email_id] = await ids_of(mailroom, alice.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, alice, email_id))
    assert match is not None
    assert match["protocol"] == b"LMTP"
    assert match["delivered_to"] == b"alice+tag@example.org"  # the address as it was given


async def test_a_hostile_helo_name_cannot_add_header_text(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users

    def send() -> None:
        conn = smtplib.SMTP("127.0.0.1", listeners.ports["smtp"])
        try:
            conn.ehlo("evil(x);by:fake")
            conn.sendmail("bob@example.net", ["alice@example.org"], message())
        finally:
            conn.quit()

    await asyncio.to_thread(send)
    [email_id] = await ids_of(mailroom, alice.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, alice, email_id))
    assert match is not None
    assert match["helo"] == b"evilxby:fake"  # only the characters a host name may have


async def test_the_api_send_to_a_local_mailbox_is_traced_and_own_copies_are_not(
    mailroom: Mailroom, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, carol = users
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["carol@example.org"], "subject": "Hi", "body": "x"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    sent_id = r.json()["email_id"]
    assert not (await raw_of(client, alice, sent_id)).startswith(b"Return-Path")  # the sender's copy
    [carols] = await ids_of(mailroom, carol.principal.user_id or 0)
    got = await raw_of(client, carol, carols)
    assert got.startswith(b"Return-Path: <alice@example.org>\r\nDelivered-To: carol@example.org\r\n")
    assert b" with HTTP id " in got.split(b"\r\n\r\n")[0]
    # A draft is the caller's own text: no trace.
    r = await client.post("/api/v1/emails", json={"subject": "later", "draft": True}, headers=alice.headers)
    assert (await raw_of(client, alice, r.json()["email_id"])).startswith(b"From: ")


async def test_imported_mail_keeps_its_own_trace(
    mailroom: Mailroom, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users
    raw = b"Received: from elsewhere by old.example; Mon, 1 Jan 2024 10:00:00 +0000\r\n" + message()
    r = await client.post(
        "/api/v1/users/alice@example.org/messages/import",
        json={"message": raw.decode(), "encoding": "text"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    assert await raw_of(client, alice, r.json()["email_id"]) == raw


async def test_submission_to_a_local_mailbox_says_esmtpsa(
    mailroom: Mailroom, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Actor]]
) -> None:
    await make_user("alice@example.org", password="correct horse battery")
    carol = await make_user("carol@example.org")
    running = await start_submission(mailroom, bind=("127.0.0.1", 0))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def send() -> None:
        conn = smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10)
        try:
            conn.ehlo("laptop.test")
            conn.starttls(context=context)
            conn.login("alice@example.org", "correct horse battery")
            conn.sendmail("alice@example.org", ["carol@example.org"], message(sender="alice@example.org"))
        finally:
            conn.quit()

    try:
        await asyncio.to_thread(send)
    finally:
        await running.close()
    [email_id] = await ids_of(mailroom, carol.principal.user_id or 0)
    got = await raw_of(client, carol, email_id)
    assert got.startswith(b"Return-Path: <alice@example.org>\r\nDelivered-To: carol@example.org\r\n")
    assert b" with ESMTPSA id " in got.split(b"\r\n\r\n")[0]
