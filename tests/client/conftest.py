"""Helpers of the mail client API tests: sign-up domains, sessions over REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.auth.principal import Principal
from mailroom.bootstrap import Mailroom
from tests.conftest import Actor
from tests.conftest import problem as problem

PASSWORD = "Zq-unique-Pa55phrase-7731"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36"


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, user_agent: str = DESKTOP_UA
) -> httpx.Response:
    return await client.post(
        "/api/v1/login", json={"username": username, "password": password}, headers={"User-Agent": user_agent}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_locs(r: httpx.Response) -> set[str]:
    body = problem(r, 422, "invalid_params")
    return {e["loc"] for e in body["errors"]}


SessionUser = Callable[..., Awaitable[Actor]]


@pytest.fixture
def session_user(
    mailroom: Mailroom, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Actor]]
) -> SessionUser:
    """A user signed in with a session token (``Actor.key`` is the token, not an API key)."""

    async def _make(email: str = "alice@example.org", *, mobile: bool = False, **fields: Any) -> Actor:
        await make_user(email, password=PASSWORD, **fields)
        r = await login(client, email, user_agent=PHONE_UA if mobile else DESKTOP_UA)
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        principal: Principal = await mailroom.authenticator.bearer(token, "127.0.0.1")
        return Actor(email, principal, key=token, email=email, password=PASSWORD)

    return _make
