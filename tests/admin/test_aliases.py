"""admin.aliases.* over REST: success, validation, not found, conflict, limits, authorisation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from mailroom.accounting.audit import diff
from mailroom.clock import FakeClock
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

URL = "/api/v1/aliases"


async def _aliases(client: httpx.AsyncClient, admin: Actor) -> list[dict[str, Any]]:
    r = await client.get(URL, headers=admin.headers)
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_create_get_list_update_delete(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, clock: FakeClock
) -> None:
    await make_domain("example.org")
    body = {
        "address": " Sales@Example.ORG ",
        "destinations": ["Bob@Example.net", "alice@example.org", "bob@example.net", "alice@EXAMPLE.org"],
        "comment": "front desk",
    }
    r = await client.post(URL, json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {
        "address": "sales@example.org",
        "destinations": ["bob@example.net", "alice@example.org"],  # normalised, deduplicated, in order
        "wildcard": False,
        "comment": "front desk",
        "created_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-01T12:00:00Z",
    }

    r = await client.get(f"{URL}/SALES@example.org", headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == created

    await client.post(
        URL, json={"address": "info@example.org", "destinations": ["a@b.example"]}, headers=admin.headers
    )
    r = await client.get(URL, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["total"] == 2
    assert [a["address"] for a in r.json()["items"]] == ["info@example.org", "sales@example.org"]
    r = await client.get(URL, params={"offset": 1, "limit": 1}, headers=admin.headers)
    assert r.json() == {"items": [created], "total": 2, "offset": 1, "limit": 1}

    clock.advance(60)
    r = await client.patch(
        f"{URL}/sales@example.org", json={"destinations": ["carol@example.org"]}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json() == created | {"destinations": ["carol@example.org"], "updated_at": "2026-01-01T12:01:00Z"}
    r = await client.patch(
        f"{URL}/sales@example.org", json={"comment": "moved", "destinations": None}, headers=admin.headers
    )
    assert r.json()["comment"] == "moved"
    assert r.json()["destinations"] == ["carol@example.org"]  # null: unchanged

    r = await client.delete(f"{URL}/sales@example.org", headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    r = await client.get(f"{URL}/sales@example.org", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    # The address is free again.
    r = await client.post(
        URL, json={"address": "sales@example.org", "destinations": ["x@example.org"]}, headers=admin.headers
    )
    assert r.status_code == 201


async def test_create_answers_what_get_reads_and_audits_it(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, clock: FakeClock
) -> None:
    """create answers from what it stored, without reading it back: the answer (and the audit
    entry's after-state) must be what a read gives, even for a clock outside UTC."""
    await make_domain("example.org")
    clock.set(datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=-5))))
    body = {"address": "*@Example.org", "destinations": ["b@x.example", "a@x.example"], "wildcard": True}
    r = await client.post(URL, json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["created_at"] == "2026-03-04T10:06:07.891011Z"
    r = await client.get(f"{URL}/*@example.org", headers=admin.headers)
    assert r.json() == created
    audit = await client.get(
        "/api/v1/audit", params={"method": "admin.aliases.create"}, headers=admin.headers
    )
    entry = audit.json()["items"][0]
    assert entry["target"] == "*@example.org"
    assert entry["domain"] == "example.org"
    assert entry["changes"] == diff(None, created)


async def test_wildcards_and_catch_all(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    r = await client.post(
        URL,
        json={"address": "*@example.org", "destinations": ["postmaster@example.org"], "wildcard": True},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["address"] == "*@example.org"
    assert r.json()["wildcard"] is True
    r = await client.post(
        URL,
        json={"address": "Sales-*@example.org", "destinations": ["s@example.org"], "wildcard": True},
        headers=admin.headers,
    )
    assert r.status_code == 201
    assert r.json()["address"] == "sales-*@example.org"

    r = await client.get(f"{URL}/*@example.org", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["destinations"] == ["postmaster@example.org"]
    r = await client.patch(f"{URL}/%2A@example.org", json={"comment": "catch-all"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["comment"] == "catch-all"
    assert r.json()["wildcard"] is True
    assert (await client.delete(f"{URL}/*@example.org", headers=admin.headers)).status_code == 204
    assert [a["address"] for a in await _aliases(client, admin)] == ["sales-*@example.org"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"destinations": ["a@example.org"]}, "alias.address"),
        ({"address": "no-at-sign", "destinations": ["a@example.org"]}, "alias.address"),
        ({"address": "a b@example.org", "destinations": ["a@example.org"]}, "alias.address"),
        ({"address": "x@bad_domain", "destinations": ["a@example.org"]}, "alias.address"),
        ({"address": "x@example.org"}, "alias.destinations"),
        ({"address": "x@example.org", "destinations": []}, "alias.destinations"),
        ({"address": "x@example.org", "destinations": "a@example.org"}, "alias.destinations"),
        (
            {"address": "x@example.org", "destinations": [f"u{i}@example.net" for i in range(101)]},
            "alias.destinations",
        ),
        (
            {"address": "x@example.org", "destinations": ["ok@example.org", "not an address"]},
            "alias.destinations.1",
        ),
        ({"address": "x@example.org", "destinations": ["*@example.net"]}, "alias.destinations.0"),
        ({"address": "x@example.org", "destinations": ["X@Example.org"]}, "alias.destinations"),  # itself
        (
            {"address": "*@example.org", "destinations": ["a@example.org"]},
            "alias.address",
        ),  # * needs wildcard
        (
            {"address": "x-*@example.org", "destinations": ["a@example.org"], "wildcard": False},
            "alias.address",
        ),
        ({"address": "x@example.org", "destinations": ["a@example.org"], "wildcard": True}, "alias.wildcard"),
        (
            {"address": "x@example.org", "destinations": ["a@example.org"], "comment": "c" * 1001},
            "alias.comment",
        ),
        ({"address": "x@example.org", "destinations": ["a@example.org"], "surprise": 1}, "alias.surprise"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, body: dict[str, Any], loc: str
) -> None:
    await make_domain("example.org")
    r = await client.post(URL, json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "invalid_params"
    assert loc in [e["loc"] for e in problem["errors"]]
    assert await _aliases(client, admin) == []  # nothing changed


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"destinations": []}, "changes.destinations"),
        ({"destinations": ["sales@example.org"]}, "changes.destinations"),  # itself
        ({"destinations": ["nope"]}, "changes.destinations.0"),
        ({"wildcard": True}, "changes.wildcard"),  # fixed by the address: not a field of an update
        ({"address": "other@example.org"}, "changes.address"),  # the address cannot change
    ],
)
async def test_update_validation(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, changes: dict[str, Any], loc: str
) -> None:
    await make_domain("example.org")
    r = await client.post(
        URL, json={"address": "sales@example.org", "destinations": ["a@example.org"]}, headers=admin.headers
    )
    before = r.json()
    r = await client.patch(f"{URL}/sales@example.org", json=changes, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]
    assert await _aliases(client, admin) == [before]


async def test_not_found(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    for method, url, body in [
        ("GET", f"{URL}/ghost@example.org", None),
        ("PATCH", f"{URL}/ghost@example.org", {"comment": "x"}),
        ("DELETE", f"{URL}/ghost@example.org", None),
        ("GET", f"{URL}/ghost@nowhere.example", None),
    ]:
        r = await client.request(method, url, json=body, headers=admin.headers)
        assert r.status_code == 404, (method, url)
        assert r.json()["code"] == "not_found"
    # A domain that does not exist, to create in or to list.
    r = await client.post(
        URL, json={"address": "a@nowhere.example", "destinations": ["b@example.org"]}, headers=admin.headers
    )
    assert r.status_code == 404
    r = await client.get(URL, params={"domain": "nowhere.example"}, headers=admin.headers)
    assert r.status_code == 404
    assert await _aliases(client, admin) == []


async def test_alternative_and_relayed_domains_cannot_hold_aliases(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    await make_domain("example.org")
    r = await client.post(
        "/api/v1/domains/example.org/alternatives", json={"name": "example.net"}, headers=admin.headers
    )
    assert r.status_code == 201
    r = await client.post("/api/v1/relays", json={"name": "relayed.example"}, headers=admin.headers)
    assert r.status_code == 201

    r = await client.post(
        URL, json={"address": "a@example.net", "destinations": ["b@example.org"]}, headers=admin.headers
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "alias.address"
    assert "alternative name of example.org" in r.json()["detail"]
    r = await client.post(
        URL, json={"address": "a@relayed.example", "destinations": ["b@example.org"]}, headers=admin.headers
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "alias.address"
    assert "relayed" in r.json()["detail"]
    assert await _aliases(client, admin) == []


async def test_address_is_unique_across_aliases_and_users(
    client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    await make_user("alice@example.org")
    r = await client.post(
        URL, json={"address": "ALICE@example.org", "destinations": ["bob@example.net"]}, headers=admin.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    assert r.json()["detail"] == "alice@example.org is already a user"
    assert r.json()["data"] == {"address": "alice@example.org", "kind": "user"}

    body = {"address": "sales@example.org", "destinations": ["alice@example.org"]}
    assert (await client.post(URL, json=body, headers=admin.headers)).status_code == 201
    r = await client.post(URL, json=body | {"destinations": ["other@example.org"]}, headers=admin.headers)
    assert r.status_code == 409
    assert r.json()["detail"] == "sales@example.org is already an alias"
    assert [a["destinations"] for a in await _aliases(client, admin)] == [["alice@example.org"]]


async def test_max_aliases(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org", max_aliases=2)
    await make_domain("zero.example", max_aliases=0)
    for name in ("a", "b"):
        r = await client.post(
            URL,
            json={"address": f"{name}@example.org", "destinations": ["x@example.net"]},
            headers=admin.headers,
        )
        assert r.status_code == 201
    r = await client.post(
        URL, json={"address": "c@example.org", "destinations": ["x@example.net"]}, headers=admin.headers
    )
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded"
    assert r.json()["data"] == {"limit": 2, "used": 2}
    r = await client.post(
        URL, json={"address": "a@zero.example", "destinations": ["x@example.net"]}, headers=admin.headers
    )
    assert r.json()["code"] == "limit_exceeded"
    assert [a["address"] for a in await _aliases(client, admin)] == ["a@example.org", "b@example.org"]

    # Deleting one makes room again.
    assert (await client.delete(f"{URL}/a@example.org", headers=admin.headers)).status_code == 204
    r = await client.post(
        URL, json={"address": "c@example.org", "destinations": ["x@example.net"]}, headers=admin.headers
    )
    assert r.status_code == 201


async def test_list_by_domain(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    for domain in ("one.example", "two.example"):
        await make_domain(domain)
        for name in ("b", "a"):
            await client.post(
                URL,
                json={"address": f"{name}@{domain}", "destinations": ["x@example.net"]},
                headers=admin.headers,
            )
    r = await client.get(URL, params={"domain": "TWO.example"}, headers=admin.headers)
    assert r.status_code == 200
    assert [a["address"] for a in r.json()["items"]] == ["a@two.example", "b@two.example"]
    assert r.json()["total"] == 2
    r = await client.get(URL, params={"domain": "not a domain"}, headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "domain"


async def test_deleting_the_domain_frees_its_alias_addresses(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    await make_domain("example.org")
    body = {"address": "sales@example.org", "destinations": ["x@example.net"]}
    assert (await client.post(URL, json=body, headers=admin.headers)).status_code == 201
    assert (await client.delete("/api/v1/domains/example.org", headers=admin.headers)).status_code == 204
    await make_domain("example.org")
    assert await _aliases(client, admin) == []
    assert (await client.post(URL, json=body, headers=admin.headers)).status_code == 201


def _sans_instance(r: httpx.Response, key: str) -> dict[str, Any]:
    """A problem body without what names the request (its path and the object's key)."""
    body: dict[str, Any] = r.json()
    body.pop("instance", None)
    body["detail"] = body["detail"].replace(key, "<key>")
    return body


async def test_authorisation(client: httpx.AsyncClient, admin: Actor, make_user: Any) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    other = await make_user("mgr@two.example", manages=("two.example",))
    one = {"address": "sales@one.example", "destinations": ["x@example.net"]}
    two = {"address": "sales@two.example", "destinations": ["x@example.net"]}
    assert (await client.post(URL, json=two, headers=admin.headers)).status_code == 201

    # Anonymous: 401 everywhere.
    for method, url in [
        ("GET", URL),
        ("POST", URL),
        ("GET", f"{URL}/sales@two.example"),
        ("PATCH", f"{URL}/sales@two.example"),
        ("DELETE", f"{URL}/sales@two.example"),
    ]:
        r = await client.request(method, url, json=one if method == "POST" else None)
        assert r.status_code == 401, (method, url)

    # A plain user: 403 everywhere, even on their own domain.
    for method, url, body in [
        ("GET", URL, None),
        ("POST", URL, one),
        ("GET", f"{URL}/sales@two.example", None),
        ("PATCH", f"{URL}/sales@one.example", {}),
        ("DELETE", f"{URL}/sales@one.example", None),
    ]:
        r = await client.request(method, url, json=body, headers=user.headers)
        assert r.status_code == 403, (method, url)

    # A manager works in their domain.
    r = await client.post(URL, json=one, headers=manager.headers)
    assert r.status_code == 201
    r = await client.get(URL, headers=manager.headers)
    assert [a["address"] for a in r.json()["items"]] == ["sales@one.example"]
    assert r.json()["total"] == 1
    assert (
        await client.get(URL, params={"domain": "one.example"}, headers=manager.headers)
    ).status_code == 200
    assert (await client.get(f"{URL}/sales@one.example", headers=manager.headers)).status_code == 200
    r = await client.patch(f"{URL}/sales@one.example", json={"comment": "mine"}, headers=manager.headers)
    assert r.status_code == 200

    # Another manager's domain looks exactly like a missing one, whatever they try.
    new = {"destinations": ["x@example.net"]}
    # (method, hidden URL, hidden body, hidden key), then the same for a missing object.
    cases: list[tuple[str, str, Any, str, str, Any, str]] = [
        (
            "GET",
            f"{URL}/sales@one.example",
            None,
            "sales@one.example",
            f"{URL}/ghost@two.example",
            None,
            "ghost@two.example",
        ),
        (
            "PATCH",
            f"{URL}/sales@one.example",
            {"comment": "x"},
            "sales@one.example",
            f"{URL}/ghost@two.example",
            {"comment": "x"},
            "ghost@two.example",
        ),
        (
            "DELETE",
            f"{URL}/sales@one.example",
            None,
            "sales@one.example",
            f"{URL}/ghost@two.example",
            None,
            "ghost@two.example",
        ),
        (
            "POST",
            URL,
            new | {"address": "new@one.example"},
            "one.example",  # a missing domain is named as the domain
            URL,
            new | {"address": "new@three.example"},
            "three.example",
        ),
        (
            "GET",
            f"{URL}?domain=one.example",
            None,
            "one.example",
            f"{URL}?domain=three.example",
            None,
            "three.example",
        ),
    ]
    for method, h_url, h_body, h_key, m_url, m_body, m_key in cases:
        hidden = await client.request(method, h_url, json=h_body, headers=other.headers)
        missing = await client.request(method, m_url, json=m_body, headers=other.headers)
        admin_missing = await client.request(method, m_url, json=m_body, headers=admin.headers)
        assert hidden.status_code == missing.status_code == admin_missing.status_code == 404, h_url
        assert _sans_instance(hidden, h_key) == _sans_instance(admin_missing, m_key), h_url
    assert (await client.get(URL, headers=other.headers)).json()["items"][0]["address"] == "sales@two.example"

    # Nothing the others tried changed anything.
    r = await client.get(f"{URL}/sales@one.example", headers=admin.headers)
    assert r.json()["comment"] == "mine"
    assert {a["address"] for a in await _aliases(client, admin)} == {"sales@one.example", "sales@two.example"}

    # Admins see and change everything.
    assert (await client.delete(f"{URL}/sales@one.example", headers=admin.headers)).status_code == 204
    assert (await client.delete(f"{URL}/sales@two.example", headers=admin.headers)).status_code == 204
