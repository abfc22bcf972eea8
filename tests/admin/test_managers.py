"""admin.managers.* over REST: success, validation, not found, conflict, authorisation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.clock import FakeClock
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]
MakeDomain = Callable[..., Awaitable[dict[str, Any]]]

URL = "/api/v1/domains/one.example/managers"


async def managers_of(client: httpx.AsyncClient, admin: Actor, domain: str = "one.example") -> list[str]:
    r = await client.get(f"/api/v1/domains/{domain}/managers", headers=admin.headers)
    assert r.status_code == 200
    return [m["email"] for m in r.json()["items"]]


async def test_create_list_delete(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, clock: FakeClock
) -> None:
    await make_user("zoe@one.example")
    await make_user("adam@two.example")  # a user of any domain may manage this one
    r = await client.post(URL, json={"email": "Zoe@ONE.example"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json() == {"email": "zoe@one.example", "created_at": "2026-01-01T12:00:00Z"}
    clock.advance(5)
    r = await client.post(URL, json={"email": "adam@two.example"}, headers=admin.headers)
    assert r.json() == {"email": "adam@two.example", "created_at": "2026-01-01T12:00:05Z"}

    r = await client.get(URL, headers=admin.headers)
    assert r.json() == {
        "items": [
            {"email": "adam@two.example", "created_at": "2026-01-01T12:00:05Z"},
            {"email": "zoe@one.example", "created_at": "2026-01-01T12:00:00Z"},
        ],
        "total": 2,
        "offset": 0,
        "limit": 50,
    }
    r = await client.get(URL, params={"offset": 1, "limit": 1}, headers=admin.headers)
    assert [m["email"] for m in r.json()["items"]] == ["zoe@one.example"]
    assert r.json()["total"] == 2
    assert await managers_of(client, admin, "two.example") == []

    r = await client.delete(f"{URL}/ADAM@two.example", headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert await managers_of(client, admin) == ["zoe@one.example"]
    # The user stays.
    assert (await client.get("/api/v1/users/adam@two.example", headers=admin.headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "manager.email"),
        ({"email": "not-an-address"}, "manager.email"),
        ({"email": 7}, "manager.email"),
        ({"email": "zoe@one.example", "role": "owner"}, "manager.role"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, body: dict[str, Any], loc: str
) -> None:
    await make_user("zoe@one.example")
    r = await client.post(URL, json=body, headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_params"
    assert loc in [e["loc"] for e in r.json()["errors"]]
    assert await managers_of(client, admin) == []  # nothing changed


async def test_path_validation(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("zoe@one.example", manages=("one.example",))
    r = await client.get("/api/v1/domains/no_dots/managers", headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "domain"
    r = await client.delete(f"{URL}/not-an-address", headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "email"
    assert await managers_of(client, admin) == ["zoe@one.example"]


async def test_not_found(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("zoe@one.example")
    r = await client.get("/api/v1/domains/none.example/managers", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "domain none.example not found"
    r = await client.post(
        "/api/v1/domains/none.example/managers", json={"email": "zoe@one.example"}, headers=admin.headers
    )
    assert r.status_code == 404
    assert r.json()["detail"] == "domain none.example not found"
    r = await client.post(URL, json={"email": "nobody@one.example"}, headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "user nobody@one.example not found"
    # Not a manager, and no such user: the same answer.
    r = await client.delete(f"{URL}/zoe@one.example", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "manager zoe@one.example not found"
    r = await client.delete(f"{URL}/nobody@one.example", headers=admin.headers)
    assert r.json()["detail"] == "manager nobody@one.example not found"
    r = await client.delete("/api/v1/domains/none.example/managers/zoe@one.example", headers=admin.headers)
    assert r.json()["detail"] == "domain none.example not found"
    assert await managers_of(client, admin) == []


async def test_conflict(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("zoe@one.example", manages=("one.example",))
    r = await client.post(URL, json={"email": "zoe@one.example"}, headers=admin.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    assert r.json()["detail"] == "zoe@one.example already manages one.example"
    assert await managers_of(client, admin) == ["zoe@one.example"]


async def test_powers_change_at_the_next_request(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    zoe = await make_user("zoe@two.example")
    await make_user("alice@one.example")
    assert (await client.get("/api/v1/users/alice@one.example", headers=zoe.headers)).status_code == 404
    assert (await client.get("/api/v1/domains/one.example", headers=zoe.headers)).status_code == 403

    assert (
        await client.post(URL, json={"email": "zoe@two.example"}, headers=admin.headers)
    ).status_code == 201
    # Same key, next request: the new powers are there.
    assert (await client.get("/api/v1/domains/one.example", headers=zoe.headers)).status_code == 200
    assert (await client.get("/api/v1/users/alice@one.example", headers=zoe.headers)).status_code == 200
    r = await client.get("/api/v1/users", params={"domain": "one.example"}, headers=zoe.headers)
    assert [u["email"] for u in r.json()["items"]] == ["alice@one.example"]

    assert (await client.delete(f"{URL}/zoe@two.example", headers=admin.headers)).status_code == 204
    assert (await client.get("/api/v1/domains/one.example", headers=zoe.headers)).status_code == 403
    assert (await client.get("/api/v1/users/alice@one.example", headers=zoe.headers)).status_code == 404


async def test_authorisation(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    other_manager = await make_user("mgr@two.example", manages=("two.example",))

    calls: list[tuple[str, str, Any]] = [
        ("GET", URL, None),
        ("POST", URL, {"email": "alice@one.example"}),
        ("DELETE", f"{URL}/mgr@one.example", None),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, json=body)
        assert r.status_code == 401, (method, url)
        assert r.json()["code"] == "unauthenticated"

    # A plain user: nothing.
    for method, url, body in calls:
        assert (await client.request(method, url, json=body, headers=user.headers)).status_code == 403, method

    # The domain's manager reads the list, but only admins appoint or remove managers.
    r = await client.get(URL, headers=manager.headers)
    assert r.status_code == 200
    assert [m["email"] for m in r.json()["items"]] == ["mgr@one.example"]
    for method, url, body in calls[1:]:
        assert (await client.request(method, url, json=body, headers=manager.headers)).status_code == 403, (
            method
        )

    # Another domain's manager: the domain looks missing.
    hidden = await client.get(URL, headers=other_manager.headers)
    missing = await client.get("/api/v1/domains/none.example/managers", headers=other_manager.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == "domain one.example not found"
    assert missing.json()["detail"] == "domain none.example not found"
    for method, url, body in calls[1:]:
        r = await client.request(method, url, json=body, headers=other_manager.headers)
        assert r.status_code == 403, method

    assert await managers_of(client, admin) == ["mgr@one.example"]
    # Admins do everything.
    assert (
        await client.post(URL, json={"email": "alice@one.example"}, headers=admin.headers)
    ).status_code == 201
    assert (await client.delete(f"{URL}/mgr@one.example", headers=admin.headers)).status_code == 204
    assert await managers_of(client, admin) == ["alice@one.example"]
