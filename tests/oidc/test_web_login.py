"""The web login through a real OpenID Connect provider: the whole code flow over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import problem
from tests.oidc.conftest import Browser
from tests.oidc.provider import Provider

pytestmark = pytest.mark.anyio


async def test_full_code_flow_gives_the_password_login_session(
    browser: Browser, provider: Provider, make_user: Any
) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    r = await browser.login("alice", next_path="/admin")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/admin"
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("mr_session=ms_") and "HttpOnly" in c for c in cookies), cookies
    assert "ms_" not in r.headers["location"]
    who = await browser.http.get(f"{browser.base}/web/session", headers={"X-CSRF-Token": browser.csrf()})
    assert who.status_code == 200
    assert who.json()["email"] == "alice@example.org"
    assert who.json()["is_admin"] is False
    # The cookie works on the API like a password login's (with the CSRF header).
    me = await browser.http.get(f"{browser.base}/api/v1/me/sessions", headers={"X-CSRF-Token": browser.csrf()})
    assert me.status_code == 200, me.text
    assert [s["current"] for s in me.json()] == [True]
