"""Brute-force protection: one guard for every password login (REST Basic, RPC Basic, ...)."""

from __future__ import annotations

import asyncio
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
        "login_failures_per_known_network": "10/hour",
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


async def test_one_users_login_exempts_nobody_else_on_the_network(
    mailroom: Mailroom, make_user: MakeUser
) -> None:
    # The reproduction: after alice's success from 203.0.113.5, seven wrong passwords for
    # bob from there all got 401 (the whole network was exempt for a day).
    await make_user("alice@one.test")
    await make_user("bob@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
        statuses = [(await login(c, "bob@one.test", f"typo-{i}")).status_code for i in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        assert (await login(c, "bob@one.test", PASSWORD)).status_code == 429
        assert (await login(c, "carol@one.test", "spray")).status_code == 429
        # alice, known on this network, is judged by the raised network limit: still in.
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200


async def test_a_known_network_still_has_the_account_limit(mailroom: Mailroom, make_user: MakeUser) -> None:
    # Someone on alice's own network (a shared NAT) guesses her password: the per-account
    # limit (8/day here) holds from there too, it is not lifted by her earlier success.
    await make_user("alice@one.test")
    async with client_from(mailroom, "192.0.2.10") as c:
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
        for i in range(8):
            assert (await login(c, "alice@one.test", f"guess-{i}")).status_code == 401
        r = await login(c, "alice@one.test", PASSWORD)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 3600 * 23  # the account's daily window
    async with client_from(mailroom, "198.51.100.7") as c:  # and from anywhere else
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 429


async def test_spraying_from_a_known_network_is_limited(mailroom: Mailroom, make_user: MakeUser) -> None:
    # The network limit an exemption raises (10/hour here) is still a limit.
    for name in ("alice", "bob", "carol"):
        await make_user(f"{name}@one.test")
    async with client_from(mailroom, "203.0.113.5") as c:
        for name in ("alice", "bob", "carol"):  # everybody in the office logged in
            assert (await login(c, f"{name}@one.test", PASSWORD)).status_code == 200
        guesses = [
            (await login(c, f"{name}@one.test", f"spray-{i}")).status_code
            for i in range(4)
            for name in ("alice", "bob", "carol")
        ]
        assert guesses == [401] * 10 + [429] * 2
        for name in ("alice", "bob", "carol"):
            assert (await login(c, f"{name}@one.test", PASSWORD)).status_code == 429
    async with client_from(mailroom, "198.51.100.7") as c:  # the accounts are not locked
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200


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


@pytest.fixture
async def submission_port(mailroom: Mailroom) -> AsyncIterator[int]:
    from mailroom.frontends.smtp.submission import start_submission

    running = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


def _smtp_auth(port: int, user: str, password: str) -> int:
    import smtplib
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.starttls(context=context)
        client.ehlo("client.test")
        client.user, client.password = user, password
        try:
            code, _ = client.auth("PLAIN", client.auth_plain)
        except smtplib.SMTPAuthenticationError as exc:
            code = exc.smtp_code
        return code


@pytest.mark.parametrize("protocol", ["login", "basic", "jsonrpc", "xmlrpc", "smtp"])
async def test_every_password_protocol_keeps_the_limit_after_someone_elses_login(
    mailroom: Mailroom, make_user: MakeUser, submission_port: int, protocol: str
) -> None:
    await make_user("alice@one.test")
    await make_user("bob@one.test")

    async def attempt(c: httpx.AsyncClient, user: str, password: str) -> str:
        if protocol == "smtp":
            code = await asyncio.to_thread(_smtp_auth, submission_port, user, password)
            return {235: "ok", 535: "refused", 454: "locked"}[code]
        if protocol == "login":
            r = await c.post("/api/v1/login", json={"username": user, "password": password})
            return {200: "ok", 401: "refused", 429: "locked"}[r.status_code]
        if protocol == "basic":
            status = (await login(c, user, password)).status_code
            return {200: "ok", 401: "refused", 429: "locked"}[status]
        if protocol == "jsonrpc":
            reply = await jsonrpc(c, "system.apis.list", headers=basic(user, password))
            if "result" in reply:
                return "ok"
            return "locked" if reply["error"]["code"] == -32029 else "refused"
        body = b"<?xml version='1.0'?><methodCall><methodName>system.apis.list</methodName></methodCall>"
        r = await c.post(
            "/rpc/xml", content=body, headers={"content-type": "text/xml", **basic(user, password)}
        )
        if b"<fault>" not in r.content:
            return "ok"
        return "locked" if b"rate_limited" in r.content else "refused"

    # SMTP connects from 127.0.0.1 for real; the HTTP client says it is there too.
    async with client_from(mailroom, "127.0.0.1") as c:
        assert (await login(c, "alice@one.test", PASSWORD)).status_code == 200
        outcomes = [await attempt(c, "bob@one.test", f"wrong-{i}") for i in range(6)]
        assert outcomes == ["refused"] * 5 + ["locked"]
        assert await attempt(c, "bob@one.test", PASSWORD) == "locked"
        assert await attempt(c, "alice@one.test", PASSWORD) == "ok"
