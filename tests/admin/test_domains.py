"""admin.domains.* over REST: success, validation, not found, conflict, authorisation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio


async def test_create_get_list_update_delete(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.post(
        "/api/v1/domains", json={"name": "Bücher.Example", "max_users": 10}, headers=admin.headers
    )
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "xn--bcher-kva.example"
    assert body["max_users"] == 10
    assert body["signup_enabled"] is False
    assert "dkim_private_key" not in body

    r = await client.get("/api/v1/domains/bücher.example", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["name"] == "xn--bcher-kva.example"

    await client.post("/api/v1/domains", json={"name": "a.example"}, headers=admin.headers)
    r = await client.get("/api/v1/domains", headers=admin.headers)
    assert r.json() == {
        "items": [r.json()["items"][0], r.json()["items"][1]],
        "total": 2,
        "offset": 0,
        "limit": 50,
    }
    assert [d["name"] for d in r.json()["items"]] == ["a.example", "xn--bcher-kva.example"]
    r = await client.get("/api/v1/domains", params={"offset": 1, "limit": 1}, headers=admin.headers)
    assert [d["name"] for d in r.json()["items"]] == ["xn--bcher-kva.example"]
    assert r.json()["total"] == 2

    r = await client.patch(
        "/api/v1/domains/xn--bcher-kva.example",
        json={"comment": "books", "max_users": None},
        headers=admin.headers,
    )
    assert r.status_code == 200
    assert r.json()["comment"] == "books"
    assert r.json()["max_users"] is None

    r = await client.delete("/api/v1/domains/xn--bcher-kva.example", headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    r = await client.get("/api/v1/domains/xn--bcher-kva.example", headers=admin.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "domain.name"),
        ({"name": "no_dots"}, "domain.name"),
        ({"name": "-bad-.org"}, "domain.name"),
        ({"name": "a" * 64 + ".org"}, "domain.name"),
        ({"name": "ok.org", "max_users": -1}, "domain.max_users"),
        ({"name": "ok.org", "surprise": True}, "domain.surprise"),
        ({"name": 42}, "domain.name"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, body: dict[str, Any], loc: str
) -> None:
    r = await client.post("/api/v1/domains", json=body, headers=admin.headers)
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "invalid_params"
    assert problem["status"] == 422
    assert loc in [e["loc"] for e in problem["errors"]]
    listed = await client.get("/api/v1/domains", headers=admin.headers)
    assert listed.json()["total"] == 0  # nothing changed


async def test_malformed_bodies_are_4xx(client: httpx.AsyncClient, admin: Actor) -> None:
    h = admin.headers | {"content-type": "application/json"}
    r = await client.post("/api/v1/domains", content=b"{not json", headers=h)
    assert r.status_code == 400
    assert r.json()["code"] == "bad_request"
    r = await client.post("/api/v1/domains", content=b"[1,2]", headers=h)
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/domains", content=b"name=x", headers=admin.headers | {"content-type": "text/plain"}
    )
    assert r.status_code == 400


async def test_body_size_limit(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.post(
        "/api/v1/domains", json={"name": "x.org", "comment": "x" * 11_000_000}, headers=admin.headers
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


async def test_name_unique_across_kinds(client: httpx.AsyncClient, admin: Actor) -> None:
    assert (
        await client.post("/api/v1/domains", json={"name": "example.org"}, headers=admin.headers)
    ).status_code == 201
    r = await client.post("/api/v1/domains", json={"name": "EXAMPLE.org."}, headers=admin.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"


async def test_lowering_limits_below_usage_is_refused(
    client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    await make_user("bob@example.org")
    await make_user("carol@example.org")
    r = await client.patch("/api/v1/domains/example.org", json={"max_users": 1}, headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded"


async def test_authorisation(client: httpx.AsyncClient, admin: Actor, make_user: Any) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    other_manager = await make_user("mgr@two.example", manages=("two.example",))

    # Anonymous: 401 everywhere.
    for method, url in [
        ("GET", "/api/v1/domains"),
        ("GET", "/api/v1/domains/one.example"),
        ("POST", "/api/v1/domains"),
        ("DELETE", "/api/v1/domains/one.example"),
    ]:
        assert (await client.request(method, url)).status_code == 401

    # A plain user may not list or read domains.
    assert (await client.get("/api/v1/domains", headers=user.headers)).status_code == 403
    assert (await client.get("/api/v1/domains/one.example", headers=user.headers)).status_code == 403

    # A manager sees their domain only; another domain looks like it does not exist.
    r = await client.get("/api/v1/domains", headers=manager.headers)
    assert [d["name"] for d in r.json()["items"]] == ["one.example"]
    assert (await client.get("/api/v1/domains/one.example", headers=manager.headers)).status_code == 200
    hidden = await client.get("/api/v1/domains/one.example", headers=other_manager.headers)
    missing = await client.get("/api/v1/domains/nonexistent.example", headers=other_manager.headers)
    assert hidden.status_code == missing.status_code == 404

    # Only admins create, change or delete domains.
    for actor in (user, manager):
        assert (
            await client.post("/api/v1/domains", json={"name": "x.example"}, headers=actor.headers)
        ).status_code == 403
        assert (
            await client.patch("/api/v1/domains/one.example", json={}, headers=actor.headers)
        ).status_code == 403
        assert (await client.delete("/api/v1/domains/one.example", headers=actor.headers)).status_code == 403
    assert (await client.get("/api/v1/domains/one.example", headers=admin.headers)).status_code == 200


async def test_bad_credentials(client: httpx.AsyncClient) -> None:
    for header in ["Bearer mr_nope", "Bearer ", "Basic !!!", "Digest abc", "Bearer mr_AAAAAAAA_" + "x" * 43]:
        r = await client.get("/api/v1/domains", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["code"] == "unauthenticated"


async def test_an_empty_bearer_says_the_token_is_missing(client: httpx.AsyncClient) -> None:
    """``Bearer `` with nothing after it (servers drop the trailing space) is a missing token,
    not an unsupported scheme; the same for ``Basic``."""
    for header, missing in [
        ("Bearer ", "token"),
        ("Bearer", "token"),
        ("bearer   ", "token"),
        ("Basic ", "credentials"),
    ]:
        r = await client.get("/api/v1/domains", headers={"Authorization": header})
        body = problem(r, 401, "unauthenticated")
        assert f"the {missing} is missing" in body["detail"], (header, body)
        assert "unsupported" not in body["detail"]
    r = await client.get("/api/v1/domains", headers={"Authorization": "Digest abc"})
    assert "unsupported Authorization scheme" in problem(r, 401, "unauthenticated")["detail"]
