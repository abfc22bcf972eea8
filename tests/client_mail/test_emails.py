"""mail.emails.get / raw / attachment over REST: headers, bodies, downloads, isolation."""

from __future__ import annotations

from email.message import EmailMessage

import httpx
import pytest

from tests.client_mail.conftest import Deliver, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4 not really a pdf \x00\x01\x02"


def rich_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Billy Joel <billy@example.net>"
    msg["To"] = "Alice <alice@example.org>"
    msg["Cc"] = "carol@example.net"
    msg["Subject"] = "Rapport für März"
    msg["Date"] = "Thu, 01 Jan 2026 10:00:00 +0000"
    msg["Message-ID"] = "<rich@example.net>"
    msg.set_content("Plain words here.\n")
    msg.add_alternative("<p>HTML <b>words</b> here.</p>", subtype="html")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="../../etc/passwd")
    return msg.as_bytes()


async def test_get_email_has_headers_addresses_bodies_and_attachments(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(rich_message(), "alice@example.org")
    r = await client.get(f"/api/v1/emails/{email_id}", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email_id"] == email_id
    assert body["subject"] == "Rapport für März"
    assert body["from"] == [{"name": "Billy Joel", "email": "billy@example.net"}]
    assert body["to"] == [{"name": "Alice", "email": "alice@example.org"}]
    assert body["cc"] == [{"name": "", "email": "carol@example.net"}]
    assert body["message_id"] == "rich@example.net"
    headers = {h["name"].lower(): h["value"] for h in body["headers"]}
    assert headers["subject"] == "Rapport für März"
    assert headers["from"] == "Billy Joel <billy@example.net>"
    assert body["text_body"].strip() == "Plain words here."
    assert "<b>words</b>" in body["html_body"]
    assert body["has_attachments"] is True
    assert body["labels"] == ["inbox"]
    names = [(a["index"], a["filename"], a["content_type"]) for a in body["attachments"]]
    assert (0, "report.pdf", "application/pdf") in names
    assert body["attachments"][0]["size"] == len(PDF)


async def test_raw_is_the_message_as_received(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    raw = rich_message()
    email_id = await deliver(raw, "alice@example.org")
    r = await client.get(f"/api/v1/emails/{email_id}/raw", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "message/rfc822"
    # Our trace headers (in the message's own line ends, LF here), then the bytes as they came.
    trace, rest = r.content[: len(r.content) - len(raw)], r.content[len(r.content) - len(raw) :]
    assert rest == raw
    assert trace.startswith(b"Return-Path: <bob@example.net>\nDelivered-To: alice@example.org\n")
    assert trace.split(b"\n")[2].startswith(b"Received: from ")
    assert trace.count(b"\n") == 5  # Return-Path, Delivered-To, Received folded over three lines
    assert b"\r" not in trace


async def test_attachment_download_has_type_and_a_safe_name(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(rich_message(), "alice@example.org")
    r = await client.get(f"/api/v1/emails/{email_id}/attachments/0", headers=alice.headers)
    assert r.status_code == 200
    assert r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert 'filename="report.pdf"' in r.headers["content-disposition"]
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    r = await client.get(f"/api/v1/emails/{email_id}/attachments/1", headers=alice.headers)
    assert r.status_code == 200
    assert r.content == b"a,b\n1,2\n"
    assert r.headers["content-type"].startswith("text/csv")
    assert "/" not in r.headers["content-disposition"].split("filename=")[1].split(";")[0]
    r = await client.get(f"/api/v1/emails/{email_id}/attachments/7", headers=alice.headers)
    problem(r, 404, "not_found")
    r = await client.get(f"/api/v1/emails/{email_id}/attachments/-1", headers=alice.headers)
    problem(r, 422, "invalid_params")


async def test_other_users_emails_are_not_found(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(rich_message(), "alice@example.org")
    for path in ("", "/raw", "/attachments/0"):
        r = await client.get(f"/api/v1/emails/{email_id}{path}", headers=bob.headers)
        problem(r, 404, "not_found")
        r = await client.get(f"/api/v1/emails/{email_id + 1000}{path}", headers=alice.headers)
        problem(r, 404, "not_found")
    r = await client.get("/api/v1/emails/abc", headers=alice.headers)
    problem(r, 422, "invalid_params")
