"""admin.queue.* over REST: who may call them, and what list, get, retry and delete do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from tests.conftest import Actor
from tests.mailhelpers import message
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


async def queue_one(mailroom: Mailroom, to: str = "bob@remote.example") -> int:
    result = await submit(
        mailroom.runtime,
        message(sender="alice@example.org", to=to, subject="Queued"),
        mail_from="alice@example.org",
        recipients=[to],
        source="api",
        sender_user_id=None,
    )
    assert result.queue_id is not None
    return result.queue_id


async def test_only_admins_see_the_queue(
    mailroom: Mailroom, client: httpx.AsyncClient, admin: Actor, make_user: Callable[..., Awaitable[Actor]]
) -> None:
    user = await make_user("alice@example.org")
    manager = await make_user("mgr@example.org", manages=("example.org",))
    queue_id = await queue_one(mailroom)
    for method, path in (
        ("GET", "/api/v1/queue"),
        ("GET", f"/api/v1/queue/{queue_id}"),
        ("POST", f"/api/v1/queue/{queue_id}/retry"),
        ("DELETE", f"/api/v1/queue/{queue_id}"),
    ):
        anonymous = await client.request(method, path)
        assert anonymous.status_code == 401, (method, path)
        for actor in (user, manager):
            refused = await client.request(method, path, headers=actor.headers)
            assert refused.status_code == 403, (method, path, actor.name)
    listed = await client.get("/api/v1/queue", headers=admin.headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1
    [item] = body["items"]
    assert item["id"] == queue_id
    assert item["status"] == "queued"
    assert item["subject"] == "Queued"
    assert item["mail_from"] == "alice@example.org"
    assert [(r["address"], r["status"]) for r in item["recipients"]] == [("bob@remote.example", "queued")]


async def test_get_retry_and_delete(
    mailroom: Mailroom,
    client: httpx.AsyncClient,
    admin: Actor,
    sink: Sink,
    queue: OutboundQueue,
    clock: FakeClock,
) -> None:
    sink.data_replies = ["451 4.3.0 busy"]
    queue_id = await queue_one(mailroom)
    await queue.run_once()
    got = await client.get(f"/api/v1/queue/{queue_id}", headers=admin.headers)
    assert got.status_code == 200
    [recipient] = got.json()["recipients"]
    assert recipient["status"] == "deferred"
    assert recipient["last_code"] == 451
    assert recipient["attempts"] == 1
    assert await queue.run_once() == 0  # backing off

    retried = await client.post(f"/api/v1/queue/{queue_id}/retry", headers=admin.headers)
    assert retried.status_code == 200
    assert retried.json()["next_attempt_at"] == got.json()["created_at"]  # due now (the clock stood still)
    assert await queue.run_once() == 1
    assert len(sink.messages) == 1
    done = (await client.get(f"/api/v1/queue/{queue_id}", headers=admin.headers)).json()
    assert done["status"] == "done"
    assert done["recipients"][0]["status"] == "delivered"
    # Nothing left to retry: 409.
    again = await client.post(f"/api/v1/queue/{queue_id}/retry", headers=admin.headers)
    assert again.status_code == 409
    assert (await client.get("/api/v1/queue?status=queued", headers=admin.headers)).json()["total"] == 0

    other = await queue_one(mailroom, "carol@remote.example")
    deleted = await client.delete(f"/api/v1/queue/{other}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/queue/{other}", headers=admin.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/queue/{other}", headers=admin.headers)).status_code == 404
    await queue.run_once()
    assert [m.rcpt_tos for m in sink.messages] == [["bob@remote.example"]]  # the deleted one never went
