"""mail.emails.send over REST: drafts, sending to local mailboxes, replies, attachments, refusals."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
import pytest

from tests.client_mail.conftest import Deliver, message, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"


async def send(client: httpx.AsyncClient, who: Actor, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/emails", json=body, headers=who.headers)


async def raw_of(client: httpx.AsyncClient, who: Actor, email_id: int) -> EmailMessage:
    r = await client.get(f"/api/v1/emails/{email_id}/raw", headers=who.headers)
    assert r.status_code == 200, r.text
    parsed = message_from_bytes(r.content, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_a_draft_is_stored_not_sent(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    r = await send(
        client,
        alice,
        to=["Bob <bob@example.org>"],
        bcc=["secret@example.net"],
        subject="Draft plan",
        body="Not yet.\n",
        html_body="<p>Not yet.</p>",
        draft=True,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "draft"
    assert body["recipients"] == []
    r = await client.get("/api/v1/threads", params={"label": "drafts"}, headers=alice.headers)
    [thread] = r.json()["threads"]
    assert thread["thread_id"] == body["thread_id"]
    assert thread["participants"] == "To: Bob"
    email = (await client.get(f"/api/v1/emails/{body['email_id']}", headers=alice.headers)).json()
    assert email["is_draft"] is True
    assert email["labels"] == ["drafts"]
    assert email["text_body"].strip() == "Not yet."
    assert "<p>Not yet.</p>" in email["html_body"]
    assert email["bcc"] == [{"name": "", "email": "secret@example.net"}]
    raw = await raw_of(client, alice, body["email_id"])
    assert raw["From"].addresses[0].addr_spec == A
    assert raw["Message-ID"] == f"<{body['message_id'].strip('<>')}>"
    r = await client.get("/api/v1/threads", headers=bob.headers)
    assert r.json()["n_threads"] == 0


async def test_send_to_a_local_mailbox_with_a_sent_copy(
    client: httpx.AsyncClient, alice: Actor, bob: Actor
) -> None:
    r = await send(
        client,
        alice,
        to=["Bob <bob@example.org>"],
        bcc=["alice@example.org"],
        subject="Hi Bob",
        body="Hello there.\n",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "sent"
    assert {(x["address"], x["status"]) for x in body["recipients"]} == {
        ("bob@example.org", "delivered"),
        ("alice@example.org", "delivered"),
    }
    bob_threads = (await client.get("/api/v1/threads", headers=bob.headers)).json()["threads"]
    assert [t["subject"] for t in bob_threads] == ["Hi Bob"]
    [bob_email] = (
        await client.get(f"/api/v1/threads/{bob_threads[0]['thread_id']}", headers=bob.headers)
    ).json()["emails"]
    assert bob_email["bcc"] == []  # Bcc is not in the header sent
    sent = (await client.get("/api/v1/threads", params={"label": "sent"}, headers=alice.headers)).json()
    assert sent["threads"][0]["thread_id"] == body["thread_id"]
    assert body["email_id"] is not None


async def test_a_reply_joins_the_thread(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    original = await deliver(
        message(subject="Question", message_id="<q1@example.net>", references="<q0@example.net>"), A
    )
    thread_id = (await client.get(f"/api/v1/emails/{original}", headers=alice.headers)).json()["thread_id"]
    r = await send(
        client, alice, to=["bob@example.org"], subject="Re: Question", body="Answer.\n", reply_to=original
    )
    assert r.status_code == 201, r.text
    assert r.json()["thread_id"] == thread_id
    raw = await raw_of(client, alice, r.json()["email_id"])
    assert raw["In-Reply-To"] == "<q1@example.net>"
    assert raw["References"] == "<q0@example.net> <q1@example.net>"
    r = await send(
        client, alice, subject="Re: Question", body="Draft answer\n", thread_id=thread_id, draft=True
    )
    assert r.json()["thread_id"] == thread_id


async def test_forwarding_an_attachment(client: httpx.AsyncClient, alice: Actor, deliver: Deliver) -> None:
    msg = EmailMessage()
    msg["From"] = "carol@example.net"
    msg["To"] = A
    msg["Subject"] = "File"
    msg["Message-ID"] = "<file@x>"
    msg.set_content("see attached\n")
    msg.add_attachment(b"PDFDATA", maintype="application", subtype="pdf", filename="doc.pdf")
    email_id = await deliver(msg.as_bytes(), A)
    r = await send(client, alice, subject="Fwd", body="fyi\n", attachment_ids=[f"{email_id}/0"], draft=True)
    assert r.status_code == 201, r.text
    draft = r.json()["email_id"]
    r = await client.get(f"/api/v1/emails/{draft}/attachments/0", headers=alice.headers)
    assert r.content == b"PDFDATA"
    assert r.headers["content-type"] == "application/pdf"
    r = await send(client, alice, subject="Fwd", body="fyi\n", attachment_ids=[f"{email_id}/5"], draft=True)
    problem(r, 404, "not_found")


async def test_header_injection_and_bad_input_are_refused(client: httpx.AsyncClient, alice: Actor) -> None:
    bad: list[dict[str, Any]] = [
        {"to": ["bob@example.org"], "subject": "Hi\r\nBcc: victim@example.net"},
        {"to": ["bob@example.org\r\nBcc: victim@example.net"]},
        {"to": ["Bob\n <bob@example.org>"]},
        {"cc": ["not an address"]},
        {"to": ["a@example.org, b@example.org"]},
        {"to": ["bob@example.org"], "attachment_ids": ["x/1"]},
        {"to": ["bob@example.org"], "unknown": 1},
        {"subject": "nobody to send to"},
    ]
    for body in bad:
        r = await send(client, alice, body="x", **body)
        problem(r, 422, "invalid_params")


async def test_other_users_mail_cannot_be_answered_or_forwarded(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(subject="Alice's"), A)
    thread_id = (await client.get(f"/api/v1/emails/{email_id}", headers=alice.headers)).json()["thread_id"]
    for extra in ({"reply_to": email_id}, {"thread_id": thread_id}, {"attachment_ids": [f"{email_id}/0"]}):
        r = await send(client, bob, to=["carol@example.net"], body="x", draft=True, **extra)
        problem(r, 404, "not_found")
    assert (await client.get("/api/v1/threads", params={"label": "drafts"}, headers=bob.headers)).json()[
        "n_threads"
    ] == 0


async def test_two_identical_sends_at_once_send_one_email(
    client: httpx.AsyncClient, alice: Actor, bob: Actor
) -> None:
    """The same Idempotency-Key twice at once: one email goes out; the other request is told
    the first is still running (409) or gets its result replayed; a later retry replays it."""
    import asyncio

    body = {"to": ["bob@example.org"], "subject": "Once", "body": "Only once.\n"}
    headers = {**alice.headers, "Idempotency-Key": "send-once"}
    first, second = await asyncio.gather(
        client.post("/api/v1/emails", json=body, headers=headers),
        client.post("/api/v1/emails", json=body, headers=headers),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses in ([201, 409], [201, 201]), (first.text, second.text)
    sent = first if first.status_code == 201 else second
    retry = await client.post("/api/v1/emails", json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["email_id"] == sent.json()["email_id"]
    threads = (await client.get("/api/v1/threads", headers=bob.headers)).json()["threads"]
    assert [(t["subject"], t["n_emails"]) for t in threads] == [("Once", 1)]
