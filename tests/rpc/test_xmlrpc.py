"""XML-RPC: every type, faults, introspection, multicall, and Python's own client on loopback."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mailroom.frontends.rpc import _xmlcodec as codec
from mailroom.frontends.rpc.errors import ProtocolError
from tests.conftest import Actor
from tests.rpc.conftest import fault_code, xmlrpc_call

pytestmark = pytest.mark.anyio


def _decode(body: bytes, allow_none: bool = True) -> codec.MethodCall:
    return codec.Decoder(allow_none=allow_none, max_depth=16).call(codec.parse_xml(body, 16))


def test_every_type_decodes() -> None:
    body = b"""<?xml version="1.0"?>
<methodCall><methodName>m</methodName><params>
<param><value><int>-7</int></value></param>
<param><value><i4>2147483647</i4></value></param>
<param><value><ex:i8 xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">9007199254740993</ex:i8></value></param>
<param><value><boolean>1</boolean></value></param>
<param><value><string>a &amp; b</string></value></param>
<param><value>  bare string  </value></param>
<param><value><double>-1.5</double></value></param>
<param><value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value></param>
<param><value><dateTime.iso8601>1998-07-17T14:08:55+02:00</dateTime.iso8601></value></param>
<param><value><base64>AAEC/w==</base64></value></param>
<param><value><struct><member><name>k</name><value><array><data><value><nil/></value></data></array></value></member></struct></value></param>
<param><value><array><data/></array></value></param>
<param><value></value></param>
</params></methodCall>"""
    call = _decode(body)
    assert call.name == "m"
    assert call.params == [
        -7,
        2147483647,
        9007199254740993,
        True,
        "a & b",
        "  bare string  ",
        -1.5,
        datetime(1998, 7, 17, 14, 8, 55, tzinfo=UTC),
        datetime(1998, 7, 17, 12, 8, 55, tzinfo=UTC),
        b"\x00\x01\x02\xff",
        {"k": [None]},
        [],
        "",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "<int>2147483648</int>",
        "<i8>9223372036854775808</i8>",
        "<int>1.5</int>",
        "<boolean>true</boolean>",
        "<double>nan</double>",
        "<dateTime.iso8601>yesterday</dateTime.iso8601>",
        "<base64>!!!</base64>",
        "<struct><member><name>a</name></member></struct>",
        "<struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct>",
        "<array><value>1</value></array>",
        "<float8>1</float8>",
        "<int>1</int><int>2</int>",
    ],
)
def test_malformed_values_are_invalid_requests(value: str) -> None:
    param = f"<param><value>{value}</value></param>"
    body = f"<methodCall><methodName>m</methodName><params>{param}</params></methodCall>"
    with pytest.raises(ProtocolError) as info:
        _decode(body.encode())
    assert info.value.rpc_code == -32600


def test_nil_is_refused_when_disabled() -> None:
    param = b"<param><value><nil/></value></param>"
    body = b"<methodCall><methodName>m</methodName><params>" + param + b"</params></methodCall>"
    assert _decode(body).params == [None]
    with pytest.raises(ProtocolError):
        _decode(body, allow_none=False)


def test_encoder_follows_the_result_schema() -> None:
    schema = codec.Schema(
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "blob": {"type": "string", "contentEncoding": "base64"},
                "maybe": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                "text": {"type": "string"},
            },
        }
    )
    value = {
        "when": "2026-01-02T03:04:05.678+01:00",
        "blob": "AP8=",
        "maybe": "2026-01-02T03:04:05Z",
        "text": "2026-01-02T03:04:05Z",
        "big": 2**40,
    }
    xml = codec.Encoder(allow_none=True).value(value, schema)
    result = xmlrpc.client.loads(codec.response(xml), use_builtin_types=True)[0][0]
    assert result == {
        "when": datetime(2026, 1, 2, 2, 4, 5),
        "blob": b"\x00\xff",
        "maybe": datetime(2026, 1, 2, 3, 4, 5),
        "text": "2026-01-02T03:04:05Z",
        "big": 2**40,
    }
    with pytest.raises(codec.EncodeError):
        codec.Encoder(allow_none=True).value(2**64)
    with pytest.raises(codec.EncodeError):
        codec.Encoder(allow_none=False).value([None])
    with pytest.raises(codec.EncodeError):
        codec.Encoder(allow_none=True).value("bell \x07")
    # Without nil, a null struct member is left out instead.
    xml = codec.Encoder(allow_none=False).value({"a": None, "b": 1})
    assert xmlrpc.client.loads(codec.response(xml))[0][0] == {"b": 1}
    # Carriage returns survive XML's line-end normalisation.
    xml = codec.Encoder(allow_none=True).value("a\r\nb")
    assert xmlrpc.client.loads(codec.response(xml))[0][0] == "a\r\nb"


async def test_faults_use_interop_codes_and_the_stable_code(client: httpx.AsyncClient, admin: Actor) -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "admin.domains.get", "missing.example", headers=admin.headers)
    assert info.value.faultCode == -32004
    assert info.value.faultString == "not_found: domain missing.example not found"
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "no.such.method")
    assert info.value.faultCode == -32601
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "subtract", 1)
    assert info.value.faultCode == -32602
    assert fault_code(info.value) == "invalid_params"
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "admin.domains.list")
    assert info.value.faultCode == -32001
    for body, code in [(b"<methodCall><methodName>x", -32700), (b"<methodResponse/>", -32600), (b"", -32700)]:
        r = await client.post("/rpc/xml", content=body, headers={"content-type": "text/xml"})
        with pytest.raises(xmlrpc.client.Fault) as info:
            xmlrpc.client.loads(r.content)
        assert info.value.faultCode == code
        assert fault_code(info.value) == "bad_request"


async def test_named_parameters_travel_as_one_struct(client: httpx.AsyncClient, admin: Actor) -> None:
    created = await xmlrpc_call(
        client, "admin.domains.create", {"name": "one.example"}, headers=admin.headers
    )
    assert created["name"] == "one.example"
    by_name = await xmlrpc_call(client, "admin.domains.get", {"name": "one.example"}, headers=admin.headers)
    by_position = await xmlrpc_call(client, "admin.domains.get", "one.example", headers=admin.headers)
    assert by_name == by_position
    assert isinstance(by_name["created_at"], datetime)
    assert await xmlrpc_call(client, "subtract", {"subtrahend": 23, "minuend": 42}) == 19
    assert await xmlrpc_call(client, "subtract", 42, 23) == 19
    assert await xmlrpc_call(client, "validator1.easyStructTest", {"moe": 1, "larry": 2, "curly": 3}) == 6


async def test_introspection(client: httpx.AsyncClient) -> None:
    names = await xmlrpc_call(client, "system.listMethods")
    assert {"admin.domains.get", "subtract", "validator1.manyTypesTest", "system.multicall"} <= set(names)
    assert "rpc.discover" not in names
    assert await xmlrpc_call(client, "system.methodSignature", "validator1.manyTypesTest") == [
        ["array", "int", "boolean", "string", "double", "dateTime.iso8601", "base64"]
    ]
    assert await xmlrpc_call(client, "system.methodSignature", "admin.domains.list") == [
        ["struct"],
        ["struct", "int"],
        ["struct", "int", "int"],
        ["struct", "int", "int", "string"],  # offset, limit, sort
        ["struct", "int", "int", "string", "string"],  # ..., q
    ]
    assert await xmlrpc_call(client, "system.methodSignature", "admin.domains.delete") == [["nil", "string"]]
    assert await xmlrpc_call(client, "system.methodSignature", "validator1.simpleStructReturnTest") == [
        ["struct", "int"]
    ]
    assert await xmlrpc_call(client, "system.methodSignature", "system.methodHelp") == [["string", "string"]]
    help_text = await xmlrpc_call(client, "system.methodHelp", "validator1.countTheEntities")
    assert help_text.startswith("validator1: how many")
    assert help_text.endswith("Since 0.1.0.")
    capabilities = await xmlrpc_call(client, "system.getCapabilities")
    assert {"xmlrpc", "introspection", "system.multicall", "faults_interop", "nil"} <= set(capabilities)
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "system.methodHelp", "nope")
    assert info.value.faultCode == -32601
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "system.methodHelp")
    assert info.value.faultCode == -32602


async def test_multicall(client: httpx.AsyncClient) -> None:
    results = await xmlrpc_call(
        client,
        "system.multicall",
        [
            {"methodName": "subtract", "params": [42, 23]},
            {"methodName": "nope", "params": []},
            {"methodName": "system.multicall", "params": [[]]},
            {"methodName": "system.listMethods"},
            {"params": []},
            {"methodName": "validator1.simpleStructReturnTest", "params": [2]},
        ],
    )
    assert results[0] == [19]
    assert results[1]["faultCode"] == -32601
    assert results[2]["faultCode"] == -32600
    assert "nested" in results[2]["faultString"]
    assert "subtract" in results[3][0]
    assert results[4]["faultCode"] == -32600
    assert results[5] == [{"times10": 20, "times100": 200, "times1000": 2000}]


@pytest.mark.parametrize("settings_overrides", [{"interop_api": True, "xmlrpc_allow_none": False}])
async def test_without_nil(client: httpx.AsyncClient, admin: Actor) -> None:
    await xmlrpc_call(client, "admin.domains.create", {"name": "keep.example"}, headers=admin.headers)
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "admin.domains.delete", "keep.example", headers=admin.headers)
    assert info.value.faultCode == -32603
    assert "xmlrpc_allow_none" in info.value.faultString
    # Refused before the call: the domain is still there.
    domain = await xmlrpc_call(client, "admin.domains.get", "keep.example", headers=admin.headers)
    assert "max_users" not in domain  # a null member is left out
    capabilities = await xmlrpc_call(client, "system.getCapabilities")
    assert "nil" not in capabilities


class _Proxies:
    """Makes ServerProxy objects and closes their connections at the end."""

    def __init__(self) -> None:
        self.stack = ExitStack()

    def __enter__(self) -> _Proxies:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def __call__(self, url: str, **kwargs: Any) -> xmlrpc.client.ServerProxy:
        return self.stack.enter_context(xmlrpc.client.ServerProxy(url, **kwargs))


async def test_python_serverproxy(server_url: str, admin: Actor, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org", manages=("example.org",))
    host = server_url.removeprefix("http://")

    def run() -> None:
        with _Proxies() as _proxy:
            check(_proxy)

    def check(_proxy: _Proxies) -> None:
        plain = _proxy(f"{server_url}/rpc/xml")
        assert plain.subtract(42, 23) == 19
        assert plain.system.listMethods()
        when = datetime(2026, 3, 4, 5, 6, 7)
        typed = _proxy(f"{server_url}/rpc/xml", allow_none=True, use_builtin_types=True)
        assert typed.validator1.manyTypesTest(1, True, "x", 1.5, when, b"\x00\xff") == [
            1,
            True,
            "x",
            1.5,
            when,
            b"\x00\xff",
        ]
        assert typed.update(1, None) is None
        # Basic with user:password and user:apikey, Bearer through headers=; /rpc too.
        for url, headers in [
            (f"http://alice%40example.org:{alice.password}@{host}/rpc/xml", ()),
            (f"http://alice%40example.org:{alice.key}@{host}/rpc", ()),
            (f"{server_url}/rpc/xml", (("Authorization", f"Bearer {admin.key}"),)),
        ]:
            proxy = _proxy(url, allow_none=True, use_builtin_types=True, headers=headers)
            domain = proxy.admin.domains.get("example.org")
            assert domain["name"] == "example.org"
            assert isinstance(domain["created_at"], datetime)
        bad = _proxy(f"http://alice%40example.org:wrong@{host}/rpc/xml")
        with pytest.raises(xmlrpc.client.Fault) as info:
            bad.subtract(1, 2)
        assert info.value.faultCode == -32001
        # The client asks for gzip; large answers come back compressed and still parse.
        names = typed.system.listMethods()
        assert "admin.domains.get" in names
        multi = xmlrpc.client.MultiCall(typed)
        multi.subtract(5, 3)
        multi.admin.domains.list()
        results = multi()
        assert results[0] == 2
        with pytest.raises(xmlrpc.client.Fault):
            results[1]

    await asyncio.to_thread(run)


async def test_gzip_request_bodies_from_python_client(server_url: str) -> None:
    def run() -> None:
        transport = xmlrpc.client.Transport()
        transport.encode_threshold = 0  # gzip every request body
        with xmlrpc.client.ServerProxy(f"{server_url}/rpc/xml", transport=transport) as proxy:
            assert proxy.validator1.moderateSizeArrayCheck(["a"] * 150 + ["z"]) == "az"

    await asyncio.to_thread(run)
