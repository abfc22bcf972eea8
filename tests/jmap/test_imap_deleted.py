"""RFC 8621 §4.1.1: an email with IMAP's \\Deleted is not visible over JMAP (nor counted in
the Mailbox counts), while IMAP keeps seeing it until EXPUNGE. IMAP with imaplib over
loopback, JMAP with the tests' httpx client: STORE +FLAGS (\\Deleted) hides the email from
Email/get, Email/query, Email/queryChanges, Thread/get, SearchSnippet/get and the counts,
and Email/changes and Thread/changes report it destroyed; -FLAGS brings it back, created."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mailroom.web import build_app
from tests.imap.conftest import PASSWORD, Imap
from tests.imap.conftest import imap as imap  # the fixture, for this directory
from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio

COUNTS = ["totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]


@pytest.fixture
async def jmap(imap: Imap) -> AsyncIterator[JmapClient]:
    """A JMAP client of the same mailroom as ``imap``, as alice with her password."""
    token = base64.b64encode(f"alice@example.org:{PASSWORD}".encode()).decode()
    transport = httpx.ASGITransport(app=build_app(imap.mailroom), client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as http:
        c = JmapClient(http, {"Authorization": f"Basic {token}"})
        await c.session()
        yield c


async def inbox(jmap: JmapClient) -> dict[str, Any]:
    boxes = (await jmap.call("Mailbox/get", {"properties": ["id", "role", *COUNTS]}))["list"]
    return dict(next(b for b in boxes if b["role"] == "inbox"))


def counts(box: dict[str, Any]) -> list[int]:
    return [box[k] for k in COUNTS]


async def store(imap: Imap, how: str, seq: str = "2") -> None:
    def run() -> None:
        conn = imap.login()
        try:
            assert conn.select("INBOX")[0] == "OK"
            assert conn.store(seq, how, "(\\Deleted)")[0] == "OK"
        finally:
            conn.logout()

    await asyncio.to_thread(run)


async def imap_view(imap: Imap) -> tuple[bytes, list[bytes]]:
    """STATUS MESSAGES of INBOX and the FLAGS of each message, as IMAP sees them."""

    def run() -> tuple[bytes, list[bytes]]:
        conn = imap.login()
        try:
            status = conn.status("INBOX", "(MESSAGES)")[1][0]
            conn.select("INBOX")
            flags = [line for line in conn.fetch("1:*", "(FLAGS)")[1] if isinstance(line, bytes)]
            return status, flags
        finally:
            conn.logout()

    return await asyncio.to_thread(run)


async def test_imap_deleted_hides_the_email_from_jmap_until_cleared(imap: Imap, jmap: JmapClient) -> None:
    await imap.deliver(subject="keep me", message_id="<keep@example.net>")
    await imap.deliver(subject="hide me", message_id="<hide@example.net>")
    box = await inbox(jmap)
    assert counts(box) == [2, 2, 2, 2]
    listed = await jmap.call("Email/query", {"filter": {"inMailbox": box["id"]}, "calculateTotal": True})
    hide, keep = listed["ids"]  # newest first
    got = await jmap.call("Email/get", {"ids": [hide], "properties": ["threadId", "subject"]})
    assert got["list"][0]["subject"] == "hide me"
    thread = got["list"][0]["threadId"]
    before = got["state"]

    await store(imap, "+FLAGS")  # the second message: "hide me"

    got = await jmap.call("Email/get", {"ids": [hide, keep], "properties": ["id"]})
    assert got["notFound"] == [hide]
    assert [e["id"] for e in got["list"]] == [keep]
    assert got["state"] != before
    every = await jmap.call("Email/get", {"ids": None, "properties": ["id"]})
    assert [e["id"] for e in every["list"]] == [keep]
    query = await jmap.call("Email/query", {"filter": {"inMailbox": box["id"]}, "calculateTotal": True})
    assert (query["ids"], query["total"]) == ([keep], 1)
    assert (await jmap.call("Email/query", {"filter": {"hasKeyword": "$deleted"}}))["ids"] == []
    assert (await jmap.call("Email/query", {"collapseThreads": True, "calculateTotal": True}))["total"] == 1
    threads = await jmap.call("Thread/get", {"ids": [thread]})
    assert threads["notFound"] == [thread]
    assert [t["id"] for t in (await jmap.call("Thread/get", {"ids": None}))["list"]] != [thread]
    snippets = await jmap.call("SearchSnippet/get", {"emailIds": [hide], "filter": {"text": "hide"}})
    assert snippets["notFound"] == [hide]
    assert counts(await inbox(jmap)) == [1, 1, 1, 1]
    # A client's cache learns of it: the email and its (now empty) thread are destroyed, the
    # mailbox updated; a query's results lose it.
    changes = await jmap.call("Email/changes", {"sinceState": before})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([], [], [hide])
    thread_changes = await jmap.call("Thread/changes", {"sinceState": before})
    assert (thread_changes["updated"], thread_changes["destroyed"]) == ([], [thread])
    assert box["id"] in (await jmap.call("Mailbox/changes", {"sinceState": before}))["updated"]
    query_changes = await jmap.call(
        "Email/queryChanges", {"filter": {"inMailbox": box["id"]}, "sinceQueryState": listed["queryState"]}
    )
    assert hide in query_changes["removed"]
    assert query_changes["added"] == []
    # The REST client API keeps seeing it, with its keyword, and the label's full counts.
    principal = await imap.mailroom.authenticator.basic("alice@example.org", PASSWORD, "127.0.0.1")
    registry = imap.mailroom.registry
    detail = await registry.call("mail.emails.get", {"id": int(hide[1:])}, principal=principal)
    assert detail["keywords"] == ["$deleted"]
    labels = await registry.call("mail.labels.list", {}, principal=principal)
    [rest_inbox] = [label for label in labels if label["name"] == "inbox"]
    assert [rest_inbox[k] for k in ("emails_total", "emails_unread", "threads_total")] == [2, 2, 2]
    # IMAP keeps seeing it, flagged, until EXPUNGE.
    status, flags = await imap_view(imap)
    assert b"MESSAGES 2" in status
    assert len(flags) == 2
    assert b"\\Deleted" in flags[1]
    assert b"\\Deleted" not in flags[0]

    hidden_state = (await jmap.call("Email/get", {"ids": [], "properties": ["id"]}))["state"]
    await store(imap, "-FLAGS")

    got = await jmap.call("Email/get", {"ids": [hide], "properties": ["id", "keywords"]})
    assert got["list"] == [{"id": hide, "keywords": {}}]
    assert counts(await inbox(jmap)) == [2, 2, 2, 2]
    changes = await jmap.call("Email/changes", {"sinceState": hidden_state})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([hide], [], [])
    thread_changes = await jmap.call("Thread/changes", {"sinceState": hidden_state})
    assert (thread_changes["created"], thread_changes["destroyed"]) == ([thread], [])
    assert (await jmap.call("Thread/get", {"ids": [thread]}))["list"] == [{"id": thread, "emailIds": [hide]}]
    # Over the whole span (visible, hidden, visible again) it is an update.
    changes = await jmap.call("Email/changes", {"sinceState": before})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([], [hide], [])


async def test_a_hidden_email_in_a_thread_with_others_updates_the_thread(
    imap: Imap, jmap: JmapClient
) -> None:
    await imap.deliver(subject="topic", message_id="<one@example.net>")
    await imap.deliver(subject="Re: topic", message_id="<two@example.net>", in_reply_to="<one@example.net>")
    ids = (await jmap.call("Email/query", {}))["ids"]
    got = await jmap.call("Email/get", {"ids": ids, "properties": ["threadId", "subject"]})
    by_subject = {e["subject"]: e["id"] for e in got["list"]}
    first, second = by_subject["topic"], by_subject["Re: topic"]  # IMAP's 1 and 2
    [thread] = {e["threadId"] for e in got["list"]}
    assert counts(await inbox(jmap)) == [2, 2, 1, 1]
    before = got["state"]
    # Read the first, then hide the second (the only unread one): the thread stays, read.
    await jmap.call("Email/set", {"update": {first: {"keywords/$seen": True}}})
    await store(imap, "+FLAGS", "2")
    assert counts(await inbox(jmap)) == [1, 0, 1, 0]
    assert (await jmap.call("Thread/get", {"ids": [thread]}))["list"] == [{"id": thread, "emailIds": [first]}]
    thread_changes = await jmap.call("Thread/changes", {"sinceState": before})
    assert (thread_changes["updated"], thread_changes["destroyed"]) == ([thread], [])
    # EXPUNGE over IMAP: the hidden email goes for good; JMAP's view does not change again.
    counted = counts(await inbox(jmap))

    def expunge() -> None:
        conn = imap.login()
        try:
            conn.select("INBOX")
            assert conn.expunge()[0] == "OK"
        finally:
            conn.logout()

    await asyncio.to_thread(expunge)
    status, _ = await imap_view(imap)
    assert b"MESSAGES 1" in status
    assert counts(await inbox(jmap)) == counted
    assert (await jmap.call("Email/changes", {"sinceState": before}))["destroyed"] == [second]
