"""The web app's session cookie: set by POST /web/session, counted only with its CSRF header.

The cookie alone is anonymous (a cross-site form can send it, but not the header); a wrong
header is refused; Bearer clients are unaffected by any cookie; logout ends the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.http_auth import csrf_token
from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


async def _login(client: httpx.AsyncClient, **body: str) -> httpx.Response:
    return await client.post("/web/session", json=body)


@pytest.fixture
async def alice(make_user: Callable[..., Awaitable[Actor]]) -> Actor:
    return await make_user("alice@example.org", password=PASSWORD)


async def test_login_sets_httponly_strict_cookie_and_never_shows_the_token(
    client: httpx.AsyncClient, alice: Actor
) -> None:
    r = await _login(client, username="alice@example.org", password=PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == "alice@example.org"
    assert body["is_admin"] is False
    assert "token" not in body
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("mr_session="))
    csrf = next(c for c in cookies if c.startswith("mr_csrf="))
    token = session.split(";", 1)[0].split("=", 1)[1]
    assert token.startswith("ms_")
    assert token not in r.text
    assert "HttpOnly" in session
    assert "SameSite=strict" in session
    assert "Path=/" in session
    assert "HttpOnly" not in csrf
    assert "SameSite=strict" in csrf
    assert body["csrf_token"] == csrf.split(";", 1)[0].split("=", 1)[1]
    assert r.headers["cache-control"] == "no-store"


async def test_cookie_needs_the_csrf_header(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await _login(client, username="alice@example.org", password=PASSWORD)
    csrf = r.json()["csrf_token"]
    # The cookie alone (what a cross-site request carries) is anonymous.
    problem(await client.get("/api/v1/labels"), 401, "unauthenticated")
    # A wrong header is refused outright.
    problem(await client.get("/api/v1/labels", headers={"X-CSRF-Token": "0" * 64}), 403, "forbidden")
    # The right one works, for reads and writes, on REST and JSON-RPC alike.
    ok = await client.get("/api/v1/labels", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert any(label["name"] == "inbox" for label in ok.json())
    made = await client.post("/api/v1/labels", json={"name": "Work"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    rpc = await client.post(
        "/rpc",
        json={"jsonrpc": "2.0", "id": 1, "method": "mail.labels.list", "params": {}},
        headers={"X-CSRF-Token": csrf},
    )
    assert rpc.status_code == 200, rpc.text
    assert "result" in rpc.json(), rpc.text
    rpc_alone = await client.post(
        "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "mail.labels.list", "params": {}}
    )
    assert "error" in rpc_alone.json()


async def test_csrf_value_is_bound_to_the_token(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor
) -> None:
    r = await _login(client, username="alice@example.org", password=PASSWORD)
    secret = mailroom.settings.secret_key.get_secret_value()
    token = client.cookies["mr_session"]
    assert r.json()["csrf_token"] == csrf_token(secret, token)
    # Another (valid) session's CSRF value does not fit this cookie.
    other = csrf_token(secret, "ms_other_token")
    problem(await client.get("/api/v1/labels", headers={"X-CSRF-Token": other}), 403, "forbidden")


async def test_bearer_clients_are_unaffected_by_a_cookie(
    client: httpx.AsyncClient, alice: Actor, admin: Actor
) -> None:
    await _login(client, username="alice@example.org", password=PASSWORD)
    # With Authorization, the cookie is not looked at (no CSRF header needed, none checked).
    r = await client.get("/api/v1/domains", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1
    r = await client.get("/api/v1/domains", headers={**admin.headers, "X-CSRF-Token": "wrong"})
    assert r.status_code == 200, r.text


async def test_wrong_password_sets_no_cookie(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await _login(client, username="alice@example.org", password="not the password")
    problem(r, 401, "unauthenticated")
    assert "set-cookie" not in r.headers


async def test_login_must_be_json(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await client.post("/web/session", data={"username": "alice@example.org", "password": PASSWORD})
    problem(r, 400, "bad_request")
    assert "set-cookie" not in r.headers


async def test_session_status_and_logout(client: httpx.AsyncClient, alice: Actor) -> None:
    assert (await client.get("/web/session")).status_code == 204
    csrf = (await _login(client, username="alice@example.org", password=PASSWORD)).json()["csrf_token"]
    token = client.cookies["mr_session"]
    who = await client.get("/web/session", headers={"X-CSRF-Token": csrf})
    assert who.status_code == 200
    assert who.json()["email"] == "alice@example.org"
    out = await client.delete("/web/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert all("Max-Age=0" in c or "expires=" in c.lower() for c in out.headers.get_list("set-cookie"))
    # The session itself ended: its token no longer works anywhere.
    problem(
        await client.get("/api/v1/labels", headers={"Authorization": f"Bearer {token}"}),
        401,
        "unauthenticated",
    )


async def test_admin_key_login(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await _login(client, api_key=admin.key or "")
    assert r.status_code == 200, r.text
    assert r.json()["is_admin"] is True
    assert r.json()["kind"] == "apikey"
    assert admin.key not in r.text
    listed = await client.get("/api/v1/domains", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert listed.status_code == 200
    problem(await _login(client, api_key="mr_nope_nope"), 401, "unauthenticated")
    problem(await _login(client, api_key="ms_session_like"), 401, "unauthenticated")


async def test_manager_sees_what_they_manage(
    client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Actor]]
) -> None:
    await make_user("boss@example.org", password=PASSWORD, manages=("example.org",))
    await make_user("carol@other.example", password=PASSWORD)
    body: dict[str, Any] = (await _login(client, username="boss@example.org", password=PASSWORD)).json()
    assert body["managed_domains"] == ["example.org"]
    r = await client.get("/api/v1/domains", headers={"X-CSRF-Token": body["csrf_token"]})
    assert [d["name"] for d in r.json()["items"]] == ["example.org"]


async def test_an_ended_session_reads_as_nobody_and_loses_its_cookies(
    client: httpx.AsyncClient, alice: Actor
) -> None:
    csrf = (await _login(client, username="alice@example.org", password=PASSWORD)).json()["csrf_token"]
    token = client.cookies["mr_session"]
    await client.delete("/api/v1/logout", headers={"Authorization": f"Bearer {token}"})
    client.cookies.set("mr_session", token)
    r = await client.get("/web/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert any(c.startswith("mr_session=") for c in r.headers.get_list("set-cookie"))
