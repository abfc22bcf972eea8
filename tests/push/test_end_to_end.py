"""End to end: mail one user sends over the API reaches another's WebSocket and inbox;
the sender hears of delivery status; a revoked session stops getting events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.conftest import Actor
from tests.push.conftest import ws_next, ws_subscribed
from tests.push.test_push import closed_with

pytestmark = pytest.mark.anyio
MakeUser = Callable[..., Awaitable[Actor]]
PASSWORD = "Zq-unique-Pa55phrase-7731"


async def session_token(client: httpx.AsyncClient, make_user: MakeUser, email: str) -> str:
    await make_user(email, password=PASSWORD)
    r = await client.post("/api/v1/login", json={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_mail_sent_over_the_api_reaches_the_recipients_websocket_and_inbox(
    server: str, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await session_token(client, make_user, "alice@example.org")
    bob = await session_token(client, make_user, "bob@example.org")
    to_alice = await ws_subscribed(server, alice)
    to_bob = await ws_subscribed(server, bob)
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["alice@example.org"], "subject": "Dinner", "body": "Eight o'clock?"},
        headers={"Authorization": f"Bearer {bob}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["recipients"] == [{"address": "alice@example.org", "status": "delivered", "reason": None}]
    event = await ws_next(to_alice)
    assert event["type"] == "email.received"
    assert event["data"]["subject"] == "Dinner"
    assert event["data"]["from"]["email"] == "bob@example.org"
    assert event["data"]["thread"]["labels"] == ["inbox"]
    # The same thread is in Alice's inbox list.
    r = await client.get("/api/v1/threads", headers={"Authorization": f"Bearer {alice}"})
    [thread] = r.json()["threads"]
    assert thread == event["data"]["thread"]
    # Bob's own copy (his sent label) is announced to Bob, not to Alice.
    sent = await ws_next(to_bob)
    assert sent["type"] == "email.received"
    assert sent["data"]["thread"]["labels"] == ["sent"]
    with pytest.raises(TimeoutError):
        await ws_next(to_alice, wait=1.0)
    await to_alice.close()
    await to_bob.close()


async def test_a_revoked_session_is_disconnected(
    server: str, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    token = await session_token(client, make_user, "alice@example.org")
    ws = await ws_subscribed(server, token)
    r = await client.delete("/api/v1/logout", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204, r.text
    code, reason = await closed_with(ws)  # at once: signing out cuts the session's streams
    assert code == 4401
    assert "signed out" in reason
