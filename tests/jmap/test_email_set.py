"""Email/set (keywords, mailboxIds, create from parts and blobs, destroy), seen from REST
and JMAP alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]


async def _boxes(jmap: JmapClient) -> dict[str, str]:
    return {m["role"] or m["name"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}


async def _rest(call: Call, alice: Actor, email_id: str) -> dict[str, Any]:
    detail = await call("mail.emails.get", {"id": int(email_id[1:])}, as_=alice)
    return dict(detail)


async def test_keywords_and_mailboxes(jmap: JmapClient, deliver: Deliver, alice: Actor, call: Call) -> None:
    e = f"e{await deliver(message(), 'alice@example.org')}"
    boxes = await _boxes(jmap)
    before = (await jmap.call("Email/get", {"ids": []}))["state"]
    r = await jmap.call("Email/set", {"update": {e: {"keywords/$seen": True, "keywords/$flagged": True}}})
    assert r["updated"] == {e: None}
    assert r["oldState"] == before
    rest = await _rest(call, alice, e)
    assert rest["is_read"] is True
    assert rest["is_starred"] is True
    r = await jmap.call(
        "Email/set", {"update": {e: {"mailboxIds": {boxes["archive"]: True}, "keywords": {}}}}
    )
    assert r["updated"] == {e: None}
    [got] = (await jmap.call("Email/get", {"ids": [e], "properties": ["mailboxIds", "keywords"]}))["list"]
    assert got["mailboxIds"] == {boxes["archive"]: True}
    assert got["keywords"] == {}
    rest = await _rest(call, alice, e)
    assert rest["labels"] == ["archive"]
    assert rest["is_read"] is False
    changes = await jmap.call("Email/changes", {"sinceState": before})
    assert changes["updated"] == [e]
    # REST changes are JMAP changes.
    await call("mail.emails.batch", {"ids": [int(e[1:])], "action": "read"}, as_=alice)
    [got] = (await jmap.call("Email/get", {"ids": [e], "properties": ["keywords"]}))["list"]
    assert got["keywords"] == {"$seen": True}
    r = await jmap.call(
        "Email/set",
        {
            "update": {
                e: {"mailboxIds": {}},
                "e999999": {"keywords": {}},
            }
        },
    )
    assert r["notUpdated"][e]["type"] == "invalidProperties"
    assert r["notUpdated"]["e999999"]["type"] == "notFound"
    r = await jmap.call("Email/set", {"update": {e: {"keywords/$custom": True, "subject": "x"}}})
    assert r["notUpdated"][e]["type"] == "invalidProperties"
    r = await jmap.call(
        "Email/set", {"update": {e: {"keywords": {"$seen": True}, "keywords/$flagged": True}}}
    )
    assert r["notUpdated"][e]["type"] == "invalidPatch"
    err = await jmap.error("Email/set", {"ifInState": "1", "update": {}})
    assert err["type"] == "stateMismatch"


async def test_destroy(jmap: JmapClient, deliver: Deliver, alice: Actor, call: Call) -> None:
    e = f"e{await deliver(message(), 'alice@example.org')}"
    before = (await jmap.call("Email/get", {"ids": []}))["state"]
    r = await jmap.call("Email/set", {"destroy": [e, "e999999"]})
    assert r["destroyed"] == [e]
    assert r["notDestroyed"]["e999999"]["type"] == "notFound"
    assert (await jmap.call("Email/get", {"ids": [e]}))["notFound"] == [e]
    assert (await jmap.call("Email/changes", {"sinceState": before}))["destroyed"] == [e]
    with pytest.raises(Exception, match=r"not_found|not found"):
        await _rest(call, alice, e)


async def test_create_a_draft_from_parts_and_blobs(jmap: JmapClient, deliver: Deliver) -> None:
    source = (
        b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: with file\r\n"
        b"Message-ID: <f@x>\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
        b"--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQK\r\n--b--\r\n"
    )
    src = f"e{await deliver(source, 'alice@example.org')}"
    [got] = (await jmap.call("Email/get", {"ids": [src], "properties": ["attachments"]}))["list"]
    pdf_blob = got["attachments"][0]["blobId"]
    boxes = await _boxes(jmap)
    create = {
        "mailboxIds": {boxes["drafts"]: True},
        "keywords": {"$draft": True, "$seen": True, "$Forwarded": True, "work": True},
        "from": [{"name": "Alice", "email": "alice@example.org"}],
        "to": [{"name": None, "email": "bob@example.net"}],
        "subject": "Draft with parts",
        "inReplyTo": ["f@x"],
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "htmlBody": [{"partId": "h", "type": "text/html"}],
        "attachments": [{"blobId": pdf_blob, "type": "application/pdf", "name": "copy.pdf"}],
        "bodyValues": {"t": {"value": "Hi Bob"}, "h": {"value": "<p>Hi Bob</p>"}},
        "header:X-Mailer": "test",
    }
    r = await jmap.call("Email/set", {"create": {"d1": create, "bad": {"mailboxIds": {}}}})
    assert r["notCreated"]["bad"]["type"] == "invalidProperties"
    new = r["created"]["d1"]
    [email] = (
        await jmap.call(
            "Email/get",
            {
                "ids": [new["id"]],
                "properties": [
                    "mailboxIds", "keywords", "subject", "from", "to", "inReplyTo", "threadId",
                    "textBody", "htmlBody", "attachments", "bodyValues", "header:X-Mailer:asText", "size",
                ],
                "fetchAllBodyValues": True,
            },
        )
    )["list"]  # fmt: skip
    assert email["mailboxIds"] == {boxes["drafts"]: True}
    # The keywords kept as rows are stored with the email, in its transaction.
    assert email["keywords"] == {"$draft": True, "$seen": True, "$forwarded": True, "work": True}
    assert email["subject"] == "Draft with parts"
    assert email["from"] == [{"name": "Alice", "email": "alice@example.org"}]
    assert email["inReplyTo"] == ["f@x"]
    assert email["size"] == new["size"]
    assert [v["value"].strip() for v in email["bodyValues"].values()] == ["Hi Bob", "<p>Hi Bob</p>"]
    [att] = email["attachments"]
    assert (att["name"], att["type"], att["size"]) == ("copy.pdf", "application/pdf", 9)
    assert email["header:X-Mailer:asText"] == "test"
    # The reply joined the thread of the message it answers.
    [original] = (await jmap.call("Email/get", {"ids": [src], "properties": ["threadId"]}))["list"]
    assert email["threadId"] == original["threadId"]
    r = await jmap.call(
        "Email/set",
        {
            "create": {
                "x": {"mailboxIds": {boxes["drafts"]: True}, "attachments": [{"blobId": "G" + "0" * 64}]}
            }
        },
    )
    assert r["notCreated"]["x"]["type"] == "blobNotFound"


async def test_hostile_values_are_set_errors_not_server_failures(jmap: JmapClient) -> None:
    boxes = await _boxes(jmap)
    base = {"mailboxIds": {boxes["drafts"]: True}}
    creates = {
        "nl": {**base, "header:X-Evil": "a\r\nBcc: victim@example.net"},
        "subject": {**base, "subject": "line\nbreak"},
        "addr": {**base, "to": [{"email": "no-at-sign"}]},
        "body": {**base, "textBody": [{"partId": "missing", "type": "text/plain"}]},
        "both": {**base, "bodyStructure": {"type": "text/plain", "partId": "a"}, "textBody": []},
        "kw": {**base, "keywords": {"$seen": False}},
        "unknown": {**base, "id": "e1"},
    }
    r = await jmap.call("Email/set", {"create": creates})
    assert set(r["notCreated"]) == set(creates)
    assert {e["type"] for e in r["notCreated"].values()} == {"invalidProperties"}
    for text in ("!!!", "*", '"', "-", "((("):
        got = await jmap.call("Email/query", {"filter": {"text": text}})
        assert isinstance(got["ids"], list)
