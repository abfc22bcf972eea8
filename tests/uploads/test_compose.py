"""Uploads in compose: attached by id to a sent email or a draft, then kept; never another's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.services.mail.uploads import expire_uploads
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
MakeUser = Callable[..., Awaitable[Actor]]


async def upload(client: httpx.AsyncClient, actor: Actor, name: str, content: bytes, media: str) -> str:
    r = await client.post("/api/v1/uploads", files={"file": (name, content, media)}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["attachment_id"])


async def test_sent_email_carries_the_upload_which_then_stays(
    client: httpx.AsyncClient, make_user: MakeUser, mailroom: Mailroom, clock: FakeClock
) -> None:
    alice = await make_user("alice@example.org")
    bob = await make_user("bob@example.org")
    up = await upload(client, alice, "plan.pdf", b"%PDF-1.7 the plan", "application/pdf")
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["bob@example.org"], "subject": "Plan", "body": "Attached.", "attachment_ids": [up]},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    sent_id = r.json()["email_id"]
    # Bob received it with the attachment.
    [thread] = (await client.get("/api/v1/threads", headers=bob.headers)).json()["threads"]
    detail = (await client.get(f"/api/v1/threads/{thread['thread_id']}", headers=bob.headers)).json()
    [email] = detail["emails"]
    [attachment] = email["attachments"]
    assert attachment["filename"] == "plan.pdf"
    got = await client.get(
        f"/api/v1/emails/{email['email_id']}/attachments/{attachment['index']}", headers=bob.headers
    )
    assert got.content == b"%PDF-1.7 the plan"
    # The upload is used by Alice's sent copy and no longer expires.
    info = (await client.get(f"/api/v1/uploads/{up}", headers=alice.headers)).json()
    assert (info["used_by_email"], info["expires_at"]) == (sent_id, None)
    clock.advance(hours=48)
    assert await expire_uploads(mailroom.runtime) == 0


async def test_a_draft_keeps_its_upload(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice@example.org")
    up = await upload(client, alice, "a.txt", b"draft attachment", "text/plain")
    r = await client.post(
        "/api/v1/emails",
        json={"subject": "later", "draft": True, "attachment_ids": [up]},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    info = (await client.get(f"/api/v1/uploads/{up}", headers=alice.headers)).json()
    assert info["used_by_email"] == r.json()["email_id"]


async def test_another_users_upload_cannot_be_attached(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user("alice@example.org")
    bob = await make_user("bob@example.org")
    up = await upload(client, alice, "secret.txt", b"alice's secret", "text/plain")
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["bob@example.org"], "subject": "stolen", "attachment_ids": [up]},
        headers=bob.headers,
    )
    body: dict[str, Any] = r.json()
    assert (r.status_code, body["code"]) == (404, "not_found"), body
    assert (await client.get("/api/v1/threads", headers=bob.headers)).json()["n_threads"] == 0
    info = (await client.get(f"/api/v1/uploads/{up}", headers=alice.headers)).json()
    assert info["used_by_email"] is None
