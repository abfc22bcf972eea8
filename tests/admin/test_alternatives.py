"""admin.alternatives.* over REST: success, validation, not found, conflict, authorisation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.anyio


def url(domain: str = "example.org", name: str | None = None) -> str:
    base = f"/api/v1/domains/{domain}/alternatives"
    return base if name is None else f"{base}/{name}"


async def _names(client: httpx.AsyncClient, admin: Actor, domain: str = "example.org") -> list[str]:
    r = await client.get(url(domain), headers=admin.headers)
    assert r.status_code == 200
    return [a["name"] for a in r.json()["items"]]


async def test_create_list_delete(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    r = await client.post(url(), json={"name": "Example.NET", "comment": "old name"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {
        "name": "example.net",
        "domain": "example.org",
        "comment": "old name",
        "created_at": "2026-01-01T12:00:00Z",
    }
    r = await client.post(url("EXAMPLE.org"), json={"name": "bücher.example"}, headers=admin.headers)
    assert r.status_code == 201
    assert r.json()["name"] == "xn--bcher-kva.example"

    r = await client.get(url(), headers=admin.headers)
    assert r.json() == {"items": [created, r.json()["items"][1]], "total": 2, "offset": 0, "limit": 50}
    assert [a["name"] for a in r.json()["items"]] == ["example.net", "xn--bcher-kva.example"]
    r = await client.get(url(), params={"offset": 1, "limit": 1}, headers=admin.headers)
    assert [a["name"] for a in r.json()["items"]] == ["xn--bcher-kva.example"]
    assert r.json()["total"] == 2

    r = await client.delete(url(name="example.net"), headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert await _names(client, admin) == ["xn--bcher-kva.example"]
    # Deleting released the name: it can become a domain now.
    r = await client.post("/api/v1/domains", json={"name": "example.net"}, headers=admin.headers)
    assert r.status_code == 201


async def test_alternatives_belong_to_their_domain(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    await make_domain("example.org")
    await make_domain("other.example")
    await client.post(url(), json={"name": "example.net"}, headers=admin.headers)
    assert await _names(client, admin, "other.example") == []
    # Deleting through another domain finds nothing there.
    r = await client.delete(url("other.example", "example.net"), headers=admin.headers)
    assert r.status_code == 404
    assert await _names(client, admin) == ["example.net"]
    # Deleting the domain releases its alternatives' names.
    assert (await client.delete("/api/v1/domains/example.org", headers=admin.headers)).status_code == 204
    r = await client.post(url("other.example"), json={"name": "example.net"}, headers=admin.headers)
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "alternative.name"),
        ({"name": "no_dots"}, "alternative.name"),
        ({"name": "bad..example"}, "alternative.name"),
        ({"name": "ok.example", "comment": "c" * 1001}, "alternative.comment"),
        ({"name": "ok.example", "domain": "other.example"}, "alternative.domain"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, body: dict[str, Any], loc: str
) -> None:
    await make_domain("example.org")
    r = await client.post(url(), json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]
    assert await _names(client, admin) == []


async def test_not_found(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    r = await client.delete(url(name="ghost.example"), headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "alternative domain ghost.example not found"
    for method, body in [("GET", None), ("POST", {"name": "x.example"}), ("DELETE", None)]:
        target = url("nowhere.example", "x.example" if method == "DELETE" else None)
        r = await client.request(method, target, json=body, headers=admin.headers)
        assert r.status_code == 404, method
        assert r.json()["detail"] == "domain nowhere.example not found"
    # An alternative's name does not stand for its domain.
    await client.post(url(), json={"name": "example.net"}, headers=admin.headers)
    assert (await client.get(url("example.net"), headers=admin.headers)).status_code == 404


async def test_name_unique_across_kinds(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    await make_domain("other.example")
    await client.post("/api/v1/relays", json={"name": "relayed.example"}, headers=admin.headers)
    assert (await client.post(url(), json={"name": "example.net"}, headers=admin.headers)).status_code == 201
    for domain, name, kind in [
        ("example.org", "example.org", "a domain"),
        ("example.org", "OTHER.example", "a domain"),
        ("other.example", "example.net", "an alternative domain"),
        ("example.org", "example.net", "an alternative domain"),
        ("example.org", "relayed.example", "a relayed domain"),
    ]:
        r = await client.post(url(domain), json={"name": name}, headers=admin.headers)
        assert r.status_code == 409, (domain, name)
        assert r.json()["detail"] == f"{name.lower()} is already {kind}"
    assert (
        await client.post("/api/v1/domains", json={"name": "example.net"}, headers=admin.headers)
    ).status_code == 409
    assert await _names(client, admin) == ["example.net"]
    assert await _names(client, admin, "other.example") == []


async def test_authorisation(client: httpx.AsyncClient, admin: Actor, make_user: Any) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    other = await make_user("mgr@two.example", manages=("two.example",))

    for method, body in [("GET", None), ("POST", {"name": "x.example"})]:
        assert (await client.request(method, url("one.example"), json=body)).status_code == 401
        r = await client.request(method, url("one.example"), json=body, headers=user.headers)
        assert r.status_code == 403
    assert (await client.delete(url("one.example", "x.example"))).status_code == 401
    assert (await client.delete(url("one.example", "x.example"), headers=user.headers)).status_code == 403

    r = await client.post(url("one.example"), json={"name": "one.example.net"}, headers=manager.headers)
    assert r.status_code == 201
    assert r.json()["domain"] == "one.example"
    r = await client.get(url("one.example"), headers=manager.headers)
    assert [a["name"] for a in r.json()["items"]] == ["one.example.net"]

    # Someone else's domain is indistinguishable from a missing one.
    for method, body, tail in [
        ("GET", None, None),
        ("POST", {"name": "y.example"}, None),
        ("DELETE", None, "one.example.net"),
    ]:
        hidden = await client.request(method, url("one.example", tail), json=body, headers=other.headers)
        missing = await client.request(method, url("ghost.example", tail), json=body, headers=admin.headers)
        assert hidden.status_code == missing.status_code == 404, method
        assert hidden.json()["detail"].replace("one.example", "X") == missing.json()["detail"].replace(
            "ghost.example", "X"
        )
        assert hidden.json()["data"] == missing.json()["data"]
    assert await _names(client, admin, "one.example") == ["one.example.net"]

    assert (
        await client.delete(url("one.example", "one.example.net"), headers=manager.headers)
    ).status_code == 204
    r = await client.post(url("two.example"), json={"name": "two.example.net"}, headers=admin.headers)
    assert r.status_code == 201
