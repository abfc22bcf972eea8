"""JMAP calls go through the runner: API-key scopes, rate limits, the protocol switch and
the same isolation as every other protocol."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from tests.conftest import Actor
from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limits": [{"limit": "3/minute", "methods": "jmap.Mailbox.query", "per": "user"}]}


async def test_key_scopes_apply_to_jmap_methods(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor
) -> None:
    made = await mailroom.registry.call(
        "admin.apikeys.create",
        {
            "key": {
                "name": "narrow",
                "owner": "alice@example.org",
                "scopes": ["jmap.Mailbox.get", "jmap.session.get"],
            }
        },
    )
    narrow = JmapClient(client, {"Authorization": f"Bearer {made['key']}"})
    await narrow.session()
    assert (await narrow.call("Mailbox/get", {"ids": []}))["list"] == []
    err = await narrow.error("Mailbox/set", {"create": {"a": {"name": "x"}}})
    assert err["type"] == "forbidden"
    assert "scopes" in err["description"]


async def test_rate_limits_apply_per_call(jmap: JmapClient) -> None:
    for _ in range(3):
        await jmap.call("Mailbox/query", {})
    err = await jmap.error("Mailbox/query", {})
    assert err["type"] == "serverUnavailable"
    assert err["retryAfter"] > 0
    # Another method is not limited by that rule.
    await jmap.call("Mailbox/get", {"ids": []})


async def test_users_see_only_their_own(jmap: JmapClient, client: httpx.AsyncClient, bob: Actor) -> None:
    made = await jmap.call("Mailbox/set", {"create": {"p": {"name": "Private"}}})
    private = made["created"]["p"]["id"]
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    assert bobs.account_id != jmap.account_id
    got = await bobs.call("Mailbox/get", {"ids": [private]})
    assert got["notFound"] == [private]
    r = await bobs.call("Mailbox/set", {"update": {private: {"name": "Mine"}}, "destroy": [private]})
    assert r["notUpdated"][private]["type"] == "notFound"
    assert r["notDestroyed"][private]["type"] == "notFound"
    err = await bobs.error("Mailbox/get", {"accountId": jmap.account_id})
    assert err["type"] == "accountNotFound"


@pytest.mark.parametrize("settings_overrides", [{"disabled_protocols": ["jmap"]}])
async def test_protocol_switch(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await client.get("/.well-known/jmap", headers=alice.headers)
    assert r.status_code == 404
    r = await client.post("/jmap/api", json={"using": [], "methodCalls": []}, headers=alice.headers)
    assert r.status_code in (404, 405)
