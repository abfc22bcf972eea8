"""GET /api/v1/events over real sockets: WebSocket and SSE, authentication, replay, isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from mailroom.bootstrap import Mailroom
from tests.conftest import Actor
from tests.mailhelpers import message
from tests.push.conftest import SSE, Deliver, ws_next, ws_open, ws_subscribed

pytestmark = pytest.mark.anyio
MakeUser = Callable[..., Awaitable[Actor]]


@pytest.fixture
async def alice(make_user: MakeUser) -> Actor:
    return await make_user("alice@example.org")


@pytest.fixture
async def bob(make_user: MakeUser) -> Actor:
    return await make_user("bob@example.org")


async def closed_with(ws: Any) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


async def test_websocket_gets_new_mail_with_its_thread_summary(
    server: str, alice: Actor, deliver: Deliver
) -> None:
    ws = await ws_subscribed(server, alice.key or "")
    email_id = await deliver(
        message(subject="Lunch?", body="Shall we meet at noon?\r\n"), "alice@example.org"
    )
    event = await ws_next(ws)
    assert event["type"] == "email.received"
    assert event["id"]
    data = event["data"]
    assert data["email_id"] == email_id
    assert data["subject"] == "Lunch?"
    assert data["snippet"].startswith("Shall we meet at noon?")
    assert data["from"] == {"name": "Bob", "email": "bob@example.net"}
    thread = data["thread"]
    assert thread["thread_id"] == data["thread_id"]
    assert (thread["subject"], thread["participants"], thread["n_unread"]) == ("Lunch?", "Bob", 1)
    assert thread["labels"] == ["inbox"]
    await ws.close()


async def test_websocket_token_in_the_first_message(server: str, alice: Actor, deliver: Deliver) -> None:
    ws = await ws_open(server)
    await ws.send(orjson.dumps({"token": alice.key}).decode())
    assert await ws_next(ws) == {"type": "subscribed"}
    await deliver(message(), "alice@example.org")
    assert (await ws_next(ws))["type"] == "email.received"
    # The client may ping; the server answers.
    await ws.send('{"type":"ping"}')
    assert await ws_next(ws) == {"type": "pong"}
    await ws.close()


@pytest.mark.parametrize(
    ("token", "first"),
    [
        ("mr_nope_nope", None),  # a bad token in the query
        (None, '{"token": "ms_not-a-session"}'),  # a bad token in the first message
        (None, "hello"),  # not JSON
        (None, '{"tocken": 1}'),  # no token
    ],
)
async def test_websocket_refuses_bad_credentials_with_4401(
    server: str, alice: Actor, token: str | None, first: str | None
) -> None:
    ws = await ws_open(server, token)
    if first is not None:
        await ws.send(first)
    code, _ = await closed_with(ws)
    assert code == 4401


async def test_websocket_refuses_a_key_that_is_no_mailbox_with_4403(server: str, admin: Actor) -> None:
    ws = await ws_open(server, admin.key)
    code, reason = await closed_with(ws)
    assert code == 4403
    assert "mailbox" in reason


async def test_websocket_sends_pings_when_idle(server: str, alice: Actor) -> None:
    ws = await ws_subscribed(server, alice.key or "")
    assert await ws_next(ws, skip_pings=False) == {"type": "ping"}  # heartbeat 0.5 s in tests
    await ws.close()


async def test_events_go_only_to_their_own_user(
    server: str, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    to_alice = await ws_subscribed(server, alice.key or "")
    to_bob = await ws_subscribed(server, bob.key or "")
    await deliver(message(subject="for alice", message_id="<a@x>"), "alice@example.org")
    await deliver(message(subject="for bob", to="bob@example.org", message_id="<b@x>"), "bob@example.org")
    assert (await ws_next(to_alice))["data"]["subject"] == "for alice"
    assert (await ws_next(to_bob))["data"]["subject"] == "for bob"
    with pytest.raises(TimeoutError):
        await ws_next(to_bob, wait=1.0)  # pings only: never Alice's event
    with pytest.raises(TimeoutError):
        await ws_next(to_alice, wait=1.0)
    await to_alice.close()
    await to_bob.close()


async def test_websocket_replays_missed_events_after_reconnecting(
    server: str, alice: Actor, deliver: Deliver
) -> None:
    ws = await ws_subscribed(server, alice.key or "")
    await deliver(message(subject="one", message_id="<1@x>"), "alice@example.org")
    seen = await ws_next(ws)
    await ws.close()
    # Away: two more arrive.
    await deliver(message(subject="two", message_id="<2@x>"), "alice@example.org")
    await deliver(message(subject="three", message_id="<3@x>"), "alice@example.org")
    again = await ws_subscribed(server, alice.key or "", query=f"last_event_id={seen['id']}")
    assert [(await ws_next(again))["data"]["subject"] for _ in range(2)] == ["two", "three"]
    await again.close()
    # The same through the first message.
    third = await ws_open(server)
    await third.send(orjson.dumps({"token": alice.key, "last_event_id": seen["id"]}).decode())
    assert await ws_next(third) == {"type": "subscribed"}
    assert [(await ws_next(third))["data"]["subject"] for _ in range(2)] == ["two", "three"]
    await third.close()


async def test_sse_stream_with_bearer_and_replay(
    server: str, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    headers = {"Accept": "text/event-stream", **alice.headers}
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as client,
        client.stream("GET", "/api/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        sse = SSE(response)
        await deliver(message(subject="to bob", to="bob@example.org", message_id="<b@x>"), "bob@example.org")
        await deliver(message(subject="hello", message_id="<1@x>"), "alice@example.org")
        first = await sse.next()
        assert first["event"] == "email.received"
        payload = orjson.loads(first["data"])
        assert payload["id"] == first["id"]
        assert payload["data"]["subject"] == "hello"  # never Bob's
        with pytest.raises(TimeoutError):
            await sse.next(wait=1.2)  # no event, but comment lines while idle
        assert "heartbeat" in sse.comments
    await deliver(message(subject="missed", message_id="<2@x>"), "alice@example.org")
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as client,
        client.stream("GET", "/api/v1/events", headers={**headers, "Last-Event-ID": first["id"]}) as response,
    ):
        replayed = await SSE(response).next()
        assert orjson.loads(replayed["data"])["data"]["subject"] == "missed"


async def test_sse_token_query_parameter(server: str, alice: Actor, deliver: Deliver) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as client,
        client.stream(
            "GET", "/api/v1/events", params={"token": alice.key}, headers={"Accept": "text/event-stream"}
        ) as response,
    ):
        assert response.status_code == 200
        sse = SSE(response)
        await deliver(message(), "alice@example.org")
        assert (await sse.next())["event"] == "email.received"


async def test_sse_refusals(client: httpx.AsyncClient, alice: Actor, admin: Actor) -> None:
    sse = {"Accept": "text/event-stream"}
    r = await client.get("/api/v1/events", headers=sse)
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await client.get("/api/v1/events", headers={**sse, "Authorization": "Bearer mr_x_y"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await client.get("/api/v1/events", headers={**sse, **admin.headers})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.get("/api/v1/events", headers=alice.headers)  # neither SSE nor WebSocket
    assert (r.status_code, r.json()["code"]) == (400, "bad_request")
    assert "text/event-stream" in r.json()["detail"]


async def test_a_scoped_key_needs_the_push_scope(
    server: str, mailroom: Mailroom, alice: Actor, client: httpx.AsyncClient
) -> None:
    created = await mailroom.registry.call(
        "admin.apikeys.create",
        {"key": {"name": "threads-only", "owner": "alice@example.org", "scopes": ["mail.threads.*"]}},
    )
    ws = await ws_open(server, created["key"])
    code, reason = await closed_with(ws)
    assert code == 4403
    assert "mail.events.subscribe" in reason
    allowed = await mailroom.registry.call(
        "admin.apikeys.create",
        {"key": {"name": "push", "owner": "alice@example.org", "scopes": ["mail.events.*"]}},
    )
    ok = await ws_subscribed(server, allowed["key"])
    await ok.close()


async def test_batch_actions_push_thread_updates_and_label_counts(
    server: str, alice: Actor, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    ws = await ws_subscribed(server, alice.key or "")
    await deliver(message(subject="read me"), "alice@example.org")
    # The delivery's own event first (published after its commit, so it may trail the
    # delivery call): only then is the batch's event the next one.
    received = await ws_next(ws)
    assert received["type"] == "email.received"
    threads = (await client.get("/api/v1/threads", headers=alice.headers)).json()["threads"]
    thread_id = threads[0]["thread_id"]
    r = await client.post(
        "/api/v1/threads/batch", json={"ids": [thread_id], "action": "read"}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    updated = await ws_next(ws)
    assert updated["type"] == "thread.updated"
    assert updated["data"]["action"] == "read"
    assert updated["data"]["thread_ids"] == [thread_id]
    [summary] = updated["data"]["threads"]
    assert (summary["thread_id"], summary["is_read"], summary["n_unread"]) == (thread_id, True, 0)
    counts = await ws_next(ws)
    assert counts["type"] == "label.counts"
    inbox = next(label for label in counts["data"]["labels"] if label["name"] == "inbox")
    assert (inbox["threads_total"], inbox["threads_unread"], inbox["emails_unread"]) == (1, 0, 0)
    # A label change publishes the counts too.
    r = await client.post("/api/v1/labels", json={"name": "Receipts"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    counts = await ws_next(ws)
    assert counts["type"] == "label.counts"
    assert "Receipts" in [label["name"] for label in counts["data"]["labels"]]
    await ws.close()


async def test_connections_per_mailbox_are_capped(
    server: str,
    alice: Actor,
    bob: Actor,
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.frontends import push

    monkeypatch.setattr(push, "MAX_CONNECTIONS_PER_USER", 2)
    open_ = [await ws_subscribed(server, alice.key or "") for _ in range(2)]
    third = await ws_open(server, alice.key)
    code, reason = await closed_with(third)
    assert code == 4429
    assert "2 push connections" in reason
    r = await client.get("/api/v1/events", headers={"Accept": "text/event-stream", **alice.headers})
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    other = await ws_subscribed(server, bob.key or "")  # another mailbox is not concerned
    await other.close()
    await open_[0].close()
    user_id = alice.principal.user_id or 0
    for _ in range(100):  # until the server has noticed the close
        if mailroom.runtime.events.subscribers(user_id) < 2:
            break
        await asyncio.sleep(0.05)
    again = await ws_subscribed(server, alice.key or "")
    await again.close()
    await open_[1].close()


async def test_postponed_threads_coming_back_are_pushed(
    alice: Actor, deliver: Deliver, client: httpx.AsyncClient, mailroom: Mailroom, clock: Any
) -> None:
    await deliver(message(subject="later"), "alice@example.org")
    [thread] = (await client.get("/api/v1/threads", headers=alice.headers)).json()["threads"]
    until = (clock.now() + timedelta(hours=1)).isoformat()
    r = await client.post(
        "/api/v1/threads/batch",
        json={"ids": [thread["thread_id"]], "action": "postpone", "until": until},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    sub = await mailroom.runtime.events.subscribe(alice.principal.user_id or 0)
    clock.advance(hours=2)
    await client.get("/api/v1/threads", headers=alice.headers)  # reading wakes it
    updated = await asyncio.wait_for(anext(sub), 5)
    assert (updated.type, updated.data["action"]) == ("thread.updated", "unpostpone")
    [summary] = updated.data["threads"]
    assert summary["is_postponed"] is False
    assert "inbox" in summary["labels"]
    assert (await asyncio.wait_for(anext(sub), 5)).type == "label.counts"
    await sub.aclose()
