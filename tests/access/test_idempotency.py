"""Idempotency-Key: replay, mismatch, in-flight races, expiry, release on failure, scoping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.registry import Context
from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


def key(value: str, actor: Actor) -> dict[str, str]:
    return {**actor.headers, "Idempotency-Key": value}


async def count_domains(client: httpx.AsyncClient, admin: Actor) -> int:
    return int((await client.get("/api/v1/domains", headers=admin.headers)).json()["total"])


async def test_replay_mismatch_and_expiry(client: httpx.AsyncClient, admin: Actor, clock: FakeClock) -> None:
    body = {"name": "one.test", "comment": "first"}
    first = await client.post("/api/v1/domains", json=body, headers=key("k-1", admin))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/api/v1/domains", json=body, headers=key("k-1", admin))
    assert again.status_code == 201  # not 409: the first response, replayed
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count_domains(client, admin) == 1
    other = await client.post("/api/v1/domains", json={**body, "comment": "x"}, headers=key("k-1", admin))
    assert other.status_code == 422
    assert other.json()["errors"][0]["type"] == "idempotency_key_reused"
    clock.advance(hours=24)
    expired = await client.post("/api/v1/domains", json=body, headers=key("k-1", admin))
    assert expired.status_code == 409  # the key expired: the request ran again (and conflicts)
    assert expired.json()["code"] == "conflict"


async def test_a_failed_first_request_releases_the_key(client: httpx.AsyncClient, admin: Actor) -> None:
    bad = await client.post("/api/v1/domains", json={"name": "no_dots"}, headers=key("k-2", admin))
    assert bad.status_code == 422
    await client.post("/api/v1/domains", json={"name": "two.test"}, headers=admin.headers)
    clash = await client.post("/api/v1/domains", json={"name": "two.test"}, headers=key("k-3", admin))
    assert clash.status_code == 409
    retry = await client.post("/api/v1/domains", json={"name": "three.test"}, headers=key("k-3", admin))
    assert retry.status_code == 201


async def test_keys_are_scoped_per_principal(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    alice = await make_user("alice@one.test")
    bob = await make_user("bob@one.test")
    body = {"name": "laptop"}
    a = await client.post("/api/v1/apikeys", json=body, headers=key("same", alice))
    b = await client.post("/api/v1/apikeys", json=body, headers=key("same", bob))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["owner"] == "alice@one.test"
    assert b.json()["owner"] == "bob@one.test"
    replay = await client.post("/api/v1/apikeys", json=body, headers=key("same", alice))
    assert replay.json()["id"] == a.json()["id"]


async def test_a_retry_while_the_first_runs_gets_409_and_one_change_happens(
    client: httpx.AsyncClient, admin: Actor, mailroom: Mailroom
) -> None:
    spec = mailroom.registry.get("admin.domains.create")
    assert spec is not None
    original = spec.func
    entered = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow(ctx: Context, **params: Any) -> Any:
        nonlocal runs
        runs += 1
        entered.set()
        await release.wait()
        return await original(ctx, **params)

    mailroom.registry.override("admin.domains.create", {"admin.domains.create": slow}, "test")
    body = {"name": "race.test"}
    first = asyncio.create_task(client.post("/api/v1/domains", json=body, headers=key("race", admin)))
    await entered.wait()
    second = await client.post("/api/v1/domains", json=body, headers=key("race", admin))
    assert second.status_code == 409
    assert "still running" in second.json()["detail"]
    release.set()
    assert (await first).status_code == 201
    third = await client.post("/api/v1/domains", json=body, headers=key("race", admin))
    assert (third.status_code, third.headers["idempotent-replayed"]) == (201, "true")
    assert runs == 1
    assert await count_domains(client, admin) == 1


async def test_json_rpc_calls_carry_the_header_too(client: httpx.AsyncClient, admin: Actor) -> None:
    params = {"domain": {"name": "rpc.test"}}
    one = await jsonrpc(client, "admin.domains.create", params, headers=key("rpc-1", admin))
    two = await jsonrpc(client, "admin.domains.create", params, headers=key("rpc-1", admin))
    assert "result" in one
    assert two["result"] == one["result"]
    # Reads are never stored, whatever the header.
    reply = await jsonrpc(client, "admin.domains.get", {"name": "rpc.test"}, headers=key("rpc-1", admin))
    assert reply["result"]["name"] == "rpc.test"
