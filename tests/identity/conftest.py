"""Helpers of the second-factor and app-password tests: a signed-in user who turns TOTP on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from mailroom.auth import totp
from mailroom.clock import FakeClock
from tests.client.conftest import PASSWORD, bearer, login
from tests.conftest import Actor

__all__ = ["PASSWORD", "TotpUser", "bearer", "login"]


@dataclass
class TotpUser:
    email: str
    token: str
    secret: str = ""
    recovery_codes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def code(self, clock: FakeClock) -> str:
        return totp.code_for(self.secret, clock.now())


MakeTotpUser = Callable[..., Awaitable[TotpUser]]


@pytest.fixture
def signed_in(client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Actor]]) -> MakeTotpUser:
    """A user with a session token (TOTP not on yet)."""

    async def _make(email: str = "alice@example.org", **fields: Any) -> TotpUser:
        await make_user(email, password=PASSWORD, **fields)
        r = await login(client, email)
        assert r.status_code == 200, r.text
        return TotpUser(email, r.json()["token"])

    return _make


@pytest.fixture
def totp_user(client: httpx.AsyncClient, clock: FakeClock, signed_in: MakeTotpUser) -> MakeTotpUser:
    """A signed-in user who set TOTP up and confirmed it over REST."""

    async def _make(email: str = "alice@example.org", **fields: Any) -> TotpUser:
        user = await signed_in(email, **fields)
        r = await client.post("/api/v1/me/totp", headers=user.headers)
        assert r.status_code == 200, r.text
        user.secret = r.json()["secret"]
        # The secret in the URI is the one returned.
        assert parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"] == [user.secret]
        r = await client.post(
            "/api/v1/me/totp/confirm", json={"code": user.code(clock)}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        user.recovery_codes = r.json()["recovery_codes"]
        clock.advance(30)  # the confirming code is spent: the next login needs the next one
        return user

    return _make
