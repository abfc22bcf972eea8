"""Brute-force protection: one guard for every password login (REST Basic, RPC Basic, ...)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.web import build_app
from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "login_failures_per_network": "5/hour",
        "login_failures_per_account": "8/day",
        "login_exemption_seconds": 3600,
    }


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@asynccontextmanager
async def client_from(mailroom: Mailroom, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(mailroom), client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def login(c: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await c.get(f"/api/v1/users/{user}", headers=basic(user, password))


async def test_network_lockout_reveals_nothing_and_ends(
    mailroom: Mailroom, make_user: MakeUser, clock: FakeClock
) -> None:
    await make_user("alice@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        for i in range(5):
            assert (await login(c, "alice@one.test", f"wrong-{i}")).status_code == 401
        locked = await login(c, "alice@one.test", PASSWORD)  # even the right password
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == "3600"
        body = locked.json()
        assert body["code"] == "rate_limited"
        assert body["detail"] == "too many failed logins; try again later"
        assert body["data"] == {"retry_after": 3600}
        # An account that does not exist gets exactly the same answer.
        ghost = await login(c, "nobody@one.test", "whatever")
        assert ghost.status_code == 429
        assert {**ghost.json(), "instance": None} == {**body, "instance": None}
    async with client_from(mailroom, "203.0.113.250") as c:  # same /24
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 429
    async with client_from(mailroom, "198.51.100.5") as c:  # another network
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
    clock.advance(3600)
    async with client_from(mailroom, "203.0.113.5") as c:
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200


async def test_the_same_wrong_password_counts_once(mailroom: Mailroom, make_user: MakeUser) -> None:
    await make_user("alice@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        for _ in range(20):
            assert (await login(c, "alice@one.test", "my old password")).status_code == 401
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200


async def test_account_lockout_across_networks_spares_a_known_network(
    mailroom: Mailroom, make_user: MakeUser
) -> None:
    await make_user("alice@one.test")
    async with client_from(mailroom, "192.0.2.10") as c:  # alice's office: a success first
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
    for n in range(8):  # an attacker spreads guesses over networks
        async with client_from(mailroom, f"10.{n}.0.1") as c:
            assert (await login(c, "alice@one.test", f"guess-{n}")).status_code == 401
    async with client_from(mailroom, "10.99.0.1") as c:
        r = await login(c, "alice@one.test", PASSWORD)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 3600 * 23
    async with client_from(mailroom, "192.0.2.10") as c:  # still exempt from the office
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200


async def test_a_successful_login_exempts_its_network(mailroom: Mailroom, make_user: MakeUser) -> None:
    await make_user("alice@one.test")
    await make_user("bob@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
        for i in range(7):  # bob mistypes a lot from the same office network
            assert (await login(c, "bob@one.test", f"typo-{i}")).status_code == 401
        assert (await login(c, "bob@one.test", PASSWORD)).status_code == 200


async def test_rpc_basic_auth_shares_the_guard(mailroom: Mailroom, make_user: MakeUser) -> None:
    await make_user("alice@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        for i in range(3):
            assert (await login(c, "alice@one.test", f"rest-{i}")).status_code == 401
        for i in range(2):
            reply = await jsonrpc(c, "system.apis.list", headers=basic("alice@one.test", f"rpc-{i}"))
            assert reply["error"]["data"]["code"] == "unauthenticated"
        reply = await jsonrpc(c, "system.apis.list", headers=basic("alice@one.test", PASSWORD))
        assert reply["error"]["code"] == -32029
        assert reply["error"]["data"]["retry_after"] == 3600
        body = b"<?xml version='1.0'?><methodCall><methodName>system.apis.list</methodName></methodCall>"
        r = await c.post(
            "/rpc/xml",
            content=body,
            headers={"content-type": "text/xml", **basic("alice@one.test", PASSWORD)},
        )
        assert b"rate_limited: too many failed logins" in r.content


async def test_metrics_count_failures_and_lockouts(mailroom: Mailroom, make_user: MakeUser) -> None:
    await make_user("alice@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        for i in range(6):
            await login(c, "alice@one.test", f"wrong-{i}")
    async with client_from(mailroom, "127.0.0.1") as c:
        text = (await c.get("/metrics")).text
    assert "mailroom_login_failures_total 5.0" in text
    assert 'mailroom_login_lockouts_total{scope="network"} 1.0' in text
