"""admin.relays.* over REST: success, smarthost validation, not found, conflict, admins only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailroom.clock import FakeClock
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

URL = "/api/v1/relays"


async def _relays(client: httpx.AsyncClient, admin: Actor) -> list[dict[str, Any]]:
    r = await client.get(URL, headers=admin.headers)
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_create_get_list_update_delete(
    client: httpx.AsyncClient, admin: Actor, clock: FakeClock
) -> None:
    r = await client.post(
        URL,
        json={"name": "Partner.Example", "smarthost": "MX.Partner.Example:2525", "comment": "partner"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {
        "name": "partner.example",
        "smarthost": "mx.partner.example:2525",
        "comment": "partner",
        "created_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-01T12:00:00Z",
    }
    r = await client.get(f"{URL}/partner.example.", headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == created

    r = await client.post(URL, json={"name": "bücher.example"}, headers=admin.headers)
    assert r.status_code == 201
    assert r.json()["name"] == "xn--bcher-kva.example"
    assert r.json()["smarthost"] == ""  # delivered by MX
    r = await client.get(URL, headers=admin.headers)
    assert [x["name"] for x in r.json()["items"]] == ["partner.example", "xn--bcher-kva.example"]
    assert r.json()["total"] == 2
    r = await client.get(URL, params={"offset": 0, "limit": 1}, headers=admin.headers)
    assert r.json() == {"items": [created], "total": 2, "offset": 0, "limit": 1}

    clock.advance(3600)
    r = await client.patch(
        f"{URL}/partner.example", json={"smarthost": "[2001:DB8:0:0::25]:25"}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json() == created | {"smarthost": "[2001:db8::25]:25", "updated_at": "2026-01-01T13:00:00Z"}
    r = await client.patch(
        f"{URL}/partner.example", json={"smarthost": "", "comment": None}, headers=admin.headers
    )
    assert r.json()["smarthost"] == ""
    assert r.json()["comment"] == "partner"

    r = await client.delete(f"{URL}/partner.example", headers=admin.headers)
    assert r.status_code == 204
    assert (await client.get(f"{URL}/partner.example", headers=admin.headers)).status_code == 404
    # Its name is free again, for any kind of domain.
    r = await client.post("/api/v1/domains", json={"name": "partner.example"}, headers=admin.headers)
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("smarthost", "stored"),
    [
        ("relay.example.net", "relay.example.net"),
        ("Relay.Example.NET.:25", "relay.example.net:25"),
        ("localhost:10025", "localhost:10025"),
        ("192.0.2.10", "192.0.2.10"),
        ("192.0.2.10:587", "192.0.2.10:587"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("[2001:0DB8::0001]:65535", "[2001:db8::1]:65535"),
        ("relais.bücher.example", "relais.xn--bcher-kva.example"),
        ("  ", ""),
    ],
)
async def test_smarthost_forms(client: httpx.AsyncClient, admin: Actor, smarthost: str, stored: str) -> None:
    r = await client.post(
        URL, json={"name": "partner.example", "smarthost": smarthost}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["smarthost"] == stored


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "relay.name"),
        ({"name": "no_dots"}, "relay.name"),
        ({"name": "partner.example", "smarthost": "host:"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "host:0"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "host:65536"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "host:smtp"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "host:+25"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "bad_host.example"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "-bad.example"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "two words"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "2001:db8::1"}, "relay.smarthost"),  # IPv6 needs brackets
        ({"name": "partner.example", "smarthost": "[2001:db8::1"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "[relay.example]:25"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "[2001:db8::1]25"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "300.1.2.3"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "mail.123"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": "a" * 64 + ".example"}, "relay.smarthost"),
        ({"name": "partner.example", "smarthost": 25}, "relay.smarthost"),
        ({"name": "partner.example", "comment": "c" * 1001}, "relay.comment"),
        ({"name": "partner.example", "surprise": True}, "relay.surprise"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, body: dict[str, Any], loc: str
) -> None:
    r = await client.post(URL, json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_params"
    assert loc in [e["loc"] for e in r.json()["errors"]]
    assert await _relays(client, admin) == []


async def test_update_validation(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.post(
        URL, json={"name": "partner.example", "smarthost": "relay.example:25"}, headers=admin.headers
    )
    before = r.json()
    for changes, loc in [
        ({"smarthost": "x:99999"}, "changes.smarthost"),
        ({"name": "other.example"}, "changes.name"),
    ]:
        r = await client.patch(f"{URL}/partner.example", json=changes, headers=admin.headers)
        assert r.status_code == 422
        assert loc in [e["loc"] for e in r.json()["errors"]]
    assert await _relays(client, admin) == [before]


async def test_not_found(client: httpx.AsyncClient, admin: Actor) -> None:
    for method, body in [("GET", None), ("PATCH", {"comment": "x"}), ("DELETE", None)]:
        r = await client.request(method, f"{URL}/ghost.example", json=body, headers=admin.headers)
        assert r.status_code == 404, method
        assert r.json()["detail"] == "relay ghost.example not found"


async def test_name_unique_across_domains_alternatives_and_relays(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    await make_domain("example.org")
    await client.post(
        "/api/v1/domains/example.org/alternatives", json={"name": "example.net"}, headers=admin.headers
    )
    assert (
        await client.post(URL, json={"name": "partner.example"}, headers=admin.headers)
    ).status_code == 201
    for name, kind in [
        ("EXAMPLE.org", "a domain"),
        ("example.net", "an alternative domain"),
        ("partner.example", "a relayed domain"),
    ]:
        r = await client.post(URL, json={"name": name, "smarthost": "x.example"}, headers=admin.headers)
        assert r.status_code == 409, name
        assert r.json()["code"] == "conflict"
        assert r.json()["detail"] == f"{name.lower()} is already {kind}"
    # A relay's name is taken for domains too.
    r = await client.post("/api/v1/domains", json={"name": "partner.example"}, headers=admin.headers)
    assert r.status_code == 409
    r = await client.post(
        "/api/v1/domains/example.org/alternatives", json={"name": "partner.example"}, headers=admin.headers
    )
    assert r.status_code == 409
    assert [(x["name"], x["smarthost"]) for x in await _relays(client, admin)] == [("partner.example", "")]


async def test_admins_only(client: httpx.AsyncClient, admin: Actor, make_user: Any) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    assert (
        await client.post(URL, json={"name": "partner.example"}, headers=admin.headers)
    ).status_code == 201
    requests = [
        ("GET", URL, None),
        ("POST", URL, {"name": "other.example"}),
        ("GET", f"{URL}/partner.example", None),
        ("PATCH", f"{URL}/partner.example", {"comment": "x"}),
        ("DELETE", f"{URL}/partner.example", None),
    ]
    for method, url, body in requests:
        assert (await client.request(method, url, json=body)).status_code == 401, (method, url)
        for actor in (user, manager):
            r = await client.request(method, url, json=body, headers=actor.headers)
            assert r.status_code == 403, (actor.name, method, url)
            assert r.json()["code"] == "forbidden"
    assert [(x["name"], x["comment"]) for x in await _relays(client, admin)] == [("partner.example", "")]
    r = await client.patch(f"{URL}/partner.example", json={"comment": "x"}, headers=admin.headers)
    assert r.status_code == 200


async def test_smarthost_errors_say_what_to_write(client: httpx.AsyncClient, admin: Actor) -> None:
    for smarthost, hint in [
        ("2001:db8::1", "in brackets, such as [2001:db8::1]:25"),
        ("[relay.example]:25", "write host names and IPv4 addresses without brackets"),
        ("relay.example:99999", "not a number from 1 to 65535"),
    ]:
        r = await client.post(
            URL, json={"name": "partner.example", "smarthost": smarthost}, headers=admin.headers
        )
        assert r.status_code == 422
        (error,) = r.json()["errors"]
        assert error["loc"] == "relay.smarthost"
        assert hint in error["message"], error
