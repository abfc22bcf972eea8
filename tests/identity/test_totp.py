"""TOTP second factor over REST and JSON-RPC: set-up, confirmation, login with a code or a
recovery code, replay, the brute-force guard, turning it off, the admin/manager reset."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
from sqlalchemy import select

from mailroom.auth import totp
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.store.identity_schema import totp_recovery_codes, user_totp
from tests.conftest import Actor, problem
from tests.identity.conftest import PASSWORD, MakeTotpUser, bearer, login
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


async def otp_login(client: httpx.AsyncClient, email: str, otp: str | None) -> httpx.Response:
    body = {"username": email, "password": PASSWORD} | ({"otp": otp} if otp is not None else {})
    return await client.post("/api/v1/login", json=body)


async def test_setup_returns_secret_uri_and_qr_and_stores_the_secret_encrypted(
    client: httpx.AsyncClient, mailroom: Mailroom, signed_in: MakeTotpUser
) -> None:
    alice = await signed_in()
    r = await client.post("/api/v1/me/totp", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    assert len(base64.b32decode(body["secret"])) == 20  # 160 bits
    uri = urlparse(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/example.org:alice@example.org"
    assert parse_qs(uri.query)["issuer"] == ["example.org"]
    assert body["qr_svg"].startswith("<svg")
    assert body["qr_svg"].rstrip().endswith("</svg>")
    # Not on until confirmed: the login still needs no code.
    status = (await client.get("/api/v1/me/totp", headers=alice.headers)).json()
    assert status == {"enabled": False, "pending": True, "confirmed_at": None, "recovery_codes_left": 0}
    assert (await login(client, alice.email)).status_code == 200
    async with mailroom.runtime.db.read() as tx:
        row = await tx.first(select(user_totp))
    assert row is not None
    assert body["secret"] not in str(row)
    assert mailroom.authenticator.totp_box is not None
    assert mailroom.authenticator.totp_box.open(row["user_id"], row["secret_encrypted"]) == body["secret"]
    # Sealed for this user only: another user id does not open it.
    assert mailroom.authenticator.totp_box.open(row["user_id"] + 1, row["secret_encrypted"]) is None


async def test_confirm_needs_the_current_code(
    client: httpx.AsyncClient, clock: FakeClock, signed_in: MakeTotpUser, mailroom: Mailroom
) -> None:
    alice = await signed_in()
    r = await client.post("/api/v1/me/totp/confirm", json={"code": "123456"}, headers=alice.headers)
    problem(r, 404, "not_found")  # nothing set up yet
    secret = (await client.post("/api/v1/me/totp", headers=alice.headers)).json()["secret"]
    stale = totp.code_for(secret, clock.now().replace(year=2020))
    r = await client.post("/api/v1/me/totp/confirm", json={"code": stale}, headers=alice.headers)
    assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "code"
    r = await client.post("/api/v1/me/totp/confirm", json={}, headers=alice.headers)
    problem(r, 422, "invalid_params")
    r = await client.post(
        "/api/v1/me/totp/confirm", json={"code": totp.code_for(secret, clock.now())}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert r.json()["enabled"] is True
    assert len(codes) == 10
    assert len(set(codes)) == 10
    async with mailroom.runtime.db.read() as tx:
        stored = await tx.all(select(totp_recovery_codes))
    assert len(stored) == 10
    assert not any(code in str(stored) for code in codes)  # digests only
    status = (await client.get("/api/v1/me/totp", headers=alice.headers)).json()
    assert status["enabled"] is True
    assert status["recovery_codes_left"] == 10
    # On: starting again is refused until it is turned off.
    problem(await client.post("/api/v1/me/totp", headers=alice.headers), 409, "conflict")
    r = await client.post(
        "/api/v1/me/totp/confirm", json={"code": totp.code_for(secret, clock.now())}, headers=alice.headers
    )
    problem(r, 409, "conflict")


async def test_login_needs_the_code_once_on(
    client: httpx.AsyncClient, clock: FakeClock, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    r = await otp_login(client, alice.email, None)
    body = problem(r, 401, "otp_required")
    assert "otp" in body["detail"]
    wrong = "000000" if alice.code(clock) != "000000" else "111111"
    problem(await otp_login(client, alice.email, wrong), 401, "unauthenticated")
    code = alice.code(clock)
    r = await otp_login(client, alice.email, code)
    assert r.status_code == 200, r.text
    assert r.json()["token"].startswith("ms_")
    # The same code again, within its 30 seconds: a replay, refused.
    problem(await otp_login(client, alice.email, code), 401, "unauthenticated")
    # A wrong password with a right code is still a wrong password (no otp_required hint).
    r = await client.post(
        "/api/v1/login",
        json={"username": alice.email, "password": "wrong-password", "otp": alice.code(clock)},
    )
    problem(r, 401, "unauthenticated")
    clock.advance(30)
    assert (await otp_login(client, alice.email, alice.code(clock))).status_code == 200
    # A code of the next step (a fast phone clock) is accepted; after it, the current step's
    # code, never used but older, is refused: only later steps count.
    clock.advance(30)
    ahead = totp.code_for(alice.secret, clock.now() + timedelta(seconds=30))
    assert (await otp_login(client, alice.email, ahead)).status_code == 200
    problem(await otp_login(client, alice.email, alice.code(clock)), 401, "unauthenticated")


async def test_recovery_codes_work_once(client: httpx.AsyncClient, totp_user: MakeTotpUser) -> None:
    alice = await totp_user()
    first, second = alice.recovery_codes[:2]
    r = await otp_login(client, alice.email, first.upper())  # case and dashes do not matter
    assert r.status_code == 200, r.text
    problem(await otp_login(client, alice.email, first), 401, "unauthenticated")
    assert (await otp_login(client, alice.email, second.replace("-", ""))).status_code == 200
    status = (await client.get("/api/v1/me/totp", headers=alice.headers)).json()
    assert status["recovery_codes_left"] == 8
    problem(await otp_login(client, alice.email, "aaaa-bbbb-cccc-dddd"), 401, "unauthenticated")


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": "3/hour"}])
async def test_wrong_codes_count_for_the_guard(
    client: httpx.AsyncClient, clock: FakeClock, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    good = alice.code(clock)
    wrong = [c for c in ("111111", "222222", "333333", "444444") if c != good][:3]
    for code in wrong:
        problem(await otp_login(client, alice.email, code), 401, "unauthenticated")
    # Locked out: even the right code is not looked at.
    problem(await otp_login(client, alice.email, good), 429, "rate_limited")


async def test_basic_auth_with_the_password_is_refused_once_totp_is_on(
    client: httpx.AsyncClient, signed_in: MakeTotpUser, totp_user: MakeTotpUser
) -> None:
    basic = "Basic " + base64.b64encode(f"bob@example.org:{PASSWORD}".encode()).decode()
    await signed_in("bob@example.org")
    r = await client.get("/api/v1/me/sessions", headers={"Authorization": basic})
    assert r.status_code == 200, r.text
    bob = await totp_user("carol@example.org")
    basic = "Basic " + base64.b64encode(f"{bob.email}:{PASSWORD}".encode()).decode()
    problem(await client.get("/api/v1/me/sessions", headers={"Authorization": basic}), 401, "unauthenticated")


async def test_turning_it_off_needs_a_current_code(
    client: httpx.AsyncClient, clock: FakeClock, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    r = await client.request("DELETE", "/api/v1/me/totp", params={"otp": "12"}, headers=alice.headers)
    assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "otp"
    problem(await client.delete("/api/v1/me/totp", headers=alice.headers), 422, "invalid_params")
    r = await client.delete("/api/v1/me/totp", params={"otp": alice.code(clock)}, headers=alice.headers)
    assert r.status_code == 204, r.text
    assert (await otp_login(client, alice.email, None)).status_code == 200
    r = await client.delete("/api/v1/me/totp", params={"otp": "123456"}, headers=alice.headers)
    problem(r, 404, "not_found")
    status = (await client.get("/api/v1/me/totp", headers=alice.headers)).json()
    assert status == {"enabled": False, "pending": False, "confirmed_at": None, "recovery_codes_left": 0}


async def test_admins_and_managers_reset_it_and_the_audit_log_says_who(
    client: httpx.AsyncClient, mailroom: Mailroom, make_user: MakeUser, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user("alice@example.org")
    carol = await totp_user("carol@other.test")
    manager = await make_user("mgr@example.org", manages=("example.org",))
    # A manager of another domain does not see carol; a plain user cannot reset.
    r = await client.delete("/api/v1/users/carol@other.test/totp", headers=manager.headers)
    problem(r, 404, "not_found")
    r = await client.delete("/api/v1/users/carol@other.test/totp", headers=alice.headers)
    assert r.status_code in (403, 404)
    r = await client.delete("/api/v1/users/alice@example.org/totp", headers=manager.headers)
    assert r.status_code == 204, r.text
    assert (await otp_login(client, alice.email, None)).status_code == 200
    problem(await otp_login(client, carol.email, None), 401, "otp_required")
    listing = await mailroom.registry.call("admin.audit.list", {"method": "admin.users.reset_totp"})
    [entry] = listing["items"]
    assert entry["principal"].startswith("key:")
    assert "mgr@example.org" in entry["principal"]
    assert entry["target"] == "alice@example.org"
    assert entry["domain"] == "example.org"
    assert entry["protocol"] == "rest"


async def test_a_manager_cannot_reset_a_global_admin(
    client: httpx.AsyncClient, make_user: MakeUser, totp_user: MakeTotpUser
) -> None:
    await totp_user("root@example.org", global_admin=True)
    manager = await make_user("mgr@example.org", manages=("example.org",))
    r = await client.delete("/api/v1/users/root@example.org/totp", headers=manager.headers)
    problem(r, 403, "forbidden")


async def test_the_whole_flow_over_json_rpc(
    client: httpx.AsyncClient, clock: FakeClock, signed_in: MakeTotpUser
) -> None:
    alice = await signed_in()
    setup = await jsonrpc(client, "mail.totp.setup", {}, headers=alice.headers)
    secret = setup["result"]["secret"]
    bad = await jsonrpc(client, "mail.totp.confirm", {"code": "x"}, headers=alice.headers)
    assert bad["error"]["data"]["code"] == "invalid_params"
    done = await jsonrpc(
        client, "mail.totp.confirm", {"code": totp.code_for(secret, clock.now())}, headers=alice.headers
    )
    assert len(done["result"]["recovery_codes"]) == 10
    clock.advance(30)
    needed = await jsonrpc(client, "mail.sessions.login", {"username": alice.email, "password": PASSWORD})
    assert needed["error"]["code"] == -32001
    assert needed["error"]["data"]["code"] == "otp_required"
    ok = await jsonrpc(
        client,
        "mail.sessions.login",
        {"username": alice.email, "password": PASSWORD, "otp": totp.code_for(secret, clock.now())},
    )
    assert ok["result"]["token"].startswith("ms_")
    token = ok["result"]["token"]
    clock.advance(30)
    off = await jsonrpc(
        client, "mail.totp.disable", {"otp": totp.code_for(secret, clock.now())}, headers=bearer(token)
    )
    assert "error" not in off, off
    ok = await jsonrpc(client, "mail.sessions.login", {"username": alice.email, "password": PASSWORD})
    assert "result" in ok


async def test_no_secret_or_code_reaches_the_logs(
    client: httpx.AsyncClient, clock: FakeClock, totp_user: MakeTotpUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    alice = await totp_user()
    code = alice.code(clock)
    assert (await otp_login(client, alice.email, code)).status_code == 200
    problem(await otp_login(client, alice.email, code), 401, "unauthenticated")  # replay, logged or not
    assert (await otp_login(client, alice.email, alice.recovery_codes[0])).status_code == 200
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert alice.secret not in text
    assert code not in text
    assert not any(c in text for c in alice.recovery_codes)
