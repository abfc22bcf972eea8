"""One entry point, switches, OpenRPC, and per-method since/deprecated on every protocol."""

from __future__ import annotations

import json
import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry as SchemaRegistry
from referencing import Resource
from referencing.jsonschema import DRAFT7

from mailroom import bootstrap
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.registry import GET, Api, Context, Public
from mailroom.services import builtin
from mailroom.settings import Settings
from mailroom.web import build_app
from tests.conftest import Actor
from tests.rpc.conftest import fault_code, jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio


async def test_rpc_detects_the_protocol(client: httpx.AsyncClient) -> None:
    call = b'{"jsonrpc": "2.0", "method": "get_data", "id": 1}'
    xml = xmlrpc.client.dumps((), "get_data").encode()
    for content_type in ["application/json", "", "application/x-www-form-urlencoded", "text/plain"]:
        headers = {"content-type": content_type} if content_type else {}
        r = await client.post("/rpc", content=b"\xef\xbb\xbf \n" + call, headers=headers)
        assert r.json()["result"] == ["hello", 5], content_type
    for content_type in ["text/xml", "application/xml", "", "text/plain"]:
        headers = {"content-type": content_type} if content_type else {}
        r = await client.post("/rpc", content=xml, headers=headers)
        assert xmlrpc.client.loads(r.content)[0][0] == ["hello", 5], content_type
    # The content type wins over the body: XML sent as JSON is a JSON parse error.
    r = await client.post("/rpc", content=xml, headers={"content-type": "application/json"})
    assert r.json()["error"]["code"] == -32700
    r = await client.post("/rpc", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert set(r.json()["supported"]) >= {"application/json", "text/xml"}


@pytest.mark.parametrize("settings_overrides", [{"interop_api": True, "disabled_protocols": ["xmlrpc"]}])
async def test_a_disabled_protocol_is_not_served(client: httpx.AsyncClient) -> None:
    r = await client.post("/rpc/xml", content=xmlrpc.client.dumps((), "get_data"))
    assert r.status_code == 404
    r = await client.post("/rpc", content=xmlrpc.client.dumps((), "get_data"))
    assert r.status_code == 415
    assert "text/xml" not in r.json()["supported"]
    assert (await jsonrpc(client, "get_data"))["result"] == ["hello", 5]


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "interop_api": True,
            "remote_disabled": ["validator1.*", "xmlrpc:subtract", "jsonrpc:admin", "rest:sum"],
        }
    ],
)
async def test_switched_off_methods_look_unknown(
    client: httpx.AsyncClient, mailroom: Mailroom, admin: Actor
) -> None:
    # All protocols: validator1.*.
    reply = await jsonrpc(client, "validator1.easyStructTest", [{"moe": 1, "larry": 2, "curly": 3}])
    unknown = await jsonrpc(client, "validator1.noSuchMethod")
    assert reply["error"]["code"] == unknown["error"]["code"] == -32601
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "validator1.easyStructTest", {"moe": 1, "larry": 2, "curly": 3})
    assert info.value.faultCode == -32601
    r = await client.post("/api/v1/interop/validator1/easyStructTest", json={"stooges": {}})
    assert r.status_code == 404
    # One protocol: subtract over XML-RPC only; the admin API over JSON-RPC only; sum over REST.
    with pytest.raises(xmlrpc.client.Fault):
        await xmlrpc_call(client, "subtract", 2, 1)
    assert (await jsonrpc(client, "subtract", [2, 1]))["result"] == 1
    assert (await jsonrpc(client, "admin.domains.list", headers=admin.headers))["error"]["code"] == -32601
    assert (await xmlrpc_call(client, "admin.domains.list", headers=admin.headers))["total"] == 0
    assert (await client.post("/api/v1/interop/sum", json={"a": 1})).status_code == 404
    assert (await jsonrpc(client, "sum", [1, 2]))["result"] == 3
    # Introspection hides them too.
    names = await xmlrpc_call(client, "system.listMethods")
    assert "subtract" not in names
    assert "validator1.easyStructTest" not in names
    assert "sum" in names
    with pytest.raises(xmlrpc.client.Fault):
        await xmlrpc_call(client, "system.methodHelp", "validator1.easyStructTest")
    document = (await client.get("/rpc/openrpc.json")).json()
    listed = {m["name"] for m in document["methods"]}
    assert "subtract" in listed
    assert not any(n.startswith(("admin.", "validator1.")) for n in listed)
    # In-process (and so the CLI) still reach them.
    assert (
        await mailroom.registry.call("validator1.easyStructTest", [{"moe": 1, "larry": 2, "curly": 3}]) == 6
    )
    assert await mailroom.registry.call("sum", [1, 2], protocol="cli") == 3


def _validator() -> jsonschema.Draft7Validator:
    data = Path(__file__).parent / "data"
    meta = json.loads((data / "openrpc-meta-schema.json").read_text())
    dialect = json.loads((data / "json-schema-tools-meta-schema.json").read_text())
    registry: SchemaRegistry[Any] = SchemaRegistry().with_resource(
        "https://meta.json-schema.tools", Resource.from_contents(dialect, default_specification=DRAFT7)
    )
    return jsonschema.Draft7Validator(meta, registry=registry)


async def test_openrpc_document_is_valid(client: httpx.AsyncClient) -> None:
    document = (await client.get("/rpc/openrpc.json")).json()
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    methods = {m["name"]: m for m in document["methods"]}
    get = methods["admin.domains.get"]
    assert get["params"] == [{"name": "name", "required": True, "schema": get["params"][0]["schema"]}]
    assert get["result"]["schema"] == {"$ref": "#/components/schemas/Domain"}
    assert {"$ref": "#/components/errors/not_found"} in get["errors"]
    assert {"$ref": "#/components/errors/unauthenticated"} in get["errors"]
    assert {"$ref": "#/components/errors/unauthenticated"} not in methods["subtract"]["errors"]
    assert document["components"]["errors"]["not_found"] == {
        "code": -32004,
        "message": "Not found",
        "data": {"code": "not_found"},
    }
    assert document["servers"] == [{"name": "mailroom", "url": "http://mailroom.test/rpc/json"}]
    assert [p["name"] for p in methods["subtract"]["params"]] == ["minuend", "subtrahend"]
    # rpc.discover answers the same document.
    assert (await jsonrpc(client, "rpc.discover"))["result"] == document


lifecycle = Api("lifecycle", title="Lifecycle", description="Methods with since/deprecated metadata.")


@lifecycle.method(
    "lifecycle.old.get",
    http=GET("/lifecycle/old"),
    access=Public(),
    since="0.1",
    deprecated="2026-06-30, use lifecycle.new.get",
)
async def old_method(ctx: Context) -> str:
    """The old way."""
    return "old"


@lifecycle.method("lifecycle.vague.get", http=GET("/lifecycle/vague"), access=Public(), deprecated="0.3")
async def vague_method(ctx: Context) -> str:
    """Deprecated without a date."""
    return "vague"


@lifecycle.method("lifecycle.new.get", http=GET("/lifecycle/new"), access=Public(), since="0.4")
async def new_method(ctx: Context) -> str:
    """The new way."""
    return "new"


async def test_since_and_deprecated_everywhere(settings: Settings, clock: FakeClock) -> None:
    mailroom = await bootstrap.start(
        settings, clock=clock, run_migrations=False, apis=[*builtin.apis(settings), lifecycle]
    )
    try:
        transport = httpx.ASGITransport(app=build_app(mailroom))
        async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as client:
            old = await client.get("/api/v1/lifecycle/old")
            assert old.json() == "old"
            assert old.headers["deprecation"] == "@1782777600"  # 2026-06-30T00:00:00Z
            assert (await client.get("/api/v1/lifecycle/vague")).headers["deprecation"] == "true"
            assert "deprecation" not in (await client.get("/api/v1/lifecycle/new")).headers
            methods = {m["name"]: m for m in (await client.get("/rpc/openrpc.json")).json()["methods"]}
            assert methods["lifecycle.old.get"]["deprecated"] is True
            assert methods["lifecycle.old.get"]["x-deprecated"] == "2026-06-30, use lifecycle.new.get"
            assert methods["lifecycle.old.get"]["x-since"] == "0.1"
            assert methods["lifecycle.old.get"]["description"].endswith(
                "Since 0.1. Deprecated: 2026-06-30, use lifecycle.new.get."
            )
            assert "deprecated" not in methods["lifecycle.new.get"]
            assert methods["lifecycle.new.get"]["x-since"] == "0.4"
            help_text = await xmlrpc_call(client, "system.methodHelp", "lifecycle.old.get")
            assert help_text == "The old way.\n\nSince 0.1. Deprecated: 2026-06-30, use lifecycle.new.get."
            assert (
                await xmlrpc_call(client, "system.methodHelp", "lifecycle.new.get")
                == "The new way.\n\nSince 0.4."
            )
            openapi = (await client.get("/api/v1/openapi.json")).json()
            operation = openapi["paths"]["/lifecycle/old"]["get"]
            assert operation["deprecated"] is True
            assert operation["x-since"] == "0.1"
    finally:
        await mailroom.close()


async def test_fault_code_helper_reads_the_stable_code() -> None:
    assert fault_code(xmlrpc.client.Fault(-32004, "not_found: domain x not found")) == "not_found"
