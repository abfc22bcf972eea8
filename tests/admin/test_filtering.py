"""``q`` on the admin lists: a case-insensitive substring of a name or an address, filtered
on the server (the total counts the matches), validated on every protocol, and never wider
than what the caller sees without it.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import httpx
import pytest

from tests.conftest import Actor, problem
from tests.rpc.conftest import fault_code, jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio


async def _page(client: httpx.AsyncClient, path: str, actor: Actor, **query: Any) -> dict[str, Any]:
    r = await client.get(f"/api/v1{path}", params=query, headers=actor.headers)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def _names(client: httpx.AsyncClient, path: str, actor: Actor, field: str, **query: Any) -> list[str]:
    return [item[field] for item in (await _page(client, path, actor, **query))["items"]]


async def test_users_by_address_or_name_with_the_total_and_pages(
    client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    await make_user("ann@one.test", display_name="Ann Smith")
    await make_user("bob@one.test", display_name="Robert")
    await make_user("smithy@two.test")
    await make_user("x_y@two.test")
    page = await _page(client, "/users", admin, q="SMITH")
    assert [u["email"] for u in page["items"]] == ["ann@one.test", "smithy@two.test"]
    assert page["total"] == 2
    assert await _names(client, "/users", admin, "email", q="smith", sort="-email") == [
        "smithy@two.test",
        "ann@one.test",
    ]
    assert await _names(client, "/users", admin, "email", q="smith", limit=1, offset=1) == ["smithy@two.test"]
    assert await _names(client, "/users", admin, "email", q="smith", domain="one.test") == ["ann@one.test"]
    # LIKE's wildcards are plain characters here.
    assert await _names(client, "/users", admin, "email", q="_") == ["x_y@two.test"]
    assert await _names(client, "/users", admin, "email", q="%") == []
    assert (await _page(client, "/users", admin, q="nobody"))["total"] == 0


async def test_domains_aliases_relays_and_keys(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, make_user: Any
) -> None:
    await make_user("alice@north.test")
    await make_domain("south.test")
    assert await _names(client, "/domains", admin, "name", q="NORTH") == ["north.test"]
    for address in ("sales@north.test", "support@north.test", "info@south.test"):
        r = await client.post(
            "/api/v1/aliases",
            json={"address": address, "destinations": ["alice@north.test"]},
            headers=admin.headers,
        )
        assert r.status_code == 201, r.text
    page = await _page(client, "/aliases", admin, q="s@north")
    assert [a["address"] for a in page["items"]] == ["sales@north.test"]
    assert page["total"] == 1
    assert await _names(client, "/aliases", admin, "address", q="@NORTH", sort="-address") == [
        "support@north.test",
        "sales@north.test",
    ]
    for name, host in (("r1.test", "mx.east.test"), ("r2.test", "mx.west.test")):
        r = await client.post("/api/v1/relays", json={"name": name, "smarthost": host}, headers=admin.headers)
        assert r.status_code == 201, r.text
    assert await _names(client, "/relays", admin, "name", q="west") == ["r2.test"]  # by smarthost
    assert await _names(client, "/relays", admin, "name", q="R1") == ["r1.test"]  # by name
    for name in ("Backup job", "Monitoring"):
        r = await client.post("/api/v1/apikeys", json={"name": name, "admin": True}, headers=admin.headers)
        assert r.status_code == 201, r.text
    keys = (await _page(client, "/apikeys", admin, q="backup"))["items"]
    assert [k["name"] for k in keys] == ["Backup job"]
    assert await _names(client, "/apikeys", admin, "name", q=keys[0]["id"]) == ["Backup job"]  # by id


async def test_a_filter_never_widens_a_managers_view(
    client: httpx.AsyncClient, make_user: Any, admin: Actor
) -> None:
    boss = await make_user("boss@one.test", manages=("one.test",))
    await make_user("carol@two.test")
    await make_user("carl@one.test")
    assert await _names(client, "/users", boss, "email", q="car") == ["carl@one.test"]
    assert await _names(client, "/users", admin, "email", q="car") == ["carl@one.test", "carol@two.test"]
    assert await _names(client, "/domains", boss, "name", q=".test") == ["one.test"]
    user = await make_user("alice@one.test")
    r = await client.get("/api/v1/users", params={"q": "a"}, headers=user.headers)
    assert r.status_code in (403, 404), r.text
    problem(await client.get("/api/v1/users", params={"q": "a"}), 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path", "field", "expected"),
    [
        ("admin.domains.list", "/domains", "name", "one.test"),
        ("admin.users.list", "/users", "email", "alice@one.test"),
        ("admin.aliases.list", "/aliases", "address", None),
        ("admin.relays.list", "/relays", "name", None),
        ("admin.apikeys.list", "/apikeys", "name", "key-alice@one.test"),  # the fixture's key
    ],
)
async def test_q_on_every_protocol(
    client: httpx.AsyncClient,
    admin: Actor,
    make_user: Any,
    method: str,
    path: str,
    field: str,
    expected: str | None,
) -> None:
    await make_user("alice@one.test")
    await make_user("bob@two.test")
    want = [expected] if expected else []
    reply = await jsonrpc(client, method, {"q": "ONE"}, headers=admin.headers)
    assert [i[field] for i in reply["result"]["items"]] == want, reply
    result = await xmlrpc_call(client, method, {"q": "one"}, headers=admin.headers)
    assert [i[field] for i in result["items"]] == want
    # Empty or longer than an address: invalid, on each protocol.
    for bad in ("", "x" * 321):
        r = await client.get(f"/api/v1{path}", params={"q": bad}, headers=admin.headers)
        assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "q"
        reply = await jsonrpc(client, method, {"q": bad}, headers=admin.headers)
        assert reply["error"]["data"]["code"] == "invalid_params", reply
        with pytest.raises(xmlrpc.client.Fault) as info:
            await xmlrpc_call(client, method, {"q": bad}, headers=admin.headers)
        assert fault_code(info.value) == "invalid_params"
