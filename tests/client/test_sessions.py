"""mail.sessions.* and mail.password.change over REST: login, tokens, expiry, revocation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.store import sessions as session_store
from tests.client.conftest import (
    DESKTOP_UA,
    PASSWORD,
    PHONE_UA,
    SessionUser,
    bearer,
    error_locs,
    login,
    problem,
)
from tests.conftest import Actor
from tests.rpc.conftest import xmlrpc_call

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


async def test_login_returns_a_working_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    r = await login(client, "alice@example.org")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("ms_")
    assert body["email"] == "alice@example.org"
    assert set(body) == {"token", "exp_date", "refresh_token", "refresh_exp_date", "session_id", "email"}
    assert body["refresh_token"].startswith("msr_")
    me = await client.get("/api/v1/me/sessions", headers=bearer(body["token"]))
    assert me.status_code == 200
    [session] = me.json()
    assert session["id"] == body["session_id"]
    assert session["current"] is True
    assert session["user_agent"] == DESKTOP_UA
    assert session["mobile"] is False
    assert session["client_ip"] == "127.0.0.1"
    assert "token" not in session
    assert "digest" not in session


async def test_only_the_digest_is_stored(mailroom: Mailroom, session_user: SessionUser) -> None:
    alice = await session_user()
    assert alice.key is not None
    async with mailroom.runtime.db.read() as tx:
        row = await session_store.get_for_auth(tx, alice.principal.session_id or "")
    assert row is not None
    assert alice.key not in str(row)
    assert row.digest != alice.key
    assert len(row.digest) == 64


async def test_expiry_desktop_short_mobile_long(
    client: httpx.AsyncClient, make_user: MakeUser, clock: FakeClock, mailroom: Mailroom
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    now = clock.now()
    desktop = (await login(client, "alice@example.org")).json()
    phone = (await login(client, "alice@example.org", user_agent=PHONE_UA)).json()
    settings = mailroom.settings
    assert datetime.fromisoformat(desktop["exp_date"]) == now + timedelta(
        seconds=settings.session_ttl_seconds
    )
    assert datetime.fromisoformat(phone["exp_date"]) == now + timedelta(
        seconds=settings.mobile_session_ttl_seconds
    )
    clock.advance(settings.session_ttl_seconds + 1)
    r = await client.get("/api/v1/me/sessions", headers=bearer(desktop["token"]))
    problem(r, 401, "unauthenticated")
    r = await client.get("/api/v1/me/sessions", headers=bearer(phone["token"]))
    assert r.status_code == 200
    # The desktop session is still listed (and can be revoked): its refresh token can renew it.
    assert sorted(s["mobile"] for s in r.json()) == [False, True]
    clock.advance(settings.session_refresh_ttl_seconds)
    again = (await login(client, "alice@example.org", user_agent=PHONE_UA)).json()
    r = await client.get("/api/v1/me/sessions", headers=bearer(again["token"]))
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == [again["session_id"]]  # the ended sessions are gone


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice@example.org", "wrong password here"),
        ("nobody@example.org", PASSWORD),
        ("alice@nowhere.example", PASSWORD),
        ("not an address@", PASSWORD),
        ("alice", PASSWORD),  # no domain has sign-up enabled: bare names lead nowhere
    ],
)
async def test_failed_logins_are_generic(
    client: httpx.AsyncClient, make_user: MakeUser, username: str, password: str
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    body = problem(await login(client, username, password), 401, "unauthenticated")
    assert body["detail"] == "invalid or expired credentials"


async def test_login_validation(client: httpx.AsyncClient) -> None:
    assert error_locs(await client.post("/api/v1/login", json={"username": "a"})) == {"password"}
    assert error_locs(await client.post("/api/v1/login", json={"password": "x"})) == {"username"}
    r = await client.post("/api/v1/login", json={"username": "", "password": "x", "extra": 1})
    assert error_locs(r) == {"username", "extra"}


async def test_login_goes_through_the_brute_force_guard(
    client: httpx.AsyncClient, make_user: MakeUser, mailroom: Mailroom
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    assert mailroom.authenticator.guard is not None, "bootstrap installs the guard"
    statuses = []
    for i in range(8):
        r = await login(client, "alice@example.org", f"wrong password {i}")
        statuses.append(r.status_code)
    assert statuses[0] == 401
    assert statuses[-1] == 429
    # Locked out: even the right password is refused until the window passes.
    problem(await login(client, "alice@example.org"), 429, "rate_limited")


async def test_tampered_or_unknown_tokens(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    assert alice.key is not None
    lookup, rest = alice.key[3:11], alice.key[12:]
    tampered = f"ms_{lookup}_{rest[:-1]}{'A' if rest[-1] != 'A' else 'B'}"
    for token in (tampered, "ms_AAAAAAAA_" + "x" * 43, "ms_junk"):
        problem(await client.get("/api/v1/me/sessions", headers=bearer(token)), 401, "unauthenticated")


async def test_logout_revokes_the_presented_token(
    client: httpx.AsyncClient, session_user: SessionUser
) -> None:
    alice = await session_user()
    other = (await login(client, "alice@example.org")).json()["token"]
    r = await client.delete("/api/v1/logout", headers=alice.headers)
    assert r.status_code == 204
    problem(await client.get("/api/v1/me/sessions", headers=alice.headers), 401, "unauthenticated")
    # The other session goes on.
    r = await client.get("/api/v1/me/sessions", headers=bearer(other))
    assert r.status_code == 200
    assert len(r.json()) == 1


async def test_logout_needs_a_session(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)  # API key, not a session
    problem(await client.delete("/api/v1/logout", headers=alice.headers), 400, "bad_request")
    problem(await client.delete("/api/v1/logout"), 401, "unauthenticated")


async def test_revoke_a_session(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    second = (await login(client, "alice@example.org", user_agent=PHONE_UA)).json()
    listed = (await client.get("/api/v1/me/sessions", headers=alice.headers)).json()
    assert {s["id"] for s in listed} == {alice.principal.session_id, second["session_id"]}
    r = await client.delete(f"/api/v1/me/sessions/{second['session_id']}", headers=alice.headers)
    assert r.status_code == 204
    problem(await client.get("/api/v1/me/sessions", headers=bearer(second["token"])), 401, "unauthenticated")
    r = await client.delete(f"/api/v1/me/sessions/{second['session_id']}", headers=alice.headers)
    problem(r, 404, "not_found")
    problem(await client.delete("/api/v1/me/sessions/nosuchid", headers=alice.headers), 404, "not_found")


async def test_sessions_are_isolated(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    bob_listed = (await client.get("/api/v1/me/sessions", headers=bob.headers)).json()
    assert [s["id"] for s in bob_listed] == [bob.principal.session_id]
    r = await client.delete(f"/api/v1/me/sessions/{alice.principal.session_id}", headers=bob.headers)
    problem(r, 404, "not_found")
    # Alice's session still works.
    assert (await client.get("/api/v1/me/sessions", headers=alice.headers)).status_code == 200


async def test_password_change_revokes_other_sessions(
    client: httpx.AsyncClient, session_user: SessionUser
) -> None:
    alice = await session_user()
    other = (await login(client, "alice@example.org")).json()["token"]
    new = "An0ther-long-passphrase"
    r = await client.put(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked_sessions": 1}
    assert (await client.get("/api/v1/me/sessions", headers=alice.headers)).status_code == 200
    problem(await client.get("/api/v1/me/sessions", headers=bearer(other)), 401, "unauthenticated")
    problem(await login(client, "alice@example.org"), 401, "unauthenticated")
    assert (await login(client, "alice@example.org", new)).status_code == 200


async def test_password_change_validation(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    r = await client.put(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": "An0ther-long-passphrase"},
        headers=alice.headers,
    )
    assert error_locs(r) == {"current_password"}
    r = await client.put(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=alice.headers,
    )
    assert error_locs(r) == {"new_password"}
    assert (await client.get("/api/v1/me/sessions", headers=alice.headers)).status_code == 200


async def test_password_changed_by_an_admin_ends_every_session(
    client: httpx.AsyncClient, session_user: SessionUser, admin: Actor
) -> None:
    alice = await session_user()
    r = await client.patch(
        "/api/v1/users/alice@example.org",
        json={"password": "Admin-set-passphrase-1"},
        headers=admin.headers,
    )
    assert r.status_code == 200
    problem(await client.get("/api/v1/me/sessions", headers=alice.headers), 401, "unauthenticated")


async def test_disabled_or_deleted_users_lose_their_sessions(
    client: httpx.AsyncClient, session_user: SessionUser, admin: Actor
) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    r = await client.patch("/api/v1/users/alice@example.org", json={"enabled": False}, headers=admin.headers)
    assert r.status_code == 200
    problem(await client.get("/api/v1/me/sessions", headers=alice.headers), 401, "unauthenticated")
    assert (await client.delete("/api/v1/users/bob@example.org", headers=admin.headers)).status_code == 204
    problem(await client.get("/api/v1/me/sessions", headers=bob.headers), 401, "unauthenticated")


async def test_session_principal_is_the_user(mailroom: Mailroom, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org", manages=("example.org",))
    p = alice.principal
    assert p.kind == "user"
    assert p.email == "alice@example.org"
    assert p.session_id is not None
    assert p.managed_domains == frozenset({"example.org"})
    assert p.scopes is None


async def test_sessions_over_jsonrpc(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    r = await client.post(
        "/rpc/json",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "mail.sessions.login",
            "params": {"username": "alice@example.org", "password": PASSWORD},
        },
    )
    assert r.status_code == 200, r.text
    token = r.json()["result"]["token"]
    r = await client.post(
        "/rpc/json",
        json={"jsonrpc": "2.0", "id": 2, "method": "mail.sessions.list"},
        headers=bearer(token),
    )
    assert len(r.json()["result"]) == 1


async def test_sessions_over_xmlrpc(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    result = await xmlrpc_call(
        client, "mail.sessions.login", {"username": "alice@example.org", "password": PASSWORD}
    )
    assert isinstance(result["exp_date"], datetime)
    headers = bearer(result["token"])
    [session] = await xmlrpc_call(client, "mail.sessions.list", headers=headers)
    assert session["id"] == result["session_id"]
    assert await xmlrpc_call(client, "mail.sessions.logout", headers=headers) is None
    r = await client.get("/api/v1/me/sessions", headers=headers)
    problem(r, 401, "unauthenticated")


@pytest.mark.parametrize(
    "settings_overrides", [{"session_ttl_seconds": 120, "mobile_session_ttl_seconds": 600}]
)
async def test_lifetimes_are_settings(
    client: httpx.AsyncClient, make_user: MakeUser, clock: FakeClock
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    desktop = (await login(client, "alice@example.org")).json()
    ipad = (await login(client, "alice@example.org", user_agent="Mozilla/5.0 (iPad; CPU OS 17_0)")).json()
    assert datetime.fromisoformat(desktop["exp_date"]) == clock.now() + timedelta(seconds=120)
    assert datetime.fromisoformat(ipad["exp_date"]) == clock.now() + timedelta(seconds=600)
    clock.advance(121)
    problem(await client.get("/api/v1/me/sessions", headers=bearer(desktop["token"])), 401, "unauthenticated")
    assert (await client.get("/api/v1/me/sessions", headers=bearer(ipad["token"]))).status_code == 200


async def test_revoke_validation(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    assert error_locs(await client.delete("/api/v1/me/sessions/" + "x" * 17, headers=alice.headers)) == {"id"}
