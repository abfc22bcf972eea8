"""Isolation matrix: user B reaches none of user A's sessions, contacts, keys or settings,
through REST, a JSON-RPC batch or in-process calls; lists show only the caller's own data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.errors import NotFound
from tests.client.conftest import SessionUser, bearer, problem
from tests.client.keys import public
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


async def seed(client: httpx.AsyncClient, alice: Actor) -> dict[str, Any]:
    """Give Alice one of everything; return the ids."""
    contact = await client.post(
        "/api/v1/contacts",
        json={"name": "Alice's friend", "emails": [{"address": "friend@example.net"}]},
        headers=alice.headers,
    )
    armored, fingerprint = public("alice@example.org", "Alice")
    key = await client.post("/api/v1/me/keys", json={"public_key": armored}, headers=alice.headers)
    settings = await client.patch("/api/v1/me/settings", json={"signature": "Alice's"}, headers=alice.headers)
    assert (contact.status_code, key.status_code, settings.status_code) == (201, 201, 200)
    return {
        "contact": contact.json()["id"],
        "session": alice.principal.session_id,
        "fingerprint": fingerprint,
    }


def attacks(ids: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every call that names one of Alice's objects."""
    return [
        ("mail.contacts.get", {"id": ids["contact"]}),
        ("mail.contacts.update", {"id": ids["contact"], "changes": {"name": "stolen"}}),
        ("mail.contacts.delete", {"id": ids["contact"]}),
        ("mail.sessions.revoke", {"id": ids["session"]}),
        ("mail.keys.delete", {"fingerprint": ids["fingerprint"]}),
    ]


async def assert_alice_untouched(client: httpx.AsyncClient, alice: Actor, ids: dict[str, Any]) -> None:
    contact = (await client.get(f"/api/v1/contacts/{ids['contact']}", headers=alice.headers)).json()
    assert contact["name"] == "Alice's friend"
    assert [
        k["fingerprint"] for k in (await client.get("/api/v1/me/keys", headers=alice.headers)).json()
    ] == [ids["fingerprint"]]
    assert (await client.get("/api/v1/me/settings", headers=alice.headers)).json()["signature"] == "Alice's"


async def assert_bob_sees_only_his(client: httpx.AsyncClient, bob: Actor) -> None:
    assert (await client.get("/api/v1/contacts", headers=bob.headers)).json()["total"] == 0
    assert (await client.get("/api/v1/me/keys", headers=bob.headers)).json() == []
    sessions = (await client.get("/api/v1/me/sessions", headers=bob.headers)).json()
    assert [s["id"] for s in sessions] == [bob.principal.session_id]
    assert (await client.get("/api/v1/me/settings", headers=bob.headers)).json()["signature"] == ""


async def test_rest(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    ids = await seed(client, alice)
    c, s, f = ids["contact"], ids["session"], ids["fingerprint"]
    for r in [
        await client.get(f"/api/v1/contacts/{c}", headers=bob.headers),
        await client.patch(f"/api/v1/contacts/{c}", json={"name": "stolen"}, headers=bob.headers),
        await client.delete(f"/api/v1/contacts/{c}", headers=bob.headers),
        await client.delete(f"/api/v1/me/sessions/{s}", headers=bob.headers),
        await client.delete(f"/api/v1/me/keys/{f}", headers=bob.headers),
    ]:
        problem(r, 404, "not_found")
    await assert_alice_untouched(client, alice, ids)
    await assert_bob_sees_only_his(client, bob)


async def test_jsonrpc_batch(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    ids = await seed(client, alice)
    calls = attacks(ids)
    batch = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    batch += [
        {"jsonrpc": "2.0", "id": 100, "method": "mail.contacts.list", "params": {}},
        {"jsonrpc": "2.0", "id": 101, "method": "mail.sessions.list", "params": {}},
        {"jsonrpc": "2.0", "id": 102, "method": "mail.keys.list", "params": {}},
    ]
    r = await client.post("/rpc/json", json=batch, headers=bob.headers)
    assert r.status_code == 200, r.text
    answers = {a["id"]: a for a in r.json()}
    for i, (method, _) in enumerate(calls):
        assert answers[i]["error"]["data"]["code"] == "not_found", (method, answers[i])
    assert answers[100]["result"]["total"] == 0
    assert [s["id"] for s in answers[101]["result"]] == [bob.principal.session_id]
    assert answers[102]["result"] == []
    await assert_alice_untouched(client, alice, ids)


async def test_in_process(
    client: httpx.AsyncClient, session_user: SessionUser, call: Callable[..., Awaitable[Any]]
) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    ids = await seed(client, alice)
    for method, params in attacks(ids):
        with pytest.raises(NotFound):
            await call(method, params, as_=bob)
    await assert_alice_untouched(client, alice, ids)


async def test_api_keys_of_a_user_act_on_their_own_data_only(
    client: httpx.AsyncClient, session_user: SessionUser, make_user: Callable[..., Awaitable[Actor]]
) -> None:
    alice = await session_user("alice@example.org")
    ids = await seed(client, alice)
    carol = await make_user("carol@example.org")  # an API key acting as Carol, not a session
    problem(await client.get(f"/api/v1/contacts/{ids['contact']}", headers=carol.headers), 404, "not_found")
    assert (await client.get("/api/v1/contacts", headers=carol.headers)).json()["total"] == 0
    assert (await client.get("/api/v1/me/sessions", headers=carol.headers)).json() == []
    # Alice's token does not work for anything once she logs out.
    assert (await client.delete("/api/v1/logout", headers=alice.headers)).status_code == 204
    assert alice.key is not None
    problem(await client.get("/api/v1/contacts", headers=bearer(alice.key)), 401, "unauthenticated")
