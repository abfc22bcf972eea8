"""validator1 and the JSON-RPC examples: expected answers computed from random inputs, over XML-RPC
(as the UserLand validator speaks it) and JSON-RPC."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.rpc.conftest import jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio

SEEDS = [1, 2, 3]


def _word(rng: random.Random, alphabet: str = string.ascii_letters + "<>&'\" ") -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def _stooges(rng: random.Random) -> dict[str, int]:
    return {k: rng.randint(-1000, 1000) for k in ("moe", "larry", "curly")}


def cases(rng: random.Random) -> list[tuple[str, list[Any], Any]]:
    """(method, positional params, expected result) per validator1 method."""
    structs = [_stooges(rng) for _ in range(rng.randint(1, 20))]
    text = _word(rng)
    easy = _stooges(rng)
    echo = {f"substruct{i}": _stooges(rng) for i in range(rng.randint(0, 5))}
    number, double = rng.randint(-(2**31), 2**31 - 1), rng.uniform(-1e6, 1e6)
    when = datetime(rng.randint(1970, 2100), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), 0, 0)
    blob = rng.randbytes(rng.randint(0, 64))
    strings = [_word(rng) for _ in range(rng.randint(100, 200))]
    april = _stooges(rng)
    calendar: dict[str, Any] = {
        str(year): {f"{m:02d}": {f"{d:02d}": {} for d in range(1, 4)} for m in range(1, 13)}
        for year in (1999, 2000, 2001)
    }
    calendar["2000"]["04"]["01"] = april
    small = rng.randint(-1000, 1000)
    return [
        ("validator1.arrayOfStructsTest", [structs], sum(s["curly"] for s in structs)),
        (
            "validator1.countTheEntities",
            [text],
            {
                "ctLeftAngleBrackets": text.count("<"),
                "ctRightAngleBrackets": text.count(">"),
                "ctAmpersands": text.count("&"),
                "ctApostrophes": text.count("'"),
                "ctQuotes": text.count('"'),
            },
        ),
        ("validator1.easyStructTest", [easy], easy["moe"] + easy["larry"] + easy["curly"]),
        ("validator1.echoStructTest", [echo], echo),
        (
            "validator1.manyTypesTest",
            [number, True, text, double, when, blob],
            [number, True, text, double, when, blob],
        ),
        ("validator1.moderateSizeArrayCheck", [strings], strings[0] + strings[-1]),
        ("validator1.nestedStructTest", [calendar], april["moe"] + april["larry"] + april["curly"]),
        (
            "validator1.simpleStructReturnTest",
            [small],
            {"times10": small * 10, "times100": small * 100, "times1000": small * 1000},
        ),
    ]


@pytest.mark.parametrize("seed", SEEDS)
async def test_validator1_over_xmlrpc(client: httpx.AsyncClient, seed: int) -> None:
    for method, params, expected in cases(random.Random(seed)):
        assert await xmlrpc_call(client, method, *params) == expected, method


def _json(value: Any) -> Any:
    """What the same value is in JSON: dates as ISO text (UTC), bytes as base64."""
    import base64

    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("seed", SEEDS)
async def test_validator1_over_jsonrpc(client: httpx.AsyncClient, seed: int) -> None:
    for method, params, expected in cases(random.Random(seed)):
        reply = await jsonrpc(client, method, _json(params))
        assert reply.get("result") == _json(expected), (method, reply)


@pytest.mark.parametrize("seed", SEEDS)
async def test_jsonrpc_example_methods(client: httpx.AsyncClient, seed: int) -> None:
    rng = random.Random(seed)
    a, b = rng.randint(-(10**9), 10**9), rng.randint(-(10**9), 10**9)
    numbers = [rng.randint(-1000, 1000) for _ in range(rng.randint(0, 8))]
    assert (await jsonrpc(client, "subtract", [a, b]))["result"] == a - b
    assert (await jsonrpc(client, "subtract", {"subtrahend": b, "minuend": a}))["result"] == a - b
    assert (await jsonrpc(client, "sum", numbers))["result"] == sum(numbers)
    assert await xmlrpc_call(client, "sum", *numbers) == sum(numbers)
    assert (await jsonrpc(client, "get_data"))["result"] == ["hello", 5]
    assert (await jsonrpc(client, "update", numbers[:5]))["result"] is None
    assert (await jsonrpc(client, "notify_hello", [a]))["result"] is None


async def test_interop_needs_no_credentials(client: httpx.AsyncClient) -> None:
    assert (await jsonrpc(client, "subtract", [2, 1]))["result"] == 1
    r = await client.post("/api/v1/interop/subtract", json={"minuend": 2, "subtrahend": 1})
    assert r.json() == 1


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_interop_is_off_unless_enabled(client: httpx.AsyncClient) -> None:
    reply = await jsonrpc(client, "subtract", [2, 1])
    assert reply["error"]["code"] == -32601
