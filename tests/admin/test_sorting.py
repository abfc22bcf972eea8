"""``sort`` on the admin lists: a field, ``-`` for descending, validated on every protocol.

Each list sorts on the server, pages do not overlap when values tie (the natural key
follows), and sorting never widens what a caller sees (a manager's list stays theirs).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import httpx
import pytest

from mailroom.clock import FakeClock
from tests.conftest import Actor, problem
from tests.rpc.conftest import fault_code, jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


async def _items(client: httpx.AsyncClient, path: str, actor: Actor, **query: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1{path}", params=query, headers=actor.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_domains_by_name_and_creation(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, clock: FakeClock
) -> None:
    for name in ("b.test", "c.test", "a.test"):  # created in this order
        await make_domain(name)
        clock.advance(10)
    names = [d["name"] for d in await _items(client, "/domains", admin)]
    assert names == ["a.test", "b.test", "c.test"]  # the default: by name
    names = [d["name"] for d in await _items(client, "/domains", admin, sort="-name")]
    assert names == ["c.test", "b.test", "a.test"]
    names = [d["name"] for d in await _items(client, "/domains", admin, sort="created_at")]
    assert names == ["b.test", "c.test", "a.test"]
    names = [d["name"] for d in await _items(client, "/domains", admin, sort="-created_at", limit=2)]
    assert names == ["a.test", "c.test"]


async def test_users_by_quota_and_name_and_pages_do_not_overlap(
    client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    await make_user("zed@one.test", quota_bytes=5 * MB, display_name="Ann")
    await make_user("amy@one.test", quota_bytes=50 * MB, display_name="Zoe")
    await make_user("max@one.test", quota_bytes=5 * MB, display_name="Max")
    by = {"domain": "one.test"}
    emails = [u["email"] for u in await _items(client, "/users", admin, **by)]
    assert emails == ["amy@one.test", "max@one.test", "zed@one.test"]
    emails = [u["email"] for u in await _items(client, "/users", admin, sort="-quota_bytes", **by)]
    assert emails == ["amy@one.test", "zed@one.test", "max@one.test"]  # ties: address, descending
    emails = [u["email"] for u in await _items(client, "/users", admin, sort="display_name", **by)]
    assert emails == ["zed@one.test", "max@one.test", "amy@one.test"]
    # One user a page, sorted on a tied value: every user once.
    seen = []
    for offset in range(3):
        page = await _items(client, "/users", admin, sort="quota_bytes", offset=offset, limit=1, **by)
        seen += [u["email"] for u in page]
    assert seen == ["max@one.test", "zed@one.test", "amy@one.test"]


async def test_aliases_relays_keys_queue_audit(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, make_user: Any, clock: FakeClock
) -> None:
    await make_user("alice@one.test")
    for local in ("b", "a", "c"):
        r = await client.post(
            "/api/v1/aliases",
            json={"address": f"{local}@one.test", "destinations": ["alice@one.test"]},
            headers=admin.headers,
        )
        assert r.status_code == 201, r.text
        clock.advance(5)
    got = [a["address"] for a in await _items(client, "/aliases", admin, sort="-address")]
    assert got == ["c@one.test", "b@one.test", "a@one.test"]
    got = [a["address"] for a in await _items(client, "/aliases", admin, sort="created_at")]
    assert got == ["b@one.test", "a@one.test", "c@one.test"]
    for name, host in (("r1.test", "z.smarthost.test"), ("r2.test", "a.smarthost.test")):
        r = await client.post("/api/v1/relays", json={"name": name, "smarthost": host}, headers=admin.headers)
        assert r.status_code == 201, r.text
    got = [x["name"] for x in await _items(client, "/relays", admin, sort="smarthost")]
    assert got == ["r2.test", "r1.test"]
    for name in ("zeta", "alpha"):
        r = await client.post("/api/v1/apikeys", json={"name": name, "admin": True}, headers=admin.headers)
        assert r.status_code == 201, r.text
    got = [k["name"] for k in await _items(client, "/apikeys", admin, sort="name")]
    assert got == sorted(got)
    assert got[0] == "alpha"
    got = [k["name"] for k in await _items(client, "/apikeys", admin, sort="-name")]
    assert got[0] == "zeta"
    assert (await _items(client, "/queue", admin, sort="-size")) == []
    methods = [e["method"] for e in await _items(client, "/audit", admin, sort="method")]
    assert methods == sorted(methods)
    assert len(set(methods)) > 1
    at = [e["at"] for e in await _items(client, "/audit", admin, sort="at")]
    assert at == sorted(at)


async def test_a_manager_still_sees_only_their_domain(
    client: httpx.AsyncClient, make_user: Any, admin: Actor
) -> None:
    boss = await make_user("boss@one.test", manages=("one.test",))
    await make_user("carol@two.test")
    for sort in ("-email", "-quota_bytes_used", "created_at"):
        emails = [u["email"] for u in await _items(client, "/users", boss, sort=sort)]
        assert emails == ["boss@one.test"], (sort, emails)
    names = [d["name"] for d in await _items(client, "/domains", boss, sort="-name")]
    assert names == ["one.test"]
    user = await make_user("alice@one.test")
    r = await client.get("/api/v1/users", params={"sort": "-email"}, headers=user.headers)
    assert r.status_code in (403, 404), r.text
    problem(await client.get("/api/v1/domains", params={"sort": "-name"}), 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("admin.domains.list", "/domains"),
        ("admin.users.list", "/users"),
        ("admin.aliases.list", "/aliases"),
        ("admin.relays.list", "/relays"),
        ("admin.apikeys.list", "/apikeys"),
        ("admin.queue.list", "/queue"),
        ("admin.audit.list", "/audit"),
    ],
)
async def test_an_unknown_sort_is_invalid_on_every_protocol(
    client: httpx.AsyncClient, admin: Actor, method: str, path: str
) -> None:
    for bad in ("password_hash", "-digest", "name; drop table users"):
        r = await client.get(f"/api/v1{path}", params={"sort": bad}, headers=admin.headers)
        assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "sort"
    reply = await jsonrpc(client, method, {"sort": "password_hash"}, headers=admin.headers)
    assert reply["error"]["data"]["code"] == "invalid_params", reply
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, method, {"sort": "password_hash"}, headers=admin.headers)
    assert fault_code(info.value) == "invalid_params"
