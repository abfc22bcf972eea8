"""JSON-RPC 2.0: the specification's examples (golden), batches, ids, errors, credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

GOLDEN = json.loads((Path(__file__).parent / "golden" / "jsonrpc_spec.json").read_text())


def _without_data(reply: Any) -> Any:
    """The specification's examples show no ``data``; ours carries the stable code there."""
    if isinstance(reply, list):
        return [_without_data(r) for r in reply]
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        assert reply["error"]["data"]["code"]  # every error names its stable code
        return {**reply, "error": {k: v for k, v in reply["error"].items() if k != "data"}}
    return reply


@pytest.mark.parametrize("example", GOLDEN, ids=[e["title"] for e in GOLDEN])
async def test_specification_examples(client: httpx.AsyncClient, example: dict[str, Any]) -> None:
    r = await client.post(
        "/rpc/json", content=example["request"], headers={"content-type": "application/json"}
    )
    if example["response"] is None:
        assert r.status_code == 204
        assert r.content == b""
    else:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert _without_data(r.json()) == example["response"]


async def test_error_data_carries_the_stable_code(client: httpx.AsyncClient, admin: Actor) -> None:
    reply = await jsonrpc(client, "admin.domains.get", {"name": "missing.example"}, headers=admin.headers)
    assert reply["error"] == {
        "code": -32004,
        "message": "domain missing.example not found",
        "data": {"code": "not_found", "detail": "domain missing.example not found", "kind": "domain"},
    }
    reply = await jsonrpc(
        client, "admin.domains.create", {"domain": {"name": "no_dots"}}, headers=admin.headers
    )
    error = reply["error"]
    assert error["code"] == -32602
    assert error["message"] == "Invalid params"
    assert error["data"]["code"] == "invalid_params"
    assert [e["loc"] for e in error["data"]["errors"]] == ["domain.name"]
    reply = await jsonrpc(client, "admin.domains.list")
    assert reply["error"]["code"] == -32001
    assert reply["error"]["data"]["code"] == "unauthenticated"


async def test_positional_parameters_in_declaration_order(client: httpx.AsyncClient, admin: Actor) -> None:
    await jsonrpc(client, "admin.domains.create", {"domain": {"name": "a.example"}}, headers=admin.headers)
    await jsonrpc(client, "admin.domains.create", [{"name": "b.example"}], headers=admin.headers)
    reply = await jsonrpc(client, "admin.domains.list", [1, 1], headers=admin.headers)
    assert [d["name"] for d in reply["result"]["items"]] == ["b.example"]
    reply = await jsonrpc(client, "admin.domains.get", ["a.example", "extra"], headers=admin.headers)
    assert reply["error"]["code"] == -32602


async def test_ids_are_echoed_and_bad_ids_refused(client: httpx.AsyncClient) -> None:
    for request_id in ["abc", 7, 2.5, None]:
        r = await client.post("/rpc/json", json={"jsonrpc": "2.0", "method": "get_data", "id": request_id})
        assert r.json() == {"jsonrpc": "2.0", "result": ["hello", 5], "id": request_id}
    for request_id in [True, {"a": 1}, [1]]:
        r = await client.post("/rpc/json", json={"jsonrpc": "2.0", "method": "get_data", "id": request_id})
        assert r.json()["error"]["code"] == -32600
        assert r.json()["id"] is None
    r = await client.post("/rpc/json", json={"jsonrpc": "1.0", "method": "get_data", "id": 4})
    assert r.json()["error"]["code"] == -32600
    assert r.json()["id"] == 4
    r = await client.post("/rpc/json", json={"jsonrpc": "2.0", "method": "subtract", "params": 3, "id": 5})
    assert r.json()["error"]["code"] == -32600


async def test_a_notification_is_run_but_never_answered(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.post(
        "/rpc/json",
        json={
            "jsonrpc": "2.0",
            "method": "admin.domains.create",
            "params": {"domain": {"name": "n.example"}},
        },
        headers=admin.headers,
    )
    assert r.status_code == 204
    reply = await jsonrpc(client, "admin.domains.get", {"name": "n.example"}, headers=admin.headers)
    assert reply["result"]["name"] == "n.example"
    # Failing notifications are silent too.
    r = await client.post("/rpc/json", json={"jsonrpc": "2.0", "method": "admin.domains.get", "params": {}})
    assert r.status_code == 204


async def test_batches_run_in_order(client: httpx.AsyncClient, admin: Actor) -> None:
    batch = [
        {
            "jsonrpc": "2.0",
            "method": "admin.domains.create",
            "params": {"domain": {"name": "x.example"}},
            "id": 1,
        },
        {"jsonrpc": "2.0", "method": "admin.domains.get", "params": {"name": "x.example"}, "id": 2},
        {"jsonrpc": "2.0", "method": "admin.domains.create", "params": [{"name": "x.example"}], "id": 3},
    ]
    r = await client.post("/rpc/json", json=batch, headers=admin.headers)
    replies = r.json()
    assert [x["id"] for x in replies] == [1, 2, 3]
    assert replies[1]["result"]["name"] == "x.example"
    assert replies[2]["error"]["code"] == -32009
    assert replies[2]["error"]["data"]["code"] == "conflict"


@pytest.mark.parametrize("settings_overrides", [{"interop_api": True, "jsonrpc_max_batch": 3}])
async def test_batch_size_limit(client: httpx.AsyncClient) -> None:
    call = {"jsonrpc": "2.0", "method": "get_data", "id": 1}
    r = await client.post("/rpc/json", json=[call] * 3)
    assert len(r.json()) == 3
    r = await client.post("/rpc/json", json=[call] * 4)
    assert r.status_code == 200
    reply = r.json()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"]["limit"] == 3
    assert "at most 3 calls" in reply["error"]["data"]["detail"]


async def test_credentials(client: httpx.AsyncClient, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org", manages=("example.org",))
    assert alice.key
    assert alice.password
    basic_password = base64.b64encode(f"alice@example.org:{alice.password}".encode()).decode()
    basic_key = base64.b64encode(f"alice@example.org:{alice.key}".encode()).decode()
    for header in [f"Bearer {alice.key}", f"Basic {basic_password}", f"Basic {basic_key}"]:
        reply = await jsonrpc(
            client, "admin.domains.get", {"name": "example.org"}, headers={"Authorization": header}
        )
        assert reply["result"]["name"] == "example.org", header
    # Bad credentials fail every call, public ones included, with the same answer.
    for header in [
        "Bearer mr_nope",
        "Basic !!!",
        "Digest abc",
        "Basic " + base64.b64encode(b"alice@example.org:x").decode(),
    ]:
        r = await client.post(
            "/rpc/json",
            json={"jsonrpc": "2.0", "method": "get_data", "id": 1},
            headers={"Authorization": header},
        )
        assert r.status_code == 200
        assert r.json()["error"]["code"] == -32001, header
        assert "Basic" in r.headers["www-authenticate"]


async def test_access_looks_the_same_as_over_rest(client: httpx.AsyncClient, make_user: Any) -> None:
    other: Actor = await make_user("bob@two.example", manages=("two.example",))
    await make_user("carol@one.example")
    hidden = await jsonrpc(client, "admin.domains.get", {"name": "one.example"}, headers=other.headers)
    missing = await jsonrpc(client, "admin.domains.get", {"name": "none.example"}, headers=other.headers)
    assert hidden["error"]["code"] == missing["error"]["code"] == -32004
    rest = await client.get("/api/v1/domains/one.example", headers=other.headers)
    assert rest.status_code == 404
    assert rest.json()["code"] == hidden["error"]["data"]["code"]


def test_download_results_are_base64() -> None:
    from mailroom.frontends.rpc.jsonrpc import download_result
    from mailroom.registry import Download

    assert download_result(Download(b"\x00\xff", "application/pdf", "a.pdf")) == {
        "content_base64": "AP8=",
        "content_type": "application/pdf",
        "filename": "a.pdf",
    }


async def test_rpc_namespace_is_reserved(client: httpx.AsyncClient) -> None:
    reply = await jsonrpc(client, "rpc.other")
    assert reply["error"]["code"] == -32601
    reply = await jsonrpc(client, "rpc.discover", [1])
    assert reply["error"]["code"] == -32602
