"""Rate limits on the fake clock: windows slide, costs count, every protocol refuses alike."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.accounting.counters import ClockedMemoryStorage, client_network
from mailroom.accounting.ratelimit import RateLimiter
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]

RULES: list[dict[str, Any]] = [{"limit": "3/minute", "methods": "system.health.get", "per": "principal"}]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limits": RULES}


def with_settings(**values: Any) -> pytest.MarkDecorator:
    """Run a test with other settings (parametrising the fixture replaces it)."""
    return pytest.mark.parametrize("settings_overrides", [values], ids=["settings"])


# -- the storage on its own ---------------------------------------------------------------


async def test_moving_window_slides_with_the_injected_clock() -> None:
    now = [1000.0]
    storage = ClockedMemoryStorage(lambda: now[0])
    assert [await storage.acquire_entry("k", 3, 60) for _ in range(4)] == [True, True, True, False]
    now[0] += 30
    assert await storage.acquire_entry("k", 3, 60) is False
    assert await storage.get_moving_window("k", 3, 60) == (1000.0, 3)
    now[0] += 30  # the first three hits are exactly 60 s old: out of the window
    assert await storage.acquire_entry("k", 3, 60) is True
    assert await storage.get_moving_window("k", 3, 60) == (1060.0, 1)
    # A cost larger than what is left is refused whole and spends nothing.
    assert await storage.acquire_entry("k", 3, 60, amount=3) is False
    assert await storage.acquire_entry("k", 3, 60, amount=2) is True
    assert await storage.acquire_entry("k", 3, 60) is False


async def test_plain_counters_expire() -> None:
    now = [0.0]
    storage = ClockedMemoryStorage(lambda: now[0])
    assert await storage.incr("seen", 10) == 1
    assert await storage.incr("seen", 10) == 2
    now[0] = 9.9
    assert await storage.get("seen") == 2
    now[0] = 10.0
    assert await storage.get("seen") == 0
    assert await storage.incr("seen", 10) == 1


def test_client_networks() -> None:
    assert client_network("203.0.113.77", 24, 48) == "203.0.113.0/24"
    assert client_network("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
    assert client_network("::ffff:192.0.2.9", 24, 48) == "192.0.2.0/24"
    assert client_network("not an ip", 24, 48) is None
    assert client_network(None, 24, 48) is None


# -- over the protocols -------------------------------------------------------------------


async def test_rest_headers_then_429_then_the_window_slides(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    seen = []
    for _ in range(3):
        r = await client.get("/health")
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"default";q=3;w=60'
        seen.append(r.headers["ratelimit"])
        clock.advance(10)
    assert seen == ['"default";r=2;t=60', '"default";r=1;t=50', '"default";r=0;t=40']
    r = await client.get("/health")
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "30"  # the first hit leaves the window in 30 s
    assert r.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert r.headers["ratelimit"] == '"default";r=0;t=30'
    body = r.json()
    assert body["code"] == "rate_limited"
    assert body["data"] == {"retry_after": 30, "policy": "default"}
    clock.advance(30)
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.headers["ratelimit"] == '"default";r=0;t=10'


async def test_json_rpc_and_xml_rpc_refuse_with_the_same_code(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert "result" in await jsonrpc(client, "system.health.get")
    reply = await jsonrpc(client, "system.health.get")
    assert reply["error"]["code"] == -32029
    assert reply["error"]["data"]["code"] == "rate_limited"
    assert reply["error"]["data"]["retry_after"] == 60
    body = xmlrpc.client.dumps((), "system.health.get")
    r = await client.post("/rpc/xml", content=body, headers={"content-type": "text/xml"})
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(r.content)
    assert fault.value.faultCode == -32029
    assert fault.value.faultString.startswith("rate_limited: ")
    assert "retry after 60 s" in fault.value.faultString


async def test_in_process_and_cli_calls_are_never_limited(mailroom: Mailroom) -> None:
    for _ in range(10):
        await mailroom.registry.call("system.health.get")
        await mailroom.registry.call("system.health.get", protocol="cli")


@with_settings(
    rate_limits=[{"limit": "5/minute", "methods": "admin.*", "per": "user"}],
    method_costs={"admin.domains.list": 2},
)
async def test_costs_count_and_per_user_counters_are_separate(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user("alice@one.test", admin=True)
    bob = await make_user("bob@one.test", admin=True)
    statuses = [(await client.get("/api/v1/domains", headers=alice.headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # 2 + 2, then 2 more would make 6 > 5
    r = await client.get("/api/v1/domains/one.test", headers=alice.headers)  # cost 1: fits
    assert r.status_code == 200
    assert r.headers["ratelimit"] == '"default";r=0;t=60'
    assert (await client.get("/api/v1/domains", headers=bob.headers)).status_code == 200
    # Anonymous calls have no user: a per-user rule does not apply to them.
    assert (await client.get("/health")).status_code == 200


@with_settings(
    rate_limits=[
        {"limit": "2/minute", "methods": "system.*", "per": "global", "name": "everyone"},
        {"limit": "10/minute", "api": "admin", "per": "ip", "name": "net"},
    ]
)
async def test_global_and_per_api_rules(client: httpx.AsyncClient, admin: Actor) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/v1/system/apis", headers=admin.headers)).status_code == 200
    r = await client.get("/health")
    assert r.status_code == 429
    assert r.json()["data"]["policy"] == "everyone"
    r = await client.get("/api/v1/domains", headers=admin.headers)  # admin API: only the ip rule
    assert r.status_code == 200
    assert r.headers["ratelimit-policy"] == '"net";q=10;w=60'


@with_settings(
    rate_limits=[
        {"limit": "2/minute", "methods": "system.health.get", "per": "principal", "name": "minute"},
        {"limit": "3/hour", "methods": "system.health.get", "per": "principal", "name": "hour"},
    ]
)
async def test_a_refusal_by_one_rule_spends_nothing_on_the_others(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    r = await client.get("/health")
    assert r.headers["ratelimit-policy"] == '"minute";q=2;w=60, "hour";q=3;w=3600'
    assert r.headers["ratelimit"] == '"minute";r=1;t=60, "hour";r=2;t=3600'
    assert (await client.get("/health")).status_code == 200
    refused = await client.get("/health")
    assert refused.status_code == 429
    assert refused.json()["data"]["policy"] == "minute"
    clock.advance(60)
    r = await client.get("/health")
    assert r.status_code == 200  # the refused call did not spend the hour's third unit
    assert r.headers["ratelimit"] == '"minute";r=1;t=60, "hour";r=0;t=3540'
    clock.advance(60)
    refused = await client.get("/health")
    assert refused.status_code == 429
    assert refused.json()["data"]["policy"] == "hour"
    assert refused.headers["retry-after"] == "3480"


@with_settings(rate_limits=[])
async def test_api_keys_carry_their_own_limits(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    alice = await make_user("alice@one.test")
    key_id = alice.principal.key_id
    r = await client.put(
        f"/api/v1/apikeys/{key_id}/limits", json={"limits": [{"limit": "2/minute"}]}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    # The owner may read them but not change them.
    r = await client.get(f"/api/v1/apikeys/{key_id}/limits", headers=alice.headers)
    assert r.json() == {"limits": [{"limit": "2/minute", "methods": "*"}]}
    r = await client.put(f"/api/v1/apikeys/{key_id}/limits", json={"limits": []}, headers=alice.headers)
    assert r.status_code == 403
    # Refused before the filters (403): spends nothing. So: get_limits (1), get (2), then 429.
    r = await client.get("/api/v1/users/alice@one.test", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["ratelimit"] == '"key";r=0;t=60'
    r = await client.get("/api/v1/users/alice@one.test", headers=alice.headers)
    assert r.status_code == 429
    assert r.headers["ratelimit-policy"] == '"key";q=2;w=60'
    # The admin's own key has no limit.
    for _ in range(5):
        assert (await client.get("/api/v1/domains", headers=admin.headers)).status_code == 200
    # Removing the limits applies at once in this process.
    r = await client.put(f"/api/v1/apikeys/{key_id}/limits", json={"limits": []}, headers=admin.headers)
    assert r.status_code == 200
    assert (await client.get("/api/v1/users/alice@one.test", headers=alice.headers)).status_code == 200
    assert mailroom.runtime.accounting is not None
    limiter = mailroom.runtime.accounting.rate_limits
    assert isinstance(limiter, RateLimiter)
    assert await limiter.key_policies(key_id or "") == []


@with_settings(rate_limits=[{"limit": "2/minute", "per": "principal"}])
async def test_anonymous_callers_are_counted_per_network(mailroom: Mailroom) -> None:
    from mailroom.web import build_app

    app = build_app(mailroom)

    async def status(ip: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return (await c.get("/health")).status_code

    assert [await status("198.51.100.1"), await status("198.51.100.200")] == [200, 200]
    assert await status("198.51.100.9") == 429  # same /24
    assert await status("198.51.101.9") == 200  # another network
