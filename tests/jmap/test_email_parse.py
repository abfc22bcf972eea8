"""Email/parse, Email/import and Email/copy."""

from __future__ import annotations

import pytest

from mailroom.store.blobs import sha256_hex
from tests.client_mail.conftest import message
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio

FORWARD = (
    b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: Fwd: trip\r\nMessage-ID: <fwd@x>\r\n"
    b"Content-Type: multipart/mixed; boundary=f\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
    b"--f\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: Carol <carol@example.net>\r\nSubject: The trip\r\nMessage-ID: <trip@x>\r\n"
    b"Date: Fri, 04 Dec 2026 08:00:00 +0000\r\n\r\nWe leave at nine.\r\n--f--\r\n"
)


async def test_parse_an_attached_message_and_import_it(jmap: JmapClient, deliver: Deliver) -> None:
    e = f"e{await deliver(FORWARD, 'alice@example.org')}"
    [got] = (await jmap.call("Email/get", {"ids": [e], "properties": ["attachments", "blobId"]}))["list"]
    [attached] = got["attachments"]
    assert attached["type"] == "message/rfc822"
    parsed = await jmap.call(
        "Email/parse",
        {"blobIds": [attached["blobId"], "G" + "1" * 64], "fetchTextBodyValues": True},
    )
    inner = parsed["parsed"][attached["blobId"]]
    assert inner["subject"] == "The trip"
    assert inner["from"] == [{"name": "Carol", "email": "carol@example.net"}]
    assert inner["messageId"] == ["trip@x"]
    assert inner["sentAt"] == "2026-12-04T08:00:00+00:00"
    assert inner["preview"] == "We leave at nine."
    [body] = inner["textBody"]
    assert inner["bodyValues"][body["partId"]]["value"] == "We leave at nine."
    assert parsed["notFound"] == ["G" + "1" * 64]
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    r = await jmap.call(
        "Email/import",
        {
            "emails": {
                "i1": {
                    "blobId": attached["blobId"],
                    "mailboxIds": {boxes["archive"]: True},
                    "keywords": {"$seen": True},
                    "receivedAt": "2026-12-04T09:00:00Z",
                },
                "i2": {"blobId": "G" + "2" * 64, "mailboxIds": {boxes["archive"]: True}},
            }
        },
    )
    new = r["created"]["i1"]
    assert r["notCreated"]["i2"]["type"] == "blobNotFound"
    [email] = (
        await jmap.call(
            "Email/get",
            {"ids": [new["id"]], "properties": ["subject", "mailboxIds", "keywords", "receivedAt"]},
        )
    )["list"]
    assert email == {
        "id": new["id"],
        "subject": "The trip",
        "mailboxIds": {boxes["archive"]: True},
        "keywords": {"$seen": True},
        "receivedAt": "2026-12-04T09:00:00Z",
    }
    again = await jmap.call(
        "Email/import",
        {"emails": {"i3": {"blobId": attached["blobId"], "mailboxIds": {boxes["inbox"]: True}}}},
    )
    assert again["notCreated"]["i3"]["type"] == "alreadyExists"
    assert again["notCreated"]["i3"]["existingId"] == new["id"]


async def test_parse_of_someone_elses_blob_is_not_found(
    jmap: JmapClient, deliver: Deliver, bob: object
) -> None:
    await deliver(message(subject="private"), "bob@example.org")
    sha = sha256_hex(message(subject="private"))
    got = await jmap.call("Email/parse", {"blobIds": [f"G{sha}"]})
    assert got.get("notFound") == [f"G{sha}"]


async def test_copy_needs_another_account(jmap: JmapClient) -> None:
    err = await jmap.error("Email/copy", {"fromAccountId": jmap.account_id, "create": {}})
    assert err["type"] == "invalidArguments"
    err = await jmap.error("Email/copy", {"fromAccountId": "u999999", "create": {}})
    assert err["type"] == "fromAccountNotFound"
