"""mail.contacts.* over REST: CRUD, search, conflicts, OpenPGP keys, validation, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.client.conftest import SessionUser, error_locs, problem
from tests.client.keys import make_key, public
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

JOHN: dict[str, Any] = {
    "name": "John Smith",
    "emails": [{"address": "John@Example.net"}, {"address": "j.smith@work.example"}],
    "fields": {"phone": "+44 20 7946 0000", "company": "Acme Widgets"},
}


async def create(client: httpx.AsyncClient, actor: Actor, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/contacts", json=body, headers=actor.headers)


async def test_create_get_update_delete(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    r = await create(client, alice, JOHN)
    assert r.status_code == 201, r.text
    contact = r.json()
    assert contact["name"] == "John Smith"
    assert [e["address"] for e in contact["emails"]] == ["john@example.net", "j.smith@work.example"]
    assert contact["emails"][0] == {
        "address": "john@example.net",
        "public_key": None,
        "fingerprint": None,
        "key_user_ids": None,
        "key_expires_at": None,
    }
    assert contact["fields"] == JOHN["fields"]
    cid = contact["id"]
    assert (await client.get(f"/api/v1/contacts/{cid}", headers=alice.headers)).json() == contact
    r = await client.patch(f"/api/v1/contacts/{cid}", json={"name": "Johnny Smith"}, headers=alice.headers)
    assert r.status_code == 200
    changed = r.json()
    assert changed["name"] == "Johnny Smith"
    assert changed["emails"] == contact["emails"]
    assert changed["fields"] == contact["fields"]
    r = await client.patch(
        f"/api/v1/contacts/{cid}",
        json={"emails": [{"address": "johnny@example.net"}], "fields": {"notes": "met at FOSDEM"}},
        headers=alice.headers,
    )
    assert [e["address"] for e in r.json()["emails"]] == ["johnny@example.net"]
    assert r.json()["fields"] == {"notes": "met at FOSDEM"}
    assert (await client.delete(f"/api/v1/contacts/{cid}", headers=alice.headers)).status_code == 204
    problem(await client.get(f"/api/v1/contacts/{cid}", headers=alice.headers), 404, "not_found")
    problem(await client.delete(f"/api/v1/contacts/{cid}", headers=alice.headers), 404, "not_found")
    r = await client.patch(f"/api/v1/contacts/{cid}", json={"name": "x"}, headers=alice.headers)
    problem(r, 404, "not_found")
    # The freed address can be used again.
    assert (
        await create(client, alice, {"name": "J", "emails": [{"address": "john@example.net"}]})
    ).status_code == 201


async def test_search(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    await create(client, alice, JOHN)
    await create(client, alice, {"name": "Jane Smith", "emails": [{"address": "jane@example.net"}]})
    await create(client, alice, {"name": "Bob", "fields": {"company": "50% Off_Shop"}})

    async def names(q: str) -> list[str]:
        r = await client.get("/api/v1/contacts", params={"q": q}, headers=alice.headers)
        assert r.status_code == 200
        return [c["name"] for c in r.json()["items"]]

    assert await names("") == ["Bob", "Jane Smith", "John Smith"]
    assert await names("john smith") == ["John Smith"]
    assert await names("SMITH") == ["Jane Smith", "John Smith"]
    assert await names("work.example") == ["John Smith"]  # an address
    assert await names("acme") == ["John Smith"]  # a field value
    assert await names("phone") == ["John Smith"]  # a field name
    assert await names("50%") == ["Bob"]  # LIKE wildcards are literal
    assert await names("off_shop") == ["Bob"]
    assert await names("o_f") == []  # would match "off" if _ were a wildcard
    assert await names("nobody") == []
    r = await client.get("/api/v1/contacts?q=john+smith", headers=alice.headers)
    assert [c["name"] for c in r.json()["items"]] == ["John Smith"]
    r = await client.get("/api/v1/contacts?limit=2&offset=1", headers=alice.headers)
    body = r.json()
    assert (body["total"], body["offset"], body["limit"]) == (3, 1, 2)
    assert [c["name"] for c in body["items"]] == ["Jane Smith", "John Smith"]


async def test_an_address_is_in_one_contact(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    john = (await create(client, alice, JOHN)).json()
    r = await create(client, alice, {"name": "Other", "emails": [{"address": "JOHN@example.net"}]})
    body = problem(r, 409, "conflict")
    assert body["detail"] == f"john@example.net is already in your contact 'John Smith' (id {john['id']})"
    assert body["data"] == {"address": "john@example.net", "contact_id": john["id"]}
    other = (await create(client, alice, {"name": "Other"})).json()
    r = await client.patch(
        f"/api/v1/contacts/{other['id']}",
        json={"emails": [{"address": "j.smith@work.example"}]},
        headers=alice.headers,
    )
    problem(r, 409, "conflict")
    # Keeping its own addresses is no conflict.
    r = await client.patch(
        f"/api/v1/contacts/{john['id']}",
        json={"emails": [{"address": "john@example.net"}]},
        headers=alice.headers,
    )
    assert r.status_code == 200
    r = await create(
        client,
        alice,
        {"name": "Twice", "emails": [{"address": "x@example.net"}, {"address": "X@example.net"}]},
    )
    assert error_locs(r) == {"contact.emails"}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "contact.name"),
        ({"name": ""}, "contact.name"),
        ({"name": "a\nb"}, "contact.name"),
        ({"name": 5}, "contact.name"),
        ({"name": "x", "extra": 1}, "contact.extra"),
        ({"name": "x", "emails": [{"address": "nope"}]}, "contact.emails.0.address"),
        ({"name": "x", "emails": [{"address": "a@example.net", "colour": "red"}]}, "contact.emails.0.colour"),
        ({"name": "x", "emails": "a@example.net"}, "contact.emails"),
        ({"name": "x", "fields": {"phone": 123}}, "contact.fields.phone"),
        ({"name": "x", "fields": ["phone"]}, "contact.fields"),
        ({"name": "x", "fields": {f"k{i}": "v" for i in range(51)}}, "contact.fields"),
        (
            {"name": "x", "emails": [{"address": "a@example.net", "fingerprint": "xyz"}]},
            "contact.emails.0.fingerprint",
        ),
    ],
)
async def test_validation(
    client: httpx.AsyncClient, session_user: SessionUser, body: dict[str, Any], loc: str
) -> None:
    alice = await session_user()
    assert error_locs(await create(client, alice, body)) == {loc}


async def test_update_validation(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    cid = (await create(client, alice, JOHN)).json()["id"]
    r = await client.patch(f"/api/v1/contacts/{cid}", json={"name": None}, headers=alice.headers)
    assert error_locs(r) == {"changes.name"}
    r = await client.patch(f"/api/v1/contacts/{cid}", json={"nick": "J"}, headers=alice.headers)
    assert error_locs(r) == {"changes.nick"}
    assert error_locs(await client.get("/api/v1/contacts/abc", headers=alice.headers)) == {"id"}
    assert error_locs(await client.get("/api/v1/contacts/0", headers=alice.headers)) == {"id"}


async def test_public_keys_on_addresses(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    armored, fingerprint = public("john@example.net", "John Smith")
    r = await create(
        client,
        alice,
        {
            "name": "John",
            "emails": [
                {"address": "john@example.net", "public_key": armored, "fingerprint": fingerprint.lower()}
            ],
        },
    )
    assert r.status_code == 201, r.text
    [email] = r.json()["emails"]
    assert email["fingerprint"] == fingerprint
    assert email["key_user_ids"] == ["John Smith <john@example.net>"]
    assert email["key_expires_at"] is None
    assert email["public_key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # A fingerprint that is not the key's is refused.
    _, other_fp = public("someone@example.net")
    r = await create(
        client,
        alice,
        {
            "name": "Mismatch",
            "emails": [{"address": "m@example.net", "public_key": armored, "fingerprint": other_fp}],
        },
    )
    body = problem(r, 422, "invalid_params")
    assert body["errors"][0]["loc"] == "contact.emails.0.fingerprint"
    assert fingerprint in body["errors"][0]["message"]
    r = await create(
        client, alice, {"name": "Bad", "emails": [{"address": "b@example.net", "public_key": "garbage"}]}
    )
    assert error_locs(r) == {"contact.emails.0.public_key"}
    secret = str(make_key("s@example.net"))
    r = await create(
        client, alice, {"name": "Secret", "emails": [{"address": "s@example.net", "public_key": secret}]}
    )
    assert error_locs(r) == {"contact.emails.0.public_key"}


async def test_fingerprint_alone_is_resolved_in_the_directory(
    client: httpx.AsyncClient, session_user: SessionUser
) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    armored, fingerprint = public("bob@example.org", "Bob")
    assert (
        await client.post("/api/v1/me/keys", json={"public_key": armored}, headers=bob.headers)
    ).status_code == 201
    r = await create(
        client, alice, {"name": "Bob", "emails": [{"address": "bob@example.org", "fingerprint": fingerprint}]}
    )
    assert r.status_code == 201, r.text
    [email] = r.json()["emails"]
    assert email["fingerprint"] == fingerprint
    assert email["key_user_ids"] == ["Bob <bob@example.org>"]
    assert email["public_key"] is not None
    _, unknown = public("nobody@example.net")
    r = await create(
        client,
        alice,
        {"name": "Nobody", "emails": [{"address": "nobody@example.net", "fingerprint": unknown}]},
    )
    body = problem(r, 422, "invalid_params")
    assert body["errors"][0]["loc"] == "contact.emails.0.fingerprint"
    assert "directory" in body["errors"][0]["message"]


async def test_contacts_are_isolated(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    john = (await create(client, alice, JOHN)).json()
    cid = john["id"]
    listed = (await client.get("/api/v1/contacts", headers=bob.headers)).json()
    assert (listed["items"], listed["total"]) == ([], 0)
    assert (await client.get("/api/v1/contacts?q=john", headers=bob.headers)).json()["total"] == 0
    problem(await client.get(f"/api/v1/contacts/{cid}", headers=bob.headers), 404, "not_found")
    r = await client.patch(f"/api/v1/contacts/{cid}", json={"name": "Mine now"}, headers=bob.headers)
    problem(r, 404, "not_found")
    problem(await client.delete(f"/api/v1/contacts/{cid}", headers=bob.headers), 404, "not_found")
    # The same address in Bob's own contacts is no conflict with Alice's.
    assert (
        await create(client, bob, {"name": "J", "emails": [{"address": "john@example.net"}]})
    ).status_code == 201
    assert (await client.get(f"/api/v1/contacts/{cid}", headers=alice.headers)).json() == john
