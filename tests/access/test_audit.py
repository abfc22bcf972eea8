"""The audit log: an entry for every mutating admin method, diffs without secrets, who may read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from mailroom.accounting.audit import diff, redact
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.registry import MethodSpec
from tests.access.matrix import ROWS, World, build_world
from tests.access.test_matrix import METHODS
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]
MUTATING_ADMIN = [s for s in METHODS if s.api == "admin" and s.mutating]


async def entries(client: httpx.AsyncClient, actor: Actor, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/audit", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_redaction_and_diff() -> None:
    doc = {"email": "a@x.test", "password": "hunter2", "key": "mr_abc_secret", "nested": {"api_token": "t"},
           "key_model": {"key": {"name": "laptop"}}, "dkim_private_key": "-----BEGIN"}  # fmt: skip
    assert redact(doc) == {
        "email": "a@x.test",
        "password": "[redacted]",
        "key": "[redacted]",
        "nested": {"api_token": "[redacted]"},
        "key_model": {"key": {"name": "laptop"}},
        "dkim_private_key": "[redacted]",
    }
    changes = diff(
        {"quota": 1, "password_hash": "$a", "same": 1}, {"quota": 2, "password_hash": "$b", "same": 1}
    )
    assert changes == {
        "password_hash": {"before": "[redacted]", "after": "[redacted]"},
        "quota": {"before": 1, "after": 2},
    }


def test_diff_of_nested_values_and_of_a_creation() -> None:
    before = {"key": {"name": "laptop", "scopes": ["a"]}, "items": [{"token": "t", "n": 1}],
              "blob": b"xyz", "pair": ("a", {"secret_sauce": "s"}), "same": 1}  # fmt: skip
    after = {"key": {"name": "desktop", "scopes": ["a"]}, "items": [{"token": "u", "n": 1}],
             "blob": b"xyzw", "pair": ("b", {"secret_sauce": "s"}), "same": 1, "new": None,
             "added": {"deep": {"password": None, "x": 2}}}  # fmt: skip
    changes = diff(before, after)
    assert list(changes) == sorted(changes)
    assert changes == {
        "added.deep.x": {"before": None, "after": 2},
        "blob": {"before": "<3 bytes>", "after": "<4 bytes>"},
        "items": {"before": [{"token": "[redacted]", "n": 1}], "after": [{"token": "[redacted]", "n": 1}]},
        "key.name": {"before": "[redacted]", "after": "[redacted]"},  # inside an API key's "key"
        "pair": {
            "before": ["a", {"secret_sauce": "[redacted]"}],
            "after": ["b", {"secret_sauce": "[redacted]"}],
        },
    }
    assert diff(None, {"address": "a@x.test", "key": "mr_1", "n": None}) == {
        "address": {"before": None, "after": "a@x.test"},
        "key": {"before": None, "after": "[redacted]"},
    }
    assert diff(None, "text") == {"value": {"before": None, "after": "text"}}


@pytest.mark.parametrize("spec", MUTATING_ADMIN, ids=[s.name for s in MUTATING_ADMIN])
async def test_every_mutating_admin_method_is_audited(
    spec: MethodSpec, mailroom: Mailroom, clock: FakeClock
) -> None:
    world: World = await build_world(mailroom, clock)
    row = ROWS[spec.name]
    params = await row.params(world)
    failure: Exception | None = None
    try:
        await mailroom.registry.call(spec.name, params, principal=world.principals["admin"], protocol="cli")
    except Exception as exc:  # a row whose target cannot exist here (no such queue item)
        failure = exc
    succeeded = failure is None
    assert succeeded or row.allowed != "ok", f"{spec.name} failed: {failure}"
    listing = await mailroom.registry.call("admin.audit.list", {"method": spec.name})
    if not succeeded:
        assert listing["total"] == 0  # failures change nothing: no entry
        return
    assert listing["total"] >= 1
    entry = listing["items"][0]
    assert entry["principal"] == "key:" + str(world.principals["admin"].key_id) + "(root@admin.test)"
    assert entry["protocol"] == "cli"
    assert entry["method"] == spec.name
    text = orjson.dumps(entry).decode()
    assert "correct horse battery staple" not in text
    assert "mr_" not in text.replace('"mr_', "")  # no API key secret


async def test_diff_shows_changes_and_hides_secrets(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    await make_user("alice@one.test")
    r = await client.patch(
        "/api/v1/users/alice@one.test",
        json={"display_name": "Alice A.", "password": "a new secret passphrase 42"},
        headers={**admin.headers, "X-Request-ID": "req-7"},
    )
    assert r.status_code == 200, r.text
    page = await entries(client, admin, method="admin.users.update")
    entry = page["items"][0]
    assert entry["target"] == "alice@one.test"
    assert entry["domain"] == "one.test"
    assert entry["protocol"] == "rest"
    assert entry["request_id"] == "req-7"
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["changes"]["display_name"] == {"before": "", "after": "Alice A."}
    assert entry["params"]["changes"]["password"] == "[redacted]"
    assert "a new secret passphrase 42" not in orjson.dumps(page).decode()
    # A new API key's secret is in the response, never in the log.
    created = (
        await client.post("/api/v1/apikeys", json={"name": "ci", "admin": True}, headers=admin.headers)
    ).json()
    page = await entries(client, admin, method="admin.apikeys.create")
    assert created["key"] not in orjson.dumps(page).decode()
    assert page["items"][0]["changes"]["key"] == {"before": None, "after": "[redacted]"}


async def test_who_may_read_and_filters(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    manager = await make_user("mgr@one.test", manages=("one.test",))
    user = await make_user("bob@one.test")
    await make_user("carol@two.test")
    change = {"email": "carol@two.test", "changes": {"display_name": "C"}}
    await mailroom.registry.call("admin.users.update", change, protocol="cli")
    mine = await entries(client, manager)
    assert mine["total"] > 0
    assert {e["domain"] for e in mine["items"]} == {"one.test"}
    everything = await entries(client, admin, limit=1000)
    assert {"one.test", "two.test"} <= {e["domain"] for e in everything["items"]}
    cli = [e for e in everything["items"] if e["method"] == "admin.users.update"]
    assert cli[0]["protocol"] == "cli"
    assert cli[0]["principal"] == "system"
    r = await client.get("/api/v1/audit", params={"domain": "two.test"}, headers=manager.headers)
    assert r.status_code == 404
    assert (await client.get("/api/v1/audit", headers=user.headers)).status_code == 403
    page = await entries(client, admin, method="admin.users.*", limit=2, offset=1)
    assert page["limit"] == 2
    assert all(e["method"].startswith("admin.users.") for e in page["items"])
    assert page["total"] == len([e for e in everything["items"] if e["method"].startswith("admin.users.")])
