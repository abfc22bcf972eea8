"""A routes admin.domains.* to B's JSON-RPC endpoint: two instances, two databases, loopback HTTP."""

from __future__ import annotations

import asyncio
import shutil
import xmlrpc.client
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mailroom import bootstrap
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import InvalidParams, NotFound, RateLimited, Unavailable
from mailroom.providers.remote import RemoteClient, domain_error
from mailroom.settings import ProviderRoute, Settings
from mailroom.web import build_app
from tests.conftest import FAST_ARGON2
from tests.rpc.conftest import serve

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def instance(settings: Settings, clock: FakeClock) -> AsyncIterator[tuple[Mailroom, str, str]]:
    """A started mailroom served on loopback, with an admin API key: (mailroom, url, key)."""
    mailroom = await bootstrap.start(settings, clock=clock, run_migrations=False)
    try:
        created = await mailroom.registry.call(
            "admin.apikeys.create", {"key": {"name": "admin", "admin": True}}
        )
        async with serve(build_app(mailroom)) as url:
            yield mailroom, url, created["key"]
    finally:
        await mailroom.close()


@pytest.fixture
def b_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    data = tmp_path / "b"
    data.mkdir()
    shutil.copy(sqlite_template, data / "mailroom.db")
    return Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'mailroom.db'}",
        mode="test",
        secret_key="instance-b-secret-key-for-tests",
        **FAST_ARGON2,
    )


async def test_calls_to_a_are_served_by_b(settings: Settings, b_settings: Settings, clock: FakeClock) -> None:
    async with instance(b_settings, clock) as (b, b_url, b_key):
        await b.registry.call("admin.domains.create", {"domain": {"name": "on-b.example", "max_users": 5}})
        route = ProviderRoute(
            methods="admin.domains.*",
            provider="remote",
            url=f"{b_url}/rpc/json",
            credentials=SecretStr(b_key),
        )
        a_settings = settings.model_copy(update={"providers": [route]})
        async with instance(a_settings, clock) as (a, a_url, a_key):
            assert a.registry.get("admin.domains.get").provider == "remote"  # type: ignore[union-attr]
            h = {"Authorization": f"Bearer {a_key}"}
            async with httpx.AsyncClient(base_url=a_url) as http:
                # B's data, over REST and JSON-RPC on A.
                r = await http.get("/api/v1/domains/on-b.example", headers=h)
                assert r.status_code == 200
                assert r.json()["max_users"] == 5
                body = {"jsonrpc": "2.0", "method": "admin.domains.list", "id": 1}
                listed = (await http.post("/rpc/json", json=body, headers=h)).json()["result"]
                assert [d["name"] for d in listed["items"]] == ["on-b.example"]
                # Writes through A land in B; a PATCH keeps the fields it does not name.
                r = await http.post(
                    "/api/v1/domains", json={"name": "via-a.example", "max_users": 7}, headers=h
                )
                assert r.status_code == 201
                r = await http.patch("/api/v1/domains/via-a.example", json={"comment": "routed"}, headers=h)
                assert r.json()["comment"] == "routed"
                on_b = await b.registry.call("admin.domains.get", {"name": "via-a.example"})
                assert on_b["max_users"] == 7
                assert on_b["comment"] == "routed"
                # B's domain errors reach A's clients as the same codes.
                r = await http.post("/api/v1/domains", json={"name": "via-a.example"}, headers=h)
                assert r.status_code == 409
                assert r.json()["code"] == "conflict"
                body = {
                    "jsonrpc": "2.0",
                    "method": "admin.domains.get",
                    "params": ["missing.example"],
                    "id": 2,
                }
                error = (await http.post("/rpc/json", json=body, headers=h)).json()["error"]
                assert error["code"] == -32004
                assert error["data"] == {
                    "code": "not_found",
                    "detail": "domain missing.example not found",
                    "kind": "domain",
                }
                r = await http.patch("/api/v1/domains/via-a.example", json={"max_users": 0}, headers=h)
                assert r.status_code == 200  # no users yet: allowed, and decided by B
                # A's own contract still applies first: its principals, its validation.
                assert (await http.get("/api/v1/domains/on-b.example")).status_code == 401
                r = await http.post("/api/v1/domains", json={"name": "no_dots"}, headers=h)
                assert r.json()["code"] == "invalid_params"
                # A's other methods are its own: its keys are not B's.
                a_keys = await a.registry.call("admin.apikeys.list", {})
                assert [k["name"] for k in a_keys["items"]] == ["admin"]

            def over_xmlrpc() -> None:
                with xmlrpc.client.ServerProxy(
                    f"{a_url}/rpc/xml", headers=[("Authorization", f"Bearer {a_key}")], use_builtin_types=True
                ) as proxy:
                    assert proxy.admin.domains.get("on-b.example")["max_users"] == 5
                    with pytest.raises(xmlrpc.client.Fault) as info:
                        proxy.admin.domains.create({"name": "on-b.example"})
                    assert info.value.faultCode == -32009
                    assert info.value.faultString.startswith("conflict: ")

            await asyncio.to_thread(over_xmlrpc)


async def test_bad_route_credentials_and_a_dead_remote(
    settings: Settings, b_settings: Settings, clock: FakeClock
) -> None:
    async with instance(b_settings, clock) as (_b, b_url, _key):
        wrong = ProviderRoute(
            methods="admin.domains.*",
            provider="remote",
            url=f"{b_url}/rpc/json",
            credentials=SecretStr("mr_bad"),
        )
        with pytest.raises(Unavailable, match="refused this server's credentials"):
            await RemoteClient(wrong, settings).call("admin.domains.list", {})
    dead = ProviderRoute(methods="admin", provider="remote", url=f"{b_url}/rpc/json")  # B has stopped
    with pytest.raises(Unavailable, match="does not answer"):
        await RemoteClient(dead, settings).call("admin.domains.list", {})


def test_remote_errors_map_back_to_the_same_classes() -> None:
    error: Any = domain_error(
        {"code": -32004, "message": "x", "data": {"code": "not_found", "detail": "gone", "kind": "d"}}
    )
    assert isinstance(error, NotFound)
    assert (error.message, error.data) == ("gone", {"kind": "d"})
    error = domain_error(
        {
            "code": -32602,
            "message": "Invalid params",
            "data": {
                "code": "invalid_params",
                "detail": "a: required",
                "errors": [{"loc": "a", "message": "required", "type": "missing"}],
            },
        }
    )
    assert isinstance(error, InvalidParams)
    assert [e.loc for e in error.errors] == ["a"]
    error = domain_error(
        {"code": -32029, "message": "slow", "data": {"code": "rate_limited", "retry_after": 9}}
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 9
    # Without a stable code only the specification's own numbers are trusted.
    assert domain_error({"code": -32009, "message": "dup"}).code == "internal_error"
    assert domain_error({"code": -32601, "message": "Method not found"}).code == "method_not_found"
    assert (
        domain_error({"code": 1, "message": "?", "data": {"code": "from_the_future"}}).code
        == "internal_error"
    )
    assert domain_error("nonsense").code == "unavailable"
