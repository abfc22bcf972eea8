"""Email/get (every property, header forms, body parts and values) and Email/changes,
over HTTP with the test JMAP client, on mail delivered through ingest."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client_mail.conftest import message
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio

RICH = (
    b'From: "Bob Q." <bob@example.net>\r\n'
    b"Sender: =?utf-8?q?S=C3=A9cr=C3=A9taire?= <sec@example.net>\r\n"
    b"To: alice@example.org, Friends: carol@example.org;\r\n"
    b"Cc: dave@example.org\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= plans\r\n"
    b"Date: Sat, 05 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <rich@example.net>\r\n"
    b"In-Reply-To: <parent@example.net>\r\n"
    b"References: <root@example.net> <parent@example.net>\r\n"
    b"List-Unsubscribe: <mailto:leave@example.net>, <https://example.net/leave>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=mixed\r\n"
    b"\r\n"
    b"--mixed\r\n"
    b"Content-Type: multipart/alternative; boundary=alt\r\n"
    b"\r\n"
    b"--alt\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Let us meet at the caf=E9.\r\n"
    b"--alt\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Let us meet at the caf\xc3\xa9.</p>\r\n"
    b"--alt--\r\n"
    b"--mixed\r\n"
    b'Content-Type: application/pdf; name="plan.pdf"\r\n'
    b"Content-Disposition: attachment; filename*=utf-8''pl%C3%A0n.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--mixed--\r\n"
)


async def _get(jmap: JmapClient, ids: list[str], **args: Any) -> list[dict[str, Any]]:
    got = await jmap.call("Email/get", {"ids": ids, **args})
    return list(got["list"])


async def test_default_properties(jmap: JmapClient, deliver: Deliver) -> None:
    email_id = await deliver(RICH, "alice@example.org")
    mailboxes = (await jmap.call("Mailbox/get", {"ids": None}))["list"]
    inbox = next(m["id"] for m in mailboxes if m["role"] == "inbox")
    [email] = await _get(jmap, [f"e{email_id}"])
    assert email["id"] == f"e{email_id}"
    assert email["blobId"].startswith("G")
    assert email["threadId"].startswith("T")
    assert email["mailboxIds"] == {inbox: True}
    assert email["keywords"] == {}
    assert email["size"] == len(RICH)
    assert email["receivedAt"].endswith("Z")
    assert email["messageId"] == ["rich@example.net"]
    assert email["inReplyTo"] == ["parent@example.net"]
    assert email["references"] == ["root@example.net", "parent@example.net"]
    assert email["sender"] == [{"name": "Sécrétaire", "email": "sec@example.net"}]
    assert email["from"] == [{"name": "Bob Q.", "email": "bob@example.net"}]
    assert email["cc"] == [{"name": None, "email": "dave@example.org"}]
    assert email["bcc"] is None
    assert email["subject"] == "Café plans"
    assert email["sentAt"] == "2026-12-05T09:00:00+00:00"
    assert email["hasAttachment"] is True
    assert email["preview"].startswith("Let us meet at the café.")
    assert [p["partId"] for p in email["textBody"]] == ["1.1"]
    assert [p["partId"] for p in email["htmlBody"]] == ["1.2"]
    [pdf] = email["attachments"]
    assert pdf["name"] == "plàn.pdf"
    assert pdf["type"] == "application/pdf"
    assert pdf["size"] == 9
    assert pdf["disposition"] == "attachment"
    assert pdf["blobId"] == f"{email['blobId']}-2"
    download = await jmap.http.get(
        f"/jmap/download/{jmap.account_id}/{pdf['blobId']}/x.pdf", headers=jmap.headers
    )
    assert download.status_code == 200
    assert download.content == b"%PDF-1.4\n"
    assert download.headers["content-type"].startswith("application/pdf")
    assert email["bodyValues"] == {}


async def test_body_values_structure_and_header_forms(jmap: JmapClient, deliver: Deliver) -> None:
    email_id = await deliver(RICH, "alice@example.org")
    [email] = await _get(
        jmap,
        [f"e{email_id}"],
        properties=[
            "bodyStructure",
            "bodyValues",
            "headers",
            "header:To:asGroupedAddresses",
            "header:Subject:asText",
            "header:subject",
            "header:List-Unsubscribe:asURLs",
            "header:References:asMessageIds:all",
            "header:Date:asDate",
            "header:X-Missing:all",
        ],
        fetchAllBodyValues=True,
        maxBodyValueBytes=14,
        bodyProperties=["partId", "type", "size"],
    )
    assert set(email) == {
        "id", "bodyStructure", "bodyValues", "headers", "header:To:asGroupedAddresses",
        "header:Subject:asText", "header:subject", "header:List-Unsubscribe:asURLs",
        "header:References:asMessageIds:all", "header:Date:asDate", "header:X-Missing:all",
    }  # fmt: skip
    assert email["bodyStructure"] == {
        "partId": None,
        "type": "multipart/mixed",
        "size": 0,
        "subParts": [
            {
                "partId": None,
                "type": "multipart/alternative",
                "size": 0,
                "subParts": [
                    {"partId": "1.1", "type": "text/plain", "size": 24},
                    {"partId": "1.2", "type": "text/html", "size": 32},
                ],
            },
            {"partId": "2", "type": "application/pdf", "size": 9},
        ],
    }
    assert email["bodyValues"] == {
        "1.1": {"value": "Let us meet at", "isEncodingProblem": False, "isTruncated": True},
        "1.2": {"value": "<p>Let us meet", "isEncodingProblem": False, "isTruncated": True},
    }
    assert email["headers"][0] == {"name": "From", "value": ' "Bob Q." <bob@example.net>'}
    assert len(email["headers"]) == 12
    assert email["header:To:asGroupedAddresses"] == [
        {"name": None, "addresses": [{"name": None, "email": "alice@example.org"}]},
        {"name": "Friends", "addresses": [{"name": None, "email": "carol@example.org"}]},
    ]
    assert email["header:Subject:asText"] == "Café plans"
    assert email["header:subject"] == " =?utf-8?q?Caf=C3=A9?= plans"
    assert email["header:List-Unsubscribe:asURLs"] == [
        "mailto:leave@example.net",
        "https://example.net/leave",
    ]
    assert email["header:References:asMessageIds:all"] == [["root@example.net", "parent@example.net"]]
    assert email["header:Date:asDate"] == "2026-12-05T10:00:00+01:00"
    assert email["header:X-Missing:all"] == []


async def test_text_and_html_values_and_bad_arguments(jmap: JmapClient, deliver: Deliver) -> None:
    email_id = await deliver(RICH, "alice@example.org")
    [email] = await _get(jmap, [f"e{email_id}"], properties=["bodyValues"], fetchHTMLBodyValues=True)
    assert list(email["bodyValues"]) == ["1.2"]
    assert email["bodyValues"]["1.2"]["value"] == "<p>Let us meet at the café.</p>"
    [email] = await _get(jmap, [f"e{email_id}"], properties=["bodyValues"], fetchTextBodyValues=True)
    assert email["bodyValues"]["1.1"]["value"] == "Let us meet at the café."
    for bad in (["nope"], ["header:Subject:asAddresses"], ["header:From:asWhat"]):
        err = await jmap.error("Email/get", {"ids": [f"e{email_id}"], "properties": bad})
        assert err["type"] == "invalidArguments"
    err = await jmap.error("Email/get", {"ids": [], "bodyProperties": ["bogus"]})
    assert err["type"] == "invalidArguments"
    # ids null: every email of the account, while there are at most maxObjectsInGet.
    every = await jmap.call("Email/get", {"ids": None, "properties": ["id"]})
    assert every["list"] == [{"id": f"e{email_id}"}]


@pytest.mark.parametrize("settings_overrides", [{"jmap_max_objects_in_get": 1}])
async def test_get_null_ids_beyond_the_limit(jmap: JmapClient, deliver: Deliver, bob: Any) -> None:
    await deliver(message(subject="bob's"), "bob@example.org")
    await deliver(message(subject="one"), "alice@example.org")
    [only] = (await jmap.call("Email/get", {"ids": None, "properties": ["subject"]}))["list"]
    assert only["subject"] == "one"  # Bob's email is not Alice's
    await deliver(message(subject="two", message_id="<two@x>"), "alice@example.org")
    err = await jmap.error("Email/get", {"ids": None})
    assert err["type"] == "requestTooLarge"


async def test_not_found_and_someone_elses(jmap: JmapClient, deliver: Deliver, bob: Any) -> None:
    theirs = await deliver(message(subject="not yours"), "bob@example.org")
    mine = await deliver(message(subject="mine"), "alice@example.org")
    got = await jmap.call(
        "Email/get", {"ids": [f"e{theirs}", f"e{mine}", "e0", "x1"], "properties": ["subject"]}
    )
    assert got["list"] == [{"id": f"e{mine}", "subject": "mine"}]
    assert got["notFound"] == [f"e{theirs}", "e0", "x1"]


async def test_changes_after_deliveries_and_flags(jmap: JmapClient, deliver: Deliver) -> None:
    start = (await jmap.call("Email/get", {"ids": []}))["state"]
    first = await deliver(message(message_id="<1@x>"), "alice@example.org")
    second = await deliver(message(message_id="<2@x>"), "alice@example.org")
    changes = await jmap.call("Email/changes", {"sinceState": start})
    assert changes["created"] == [f"e{first}", f"e{second}"]
    assert changes["updated"] == changes["destroyed"] == []
    assert changes["hasMoreChanges"] is False
    step = await jmap.call("Email/changes", {"sinceState": start, "maxChanges": 1})
    assert step["created"] == [f"e{first}"]
    assert step["hasMoreChanges"] is True
    rest = await jmap.call("Email/changes", {"sinceState": step["newState"]})
    assert rest["created"] == [f"e{second}"]
    assert rest["newState"] == changes["newState"]
    err = await jmap.error("Email/changes", {"sinceState": "bogus"})
    assert err["type"] == "cannotCalculateChanges"
