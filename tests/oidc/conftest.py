"""OpenID Connect fixtures: a real provider (tests/oidc/provider.py) and mailroom, each served
by uvicorn on a loopback port, and a browser-like login through both."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import uvicorn

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.web import build_app
from tests.oidc.provider import Provider

CLIENT_ID = "mailroom-web"
CLIENT_SECRET = "client-secret-for-the-tests-0123456789"


@pytest.fixture
def clock() -> FakeClock:
    # The provider stamps tokens with the real time; mailroom checks them with its clock.
    return FakeClock(datetime.now(UTC))


@pytest.fixture
async def provider(clock: FakeClock) -> AsyncIterator[Provider]:
    found = Provider()
    found.now = clock.timestamp
    async with found.serve() as running:
        yield running


@pytest.fixture
def oidc_settings() -> dict[str, Any]:
    """Override in a test module to change the OIDC settings."""
    return {}


@pytest.fixture
def settings_overrides(provider: Provider, oidc_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_provider_name": "Test IdP",
        "oidc_scopes": "openid email profile groups",
        "oidc_jwks_refresh_seconds": 0,
        **oidc_settings,
    }


@pytest.fixture
async def server(mailroom: Mailroom, provider: Provider) -> AsyncIterator[str]:
    """``http://127.0.0.1:<port>``: mailroom over real sockets, registered at the provider."""
    config = uvicorn.Config(build_app(mailroom), host="127.0.0.1", port=0, lifespan="off", log_config=None)
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    provider.add_client(CLIENT_ID, CLIENT_SECRET, [f"{base}/web/oidc/callback"])
    try:
        yield base
    finally:
        running.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Browser:
    """An httpx client that keeps cookies, as a browser would, and the last answers."""

    http: httpx.AsyncClient
    base: str

    async def start(self, next_path: str = "/") -> httpx.Response:
        """``/web/oidc/login`` → the provider's login form (the redirect followed)."""
        r = await self.http.get(
            f"{self.base}/web/oidc/login", params={"next": next_path}, follow_redirects=True
        )
        assert r.status_code == 200, r.text
        assert "<form" in r.text
        return r

    async def sign_in(
        self,
        form: httpx.Response,
        username: str,
        password: str,
        *,
        callback: Callable[[str], str] | None = None,
    ) -> httpx.Response:
        """Post the provider's form; follow its redirect to mailroom's callback (optionally
        changed by ``callback``, as an attacker would) and the callback's answer."""
        fields = {name: value.replace("&amp;", "&") for name, value in HIDDEN_INPUT.findall(form.text)}
        action = urljoin(str(form.url), "/authorize")
        r = await self.http.post(action, data={**fields, "username": username, "password": password})
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert location.startswith(f"{self.base}/web/oidc/callback?"), location
        if callback is not None:
            location = callback(location)
        return await self.http.get(location)

    async def login(
        self, username: str, password: str = "provider-password", next_path: str = "/"
    ) -> httpx.Response:
        return await self.sign_in(await self.start(next_path), username, password)

    def csrf(self) -> str:
        value = self.http.cookies.get("mr_csrf")
        assert value
        return value


@pytest.fixture
async def browser(server: str) -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield Browser(http, server)
