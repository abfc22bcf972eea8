"""admin.identities.* and mail.identities.list over REST: who may grant which address, conflicts,
not found, the audit log, and a user's own read-only list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


def url(user: str, address: str | None = None) -> str:
    base = f"/api/v1/users/{user}/identities"
    return base if address is None else f"{base}/{address}"


async def identities(client: httpx.AsyncClient, actor: Actor, user: str) -> list[str]:
    r = await client.get(url(user), headers=actor.headers)
    assert r.status_code == 200, r.text
    return [i["address"] for i in r.json()["items"]]


async def test_create_get_list_delete(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("alice@one.example")
    r = await client.post(
        url("alice@one.example"),
        json={"address": "Support@ONE.example", "display_name": "Support"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "user": "alice@one.example",
        "address": "support@one.example",
        "display_name": "Support",
        "created_at": "2026-01-01T12:00:00Z",
    }
    r = await client.post(
        url("alice@one.example"), json={"address": "me@gmail.example"}, headers=admin.headers
    )
    assert r.status_code == 201
    assert await identities(client, admin, "alice@one.example") == ["me@gmail.example", "support@one.example"]
    r = await client.get(url("alice@one.example", "support@one.example"), headers=admin.headers)
    assert r.json()["display_name"] == "Support"

    again = await client.post(
        url("alice@one.example"), json={"address": "support@one.example"}, headers=admin.headers
    )
    problem(again, 409, "conflict")
    problem(
        await client.post(url("ghost@one.example"), json={"address": "a@one.example"}, headers=admin.headers),
        404,
        "not_found",
    )
    bad = await client.post(
        url("alice@one.example"), json={"address": "not an address"}, headers=admin.headers
    )
    problem(bad, 422, "invalid_params")

    r = await client.delete(url("alice@one.example", "support@one.example"), headers=admin.headers)
    assert r.status_code == 204
    assert await identities(client, admin, "alice@one.example") == ["me@gmail.example"]
    gone = await client.delete(url("alice@one.example", "support@one.example"), headers=admin.headers)
    problem(gone, 404, "not_found")
    problem(
        await client.get(url("alice@one.example", "support@one.example"), headers=admin.headers),
        404,
        "not_found",
    )


async def test_managers_grant_only_within_their_domains(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    manager = await make_user("mgr@one.example", manages=("one.example",))
    await make_user("alice@one.example")
    await make_user("carol@two.example")
    await mailroom.registry.call(
        "admin.alternatives.create", {"domain": "one.example", "alternative": {"name": "alt.example"}}
    )
    await mailroom.registry.call("admin.relays.create", {"relay": {"name": "relayed.example"}})

    def grant(user: str, address: str) -> Awaitable[httpx.Response]:
        return client.post(url(user), json={"address": address}, headers=manager.headers)

    assert (await grant("alice@one.example", "shared@one.example")).status_code == 201
    assert (await grant("alice@one.example", "shared@alt.example")).status_code == 201
    # An address of another tenant, relayed elsewhere, or outside every domain of ours.
    for address in ("carol@two.example", "x@relayed.example", "alice@gmail.example"):
        body = problem(await grant("alice@one.example", address), 403, "forbidden")
        assert body["data"]["address"] == address
    # A user of a domain they do not manage: as if the user did not exist.
    problem(await grant("carol@two.example", "shared@one.example"), 404, "not_found")
    problem(await client.get(url("carol@two.example"), headers=manager.headers), 404, "not_found")

    # Taking away follows the same rule: the admin's grant of an outside address stays.
    r = await client.post(
        url("alice@one.example"), json={"address": "alice@gmail.example"}, headers=admin.headers
    )
    assert r.status_code == 201
    r = await client.delete(url("alice@one.example", "alice@gmail.example"), headers=manager.headers)
    problem(r, 403, "forbidden")
    r = await client.delete(url("alice@one.example", "shared@one.example"), headers=manager.headers)
    assert r.status_code == 204
    assert await identities(client, manager, "alice@one.example") == [
        "alice@gmail.example",
        "shared@alt.example",
    ]


async def test_changes_are_audited(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    manager = await make_user("mgr@one.example", manages=("one.example",))
    await make_user("alice@one.example")
    await client.post(
        url("alice@one.example"), json={"address": "shared@one.example"}, headers=manager.headers
    )
    await client.delete(url("alice@one.example", "shared@one.example"), headers=manager.headers)
    r = await client.get("/api/v1/audit", params={"method": "admin.identities.*"}, headers=manager.headers)
    assert r.status_code == 200
    entries = {e["method"]: e for e in r.json()["items"]}
    assert set(entries) == {"admin.identities.create", "admin.identities.delete"}
    created = entries["admin.identities.create"]
    assert created["principal"].endswith("(mgr@one.example)")
    assert created["target"] == "alice@one.example/shared@one.example"
    assert created["domain"] == "one.example"
    assert created["changes"]["address"] == {"before": None, "after": "shared@one.example"}
    assert entries["admin.identities.delete"]["changes"]["address"] == {
        "before": "shared@one.example",
        "after": None,
    }


async def test_a_user_reads_only_their_own(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    alice = await make_user("alice@one.example")
    bob = await make_user("bob@one.example")
    await mailroom.registry.call(
        "admin.identities.create",
        {
            "email": "alice@one.example",
            "identity": {"address": "shared@one.example", "display_name": "Shared"},
        },
    )
    r = await client.get("/api/v1/me/identities", headers=alice.headers)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    assert (body["total"], [i["address"] for i in body["items"]]) == (1, ["shared@one.example"])
    r = await client.get("/api/v1/me/identities", headers=bob.headers)
    assert r.json()["total"] == 0
    # The admin API is not theirs: they neither list nor grant.
    problem(await client.get(url("alice@one.example"), headers=alice.headers), 403, "forbidden")
    r = await client.post(url("alice@one.example"), json={"address": "x@one.example"}, headers=alice.headers)
    problem(r, 403, "forbidden")
    # Deleting the user takes their identities with them.
    assert (await client.delete("/api/v1/users/alice@one.example", headers=admin.headers)).status_code == 204
    await make_user("alice@one.example")
    r = await client.get(url("alice@one.example"), headers=admin.headers)
    assert r.json()["total"] == 0
