"""Keys fetched from another key server (``keyserver_upstream``): a signed-in lookup of an
external address nobody uploaded a key for asks the upstream over HKP, on loopback; what names
the address is listed as ``fetched`` (our addresses' user ids taken out) and then served."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pgpy
import pytest
import uvicorn
from pgpy.constants import HashAlgorithm, KeyFlags
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.client.keys import make_key
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


def _key(*addresses: str) -> tuple[str, str]:
    key = make_key(addresses[0], "Frank")
    for extra in addresses[1:]:
        key.add_uid(
            pgpy.PGPUID.new("Other", email=extra), usage={KeyFlags.Sign}, hashes=[HashAlgorithm.SHA256]
        )
    return str(key.pubkey), str(key.fingerprint).replace(" ", "")


FRANKS, FRANKS_FP = _key("frank@remote.test", "alice@example.org")
UNRELATED, UNRELATED_FP = _key("someone@remote.test")


@pytest.fixture
def upstream_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def settings_overrides(upstream_socket: socket.socket) -> dict[str, Any]:
    return {"keyserver_upstream": f"http://127.0.0.1:{upstream_socket.getsockname()[1]}"}


@pytest.fixture
async def upstream(upstream_socket: socket.socket) -> AsyncIterator[list[str]]:
    """A key server answering HKP op=get like the public ones (several keys, one block each)."""
    asked: list[str] = []

    async def lookup(request: Request) -> Response:
        search = request.query_params.get("search", "")
        asked.append(search)
        if request.query_params.get("op") != "get":
            return PlainTextResponse("not implemented", status_code=501)
        if search == "frank@remote.test":
            return Response(FRANKS + "\n" + UNRELATED, media_type="application/pgp-keys")
        if search == "garbage@remote.test":
            return Response(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
            )
        return PlainTextResponse("No keys found", status_code=404)

    app = Starlette(routes=[Route("/pks/lookup", lookup)])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    upstream_socket.listen()
    task = asyncio.create_task(server.serve(sockets=[upstream_socket]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield asked
    finally:
        server.should_exit = True
        await task


async def test_a_lookup_fetches_the_addresses_keys_from_the_upstream(
    make_user: Any, client: httpx.AsyncClient, upstream: list[str]
) -> None:
    alice: Actor = await make_user("alice@example.org")
    r = await client.get("/api/v1/keys", params={"email": "frank@remote.test"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert [(k["fingerprint"], k["source"], k["served"]) for k in r.json()] == [(FRANKS_FP, "fetched", True)]
    assert r.json()[0]["user_ids"] == ["Frank <frank@remote.test>"]  # Alice's address taken out
    assert upstream == ["frank@remote.test"]
    # Known now: served over HKP, and not asked for again.
    index = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "frank@remote.test"}
    )
    assert index.status_code == 200
    assert FRANKS_FP in index.text
    assert UNRELATED_FP not in index.text
    assert (
        await client.get("/api/v1/keys", params={"email": "frank@remote.test"}, headers=alice.headers)
    ).json()
    assert upstream == ["frank@remote.test"]
    # Fetched keys take votes like user-sourced ones.
    voted = await client.put(
        f"/api/v1/keys/{FRANKS_FP}/vote", json={"authentic": False}, headers=alice.headers
    )
    assert (voted.status_code, voted.json()["served"]) == (200, False)


async def test_nothing_is_fetched_for_our_addresses_garbage_or_anonymous_hkp(
    make_user: Any, client: httpx.AsyncClient, upstream: list[str]
) -> None:
    alice: Actor = await make_user("alice@example.org")
    for address in ("bob@example.org", "garbage@remote.test", "nobody@remote.test"):
        r = await client.get("/api/v1/keys", params={"email": address}, headers=alice.headers)
        assert (r.status_code, r.json()) == (200, [])
    assert upstream == ["garbage@remote.test", "nobody@remote.test"]  # never an address of ours
    r = await client.get("/pks/lookup", params={"op": "get", "search": "frank@remote.test"})
    assert r.status_code == 404
    assert "frank@remote.test" not in upstream  # anonymous HKP never makes us ask
