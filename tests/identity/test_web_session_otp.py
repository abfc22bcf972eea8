"""The web app's cookie login with a second factor: ``POST /web/session`` passes ``otp`` on.

Without the code the answer is 401 ``otp_required`` and no cookie; with the current code or
an unused recovery code it is a session cookie; a wrong code sets no cookie either.
"""

from __future__ import annotations

import httpx
import pytest

from mailroom.clock import FakeClock
from tests.conftest import problem
from tests.identity.conftest import PASSWORD, MakeTotpUser

pytestmark = pytest.mark.anyio


async def test_cookie_login_asks_for_the_code_then_accepts_it(
    client: httpx.AsyncClient, clock: FakeClock, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    r = await client.post("/web/session", json={"username": alice.email, "password": PASSWORD})
    problem(r, 401, "otp_required")
    assert "set-cookie" not in r.headers
    r = await client.post(
        "/web/session", json={"username": alice.email, "password": PASSWORD, "otp": "000000"}
    )
    problem(r, 401, "unauthenticated")
    assert "set-cookie" not in r.headers
    r = await client.post(
        "/web/session",
        json={"username": alice.email, "password": PASSWORD, "otp": alice.code(clock)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == alice.email
    assert any(c.startswith("mr_session=") for c in r.headers.get_list("set-cookie"))


async def test_cookie_login_with_a_recovery_code(client: httpx.AsyncClient, totp_user: MakeTotpUser) -> None:
    alice = await totp_user()
    code = alice.recovery_codes[0]
    body = {"username": alice.email, "password": PASSWORD, "otp": code}
    r = await client.post("/web/session", json=body)
    assert r.status_code == 200, r.text
    r = await client.post("/web/session", json=body)  # spent
    problem(r, 401, "unauthenticated")


async def test_a_malformed_code_is_a_validation_error(
    client: httpx.AsyncClient, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    r = await client.post("/web/session", json={"username": alice.email, "password": PASSWORD, "otp": ["x"]})
    assert r.status_code in (400, 422), r.text
    assert "set-cookie" not in r.headers
