"""gzip/deflate in both directions, on every HTTP front-end."""

from __future__ import annotations

import gzip
import xmlrpc.client
import zlib

import httpx
import orjson
import pytest

from mailroom.frontends.compression import choose_encoding
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

CALL = {"jsonrpc": "2.0", "method": "validator1.countTheEntities", "params": ["<&>" * 1000], "id": 1}


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate, br", "gzip"),
        ("deflate;q=1, gzip;q=0.5", "deflate"),
        ("gzip;q=0, deflate", "deflate"),
        ("*", "gzip"),
        ("*;q=0", None),
        ("identity", None),
        ("br", None),
        ("", None),
        ("x-gzip", "gzip"),
    ],
)
def test_accept_encoding(header: str, chosen: str | None) -> None:
    assert choose_encoding(header) == chosen


class Raw:
    """A response with its body as sent (httpx would decode it)."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        self.headers = response.headers
        self.body = body

    def read(self) -> bytes:
        return self.body

    def json(self) -> object:
        return orjson.loads(self.body)


async def _raw(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> Raw:
    request = client.build_request(method, url, **kwargs)  # type: ignore[arg-type]
    response = await client.send(request, stream=True)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return Raw(response, body)


@pytest.mark.parametrize(("coding", "decode"), [("gzip", gzip.decompress), ("deflate", zlib.decompress)])
async def test_large_responses_are_compressed(client: httpx.AsyncClient, coding: str, decode: object) -> None:
    r = await _raw(client, "GET", "/rpc/openrpc.json", headers={"accept-encoding": coding})
    assert r.headers["content-encoding"] == coding
    assert "accept-encoding" in r.headers["vary"].lower()
    raw = r.read()
    body = decode(raw)  # type: ignore[operator]
    assert int(r.headers["content-length"]) == len(raw) < len(body)
    assert orjson.loads(body)["openrpc"].startswith("1.")


async def test_small_or_unwanted_responses_are_not(client: httpx.AsyncClient) -> None:
    r = await _raw(
        client,
        "POST",
        "/rpc/json",
        json={"jsonrpc": "2.0", "method": "get_data", "id": 1},
        headers={"accept-encoding": "gzip"},
    )
    assert "content-encoding" not in r.headers
    assert r.json() == {"jsonrpc": "2.0", "result": ["hello", 5], "id": 1}
    r = await _raw(client, "GET", "/rpc/openrpc.json", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers


async def test_every_front_end_compresses(client: httpx.AsyncClient, admin: Actor) -> None:
    for i in range(40):
        await client.post("/api/v1/domains", json={"name": f"d{i}.example"}, headers=admin.headers)
    rest = await _raw(client, "GET", "/api/v1/domains", headers=admin.headers | {"accept-encoding": "gzip"})
    assert rest.headers["content-encoding"] == "gzip"
    assert len(orjson.loads(gzip.decompress(rest.read()))["items"]) == 40
    xml = await _raw(
        client,
        "POST",
        "/rpc/xml",
        content=xmlrpc.client.dumps((), "system.listMethods"),
        headers={"accept-encoding": "gzip"},
    )
    assert xml.headers["content-encoding"] == "gzip"
    assert "subtract" in xmlrpc.client.loads(gzip.decompress(xml.read()))[0][0]
    echo = {"jsonrpc": "2.0", "method": "validator1.echoStructTest", "params": [{"a": "x" * 5000}], "id": 1}
    rpc = await _raw(client, "POST", "/rpc/json", json=echo, headers={"accept-encoding": "deflate"})
    assert rpc.headers["content-encoding"] == "deflate"
    assert orjson.loads(zlib.decompress(rpc.read()))["result"] == {"a": "x" * 5000}


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, zlib.compress, lambda b: zlib.compress(b)[2:-4]],
    ids=["gzip", "zlib", "raw-deflate"],
)
async def test_compressed_request_bodies(client: httpx.AsyncClient, admin: Actor, compress: object) -> None:
    coding = "gzip" if compress is gzip.compress else "deflate"
    body = compress(orjson.dumps(CALL))  # type: ignore[operator]
    r = await client.post(
        "/rpc/json", content=body, headers={"content-type": "application/json", "content-encoding": coding}
    )
    assert r.json()["result"]["ctLeftAngleBrackets"] == 1000
    body = compress(orjson.dumps({"name": "gz.example"}))  # type: ignore[operator]
    r = await client.post(
        "/api/v1/domains",
        content=body,
        headers=admin.headers | {"content-type": "application/json", "content-encoding": coding},
    )
    assert r.status_code == 201


@pytest.mark.parametrize("settings_overrides", [{"interop_api": True, "max_decompressed_bytes": 100_000}])
async def test_decompression_bombs_stop_at_the_limit(client: httpx.AsyncClient) -> None:
    bomb = gzip.compress(b'{"jsonrpc": "2.0", "method": "x", "params": ["' + b"A" * 50_000_000 + b'"]}')
    assert len(bomb) < 100_000
    r = await client.post(
        "/rpc/json", content=bomb, headers={"content-type": "application/json", "content-encoding": "gzip"}
    )
    assert r.status_code == 200
    assert r.json()["error"]["data"]["code"] == "payload_too_large"
    r = await client.post(
        "/api/v1/domains",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    r = await client.post(
        "/rpc/xml", content=bomb, headers={"content-type": "text/xml", "content-encoding": "gzip"}
    )
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(r.content)
    assert info.value.faultCode == -32013


async def test_bad_or_unknown_codings(client: httpx.AsyncClient) -> None:
    h = {"content-type": "application/json", "content-encoding": "gzip"}
    r = await client.post("/rpc/json", content=b"not gzip at all", headers=h)
    assert r.json()["error"]["data"]["code"] == "bad_request"
    r = await client.post("/rpc/json", content=gzip.compress(orjson.dumps(CALL))[:-10], headers=h)
    assert r.json()["error"]["data"]["code"] == "bad_request"
    assert "truncated" in r.json()["error"]["data"]["detail"]
    r = await client.post("/rpc/json", content=b"x", headers=h | {"content-encoding": "br"})
    assert r.status_code == 415
    assert r.headers["accept-encoding"] == "gzip, deflate"
