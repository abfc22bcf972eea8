"""mail.sessions.refresh: renewing a session without the password, with single-use refresh tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from tests.client.conftest import PASSWORD, PHONE_UA, bearer, error_locs, login, problem
from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


async def refresh(
    client: httpx.AsyncClient, token: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/api/v1/sessions/refresh", json={"refresh_token": token}, headers=headers)


async def works(client: httpx.AsyncClient, token: str) -> bool:
    r = await client.get("/api/v1/me/sessions", headers=bearer(token))
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


@pytest.fixture
async def session(client: httpx.AsyncClient, make_user: MakeUser) -> dict[str, Any]:
    await make_user("alice@example.org", password=PASSWORD)
    r = await login(client, "alice@example.org")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_refresh_renews_the_session_after_its_token_expired(
    client: httpx.AsyncClient, session: dict[str, Any], clock: FakeClock, mailroom: Mailroom
) -> None:
    settings = mailroom.settings
    assert datetime.fromisoformat(session["refresh_exp_date"]) == clock.now() + timedelta(
        seconds=settings.session_refresh_ttl_seconds
    )
    clock.advance(settings.session_ttl_seconds + 60)  # the hourly token has expired
    assert not await works(client, session["token"])
    r = await refresh(client, session["refresh_token"])
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert set(renewed) == {"token", "exp_date", "refresh_token", "refresh_exp_date", "session_id", "email"}
    assert renewed["session_id"] == session["session_id"]  # the same session, renewed
    assert renewed["email"] == "alice@example.org"
    assert renewed["token"].startswith(f"ms_{session['session_id']}_")
    assert renewed["token"] != session["token"]
    assert renewed["refresh_token"] != session["refresh_token"]
    assert datetime.fromisoformat(renewed["exp_date"]) == clock.now() + timedelta(
        seconds=settings.session_ttl_seconds
    )
    assert await works(client, renewed["token"])
    [listed] = (await client.get("/api/v1/me/sessions", headers=bearer(renewed["token"]))).json()
    assert listed["id"] == session["session_id"]
    assert datetime.fromisoformat(listed["refresh_expires_at"]) == datetime.fromisoformat(
        renewed["refresh_exp_date"]
    )
    # And again with the new refresh token: a client in use is never logged out.
    clock.advance(settings.session_ttl_seconds * 5)
    again = await refresh(client, renewed["refresh_token"])
    assert again.status_code == 200
    assert await works(client, again.json()["token"])


async def test_the_old_token_stops_at_a_refresh(client: httpx.AsyncClient, session: dict[str, Any]) -> None:
    assert await works(client, session["token"])
    renewed = (await refresh(client, session["refresh_token"])).json()
    assert not await works(client, session["token"])
    assert await works(client, renewed["token"])


async def test_a_mobile_session_keeps_its_lifetime(
    client: httpx.AsyncClient, make_user: MakeUser, clock: FakeClock, mailroom: Mailroom
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    phone = (await login(client, "alice@example.org", user_agent=PHONE_UA)).json()
    renewed = (await refresh(client, phone["refresh_token"])).json()
    assert datetime.fromisoformat(renewed["exp_date"]) == clock.now() + timedelta(
        seconds=mailroom.settings.mobile_session_ttl_seconds
    )


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, session: dict[str, Any], clock: FakeClock, mailroom: Mailroom
) -> None:
    clock.advance(mailroom.settings.session_refresh_ttl_seconds)
    body = problem(await refresh(client, session["refresh_token"]), 401, "unauthenticated")
    assert body["detail"] == "invalid or expired credentials"


async def test_a_reused_refresh_token_ends_the_session(
    client: httpx.AsyncClient, session: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    renewed = (await refresh(client, session["refresh_token"])).json()
    # The first refresh token again (an attacker's copy, or the victim after the attacker):
    problem(await refresh(client, session["refresh_token"]), 401, "unauthenticated")
    # ... and the whole session is over, for whoever holds its newer tokens too.
    assert not await works(client, renewed["token"])
    problem(await refresh(client, renewed["refresh_token"]), 401, "unauthenticated")
    assert f"refresh token of session {session['session_id']} was presented again" in caplog.text
    assert session["refresh_token"] not in caplog.text
    assert renewed["refresh_token"].split("_", 2)[2] not in caplog.text


async def test_logout_and_revocation_end_refreshing(
    client: httpx.AsyncClient, session: dict[str, Any], make_user: MakeUser
) -> None:
    assert (await client.delete("/api/v1/logout", headers=bearer(session["token"]))).status_code == 204
    problem(await refresh(client, session["refresh_token"]), 401, "unauthenticated")
    other = (await login(client, "alice@example.org")).json()
    third = (await login(client, "alice@example.org")).json()
    r = await client.delete(f"/api/v1/me/sessions/{other['session_id']}", headers=bearer(third["token"]))
    assert r.status_code == 204
    problem(await refresh(client, other["refresh_token"]), 401, "unauthenticated")


async def test_a_password_change_elsewhere_ends_refreshing(
    client: httpx.AsyncClient, session: dict[str, Any], mailroom: Mailroom
) -> None:
    await mailroom.registry.call(
        "admin.users.update", {"email": "alice@example.org", "changes": {"password": "An0ther-Pa55phrase-99"}}
    )
    problem(await refresh(client, session["refresh_token"]), 401, "unauthenticated")


async def test_a_disabled_account_cannot_refresh(
    client: httpx.AsyncClient, session: dict[str, Any], mailroom: Mailroom
) -> None:
    await mailroom.registry.call(
        "admin.users.update", {"email": "alice@example.org", "changes": {"enabled": False}}
    )
    problem(await refresh(client, session["refresh_token"]), 401, "unauthenticated")


async def test_another_user_cannot_use_it(
    client: httpx.AsyncClient, session: dict[str, Any], make_user: MakeUser
) -> None:
    await make_user("bob@example.org", password=PASSWORD)
    bob = (await login(client, "bob@example.org")).json()
    # Signed in as bob, alice's refresh token is refused, and not spent.
    problem(await refresh(client, session["refresh_token"], bearer(bob["token"])), 401, "unauthenticated")
    assert await works(client, bob["token"])
    r = await refresh(client, session["refresh_token"])
    assert r.status_code == 200
    assert r.json()["email"] == "alice@example.org"


async def test_tokens_are_not_interchangeable(client: httpx.AsyncClient, session: dict[str, Any]) -> None:
    # A refresh token is no bearer credential, and a session token renews nothing.
    problem(
        await client.get("/api/v1/me/sessions", headers=bearer(session["refresh_token"])),
        401,
        "unauthenticated",
    )
    problem(await refresh(client, session["token"]), 401, "unauthenticated")
    lookup, rest = session["refresh_token"][4:12], session["refresh_token"][13:]
    tampered = f"msr_{lookup}_{rest[:-1]}{'A' if rest[-1] != 'A' else 'B'}"
    for token in (tampered, "msr_AAAAAAAA_" + "x" * 43, "msr_junk"):
        problem(await refresh(client, token), 401, "unauthenticated")
    # None of these spent the real one.
    assert (await refresh(client, session["refresh_token"])).status_code == 200


async def test_validation(client: httpx.AsyncClient) -> None:
    assert error_locs(await client.post("/api/v1/sessions/refresh", json={})) == {"refresh_token"}
    assert error_locs(await refresh(client, "")) == {"refresh_token"}
    assert error_locs(await refresh(client, "msr_" + "x" * 400)) == {"refresh_token"}
    assert error_locs(await refresh(client, 42)) == {"refresh_token"}
    r = await client.post("/api/v1/sessions/refresh", json={"refresh_token": "x", "token": "y"})
    assert error_locs(r) == {"token"}


async def test_over_json_rpc(client: httpx.AsyncClient, session: dict[str, Any]) -> None:
    reply = await jsonrpc(client, "mail.sessions.refresh", {"refresh_token": session["refresh_token"]})
    assert reply["result"]["session_id"] == session["session_id"]
    assert await works(client, reply["result"]["token"])
    reply = await jsonrpc(client, "mail.sessions.refresh", {"refresh_token": session["refresh_token"]})
    assert reply["error"]["data"]["code"] == "unauthenticated"
