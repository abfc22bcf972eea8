"""JMAP core over HTTP: the session, the API endpoint, request- and method-level errors."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import Actor
from tests.jmap.client import CORE, MAIL, JmapClient

pytestmark = pytest.mark.anyio


async def test_session_resource(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await client.get("/.well-known/jmap", headers=alice.headers)
    assert r.status_code == 200, r.text
    s = r.json()
    assert set(s["capabilities"]) >= {CORE, MAIL, "urn:ietf:params:jmap:websocket"}
    core = s["capabilities"][CORE]
    for limit in (
        "maxSizeUpload",
        "maxConcurrentUpload",
        "maxSizeRequest",
        "maxConcurrentRequests",
        "maxCallsInRequest",
        "maxObjectsInGet",
        "maxObjectsInSet",
    ):
        assert isinstance(core[limit], int)
        assert core[limit] > 0
    assert "i;unicode-casemap" in core["collationAlgorithms"]
    [account_id] = s["accounts"]
    assert s["primaryAccounts"][MAIL] == account_id
    assert s["accounts"][account_id]["isPersonal"] is True
    assert s["username"] == "alice@example.org"
    assert s["apiUrl"] == "http://mailroom.test/jmap/api"
    assert "{blobId}" in s["downloadUrl"]
    assert "{accountId}" in s["uploadUrl"]
    assert "{types}" in s["eventSourceUrl"]
    assert s["capabilities"]["urn:ietf:params:jmap:websocket"]["url"] == "ws://mailroom.test/jmap/ws"
    assert s["state"]


async def test_basic_auth_with_password(client: httpx.AsyncClient, alice: Actor) -> None:
    token = base64.b64encode(f"{alice.email}:{alice.password}".encode()).decode()
    r = await client.get("/.well-known/jmap", headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 200
    bad = base64.b64encode(f"{alice.email}:wrong".encode()).decode()
    r = await client.get("/.well-known/jmap", headers={"Authorization": f"Basic {bad}"})
    assert r.status_code == 401
    assert "Basic" in r.headers["www-authenticate"]


async def test_anonymous_and_admin_keys_are_refused(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.post("/jmap/api", json={"using": [CORE], "methodCalls": []})
    assert r.status_code == 401
    r = await client.get("/.well-known/jmap", headers=admin.headers)
    assert r.status_code == 403


async def test_mailbox_get_end_to_end(jmap: JmapClient) -> None:
    got = await jmap.call("Mailbox/get", {"ids": None})
    roles = {m["role"]: m for m in got["list"]}
    assert {"inbox", "archive", "drafts", "sent", "junk", "trash"} <= set(roles)
    inbox = roles["inbox"]
    assert inbox["name"] == "Inbox"
    assert inbox["parentId"] is None
    assert inbox["myRights"]["mayDelete"] is False
    assert got["notFound"] == []
    assert got["state"].isdigit()
    one = await jmap.call("Mailbox/get", {"ids": [inbox["id"], "M999999", "nope"], "properties": ["name"]})
    assert one["list"] == [{"id": inbox["id"], "name": "Inbox"}]
    assert one["notFound"] == ["M999999", "nope"]
