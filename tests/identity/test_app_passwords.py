"""App passwords: made, listed and revoked over REST and JSON-RPC; good only on the mail
protocols they name (SMTP submission over smtplib, nginx auth_http), never on the web/API
login; with TOTP on, the only way (with API keys) for a mail client to log in."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailroom.auth.principal import INTERNAL
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.store.identity_schema import app_passwords
from tests.conftest import problem
from tests.identity.conftest import PASSWORD, MakeTotpUser, TotpUser
from tests.mta.test_auth_http import nginx_headers
from tests.outbound.test_submission import run, session
from tests.rpc.conftest import jsonrpc

pytestmark = pytest.mark.anyio


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[int]:
    running: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


async def make_app_password(
    client: httpx.AsyncClient, user: TotpUser, protocols: list[str], name: str = "Thunderbird"
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/me/app-passwords", json={"name": name, "protocols": protocols}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def smtp_auth(port: int, user: str, secret: str) -> int:
    """AUTH PLAIN over STARTTLS; the reply code (235 accepted, 535 refused)."""
    with session(port) as client:
        try:
            client.login(user, secret)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code
        client.mail(user)
        client.rcpt("bob@remote.example")
        code, _ = client.data(
            f"From: {user}\r\nTo: bob@remote.example\r\nSubject: hi\r\n\r\nhello\r\n".encode()
        )
        assert code == 250
        return 235


async def test_create_list_revoke(
    client: httpx.AsyncClient, mailroom: Mailroom, signed_in: MakeTotpUser
) -> None:
    alice = await signed_in()
    made = await make_app_password(client, alice, ["smtp", "imap", "smtp"], name="  Phone  ")
    assert made["password"].startswith("mrapp_")
    assert made["name"] == "Phone"
    assert made["protocols"] == ["imap", "smtp"]
    listing = (await client.get("/api/v1/me/app-passwords", headers=alice.headers)).json()
    assert listing == [
        {
            "id": made["id"],
            "name": "Phone",
            "protocols": ["imap", "smtp"],
            "created_at": made["created_at"],
            "last_used_at": None,
            "last_ip": None,
        }
    ]
    async with mailroom.runtime.db.read() as tx:
        row = await tx.first(select(app_passwords))
    assert row is not None
    assert made["password"] not in str(row)
    assert len(row["digest"]) == 64
    # Someone else's id is not found; revoking twice is not found either.
    bob = await signed_in("bob@example.org")
    r = await client.delete(f"/api/v1/me/app-passwords/{made['id']}", headers=bob.headers)
    problem(r, 404, "not_found")
    r = await client.delete(f"/api/v1/me/app-passwords/{made['id']}", headers=alice.headers)
    assert r.status_code == 204
    problem(
        await client.delete(f"/api/v1/me/app-passwords/{made['id']}", headers=alice.headers), 404, "not_found"
    )
    assert (await client.get("/api/v1/me/app-passwords", headers=alice.headers)).json() == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "x", "protocols": []}, "app_password.protocols"),
        ({"name": "x", "protocols": ["ftp"]}, "app_password.protocols.0"),
        ({"name": " ", "protocols": ["smtp"]}, "app_password.name"),
        ({"name": "x" * 101, "protocols": ["smtp"]}, "app_password.name"),
        ({"protocols": ["smtp"]}, "app_password.name"),
    ],
)
async def test_validation(
    client: httpx.AsyncClient, signed_in: MakeTotpUser, body: dict[str, Any], loc: str
) -> None:
    alice = await signed_in()
    r = await client.post("/api/v1/me/app-passwords", json=body, headers=alice.headers)
    errors = problem(r, 422, "invalid_params")["errors"]
    assert loc in {e["loc"] for e in errors}, errors


async def test_never_for_the_web_or_api_login(client: httpx.AsyncClient, signed_in: MakeTotpUser) -> None:
    alice = await signed_in()
    made = await make_app_password(client, alice, ["smtp", "imap", "pop3", "jmap", "dav"])
    r = await client.post("/api/v1/login", json={"username": alice.email, "password": made["password"]})
    problem(r, 401, "unauthenticated")
    basic = "Basic " + base64.b64encode(f"{alice.email}:{made['password']}".encode()).decode()
    problem(await client.get("/api/v1/me/sessions", headers={"Authorization": basic}), 401, "unauthenticated")
    bearer = {"Authorization": f"Bearer {made['password']}"}
    problem(await client.get("/api/v1/me/sessions", headers=bearer), 401, "unauthenticated")


async def test_submission_takes_smtp_app_passwords_only(
    client: httpx.AsyncClient, clock: FakeClock, submission: int, signed_in: MakeTotpUser
) -> None:
    alice = await signed_in()
    smtp_app = await make_app_password(client, alice, ["smtp"])
    imap_app = await make_app_password(client, alice, ["imap"], name="imap only")
    assert await run(smtp_auth, submission, alice.email, smtp_app["password"]) == 235
    assert await run(smtp_auth, submission, alice.email, imap_app["password"]) == 535
    # Another user's address with alice's app password: refused.
    await signed_in("bob@example.org")
    assert await run(smtp_auth, submission, "bob@example.org", smtp_app["password"]) == 535
    listing = {
        a["id"]: a for a in (await client.get("/api/v1/me/app-passwords", headers=alice.headers)).json()
    }
    assert listing[smtp_app["id"]]["last_used_at"] is not None
    assert listing[smtp_app["id"]]["last_ip"] == "127.0.0.1"
    assert listing[imap_app["id"]]["last_used_at"] is None
    # Revoked: the next AUTH fails.
    await client.delete(f"/api/v1/me/app-passwords/{smtp_app['id']}", headers=alice.headers)
    assert await run(smtp_auth, submission, alice.email, smtp_app["password"]) == 535


async def test_with_totp_on_the_account_password_no_longer_submits(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    submission: int,
    signed_in: MakeTotpUser,
    totp_user: MakeTotpUser,
) -> None:
    bob = await signed_in("bob@example.org")
    assert await run(smtp_auth, submission, bob.email, PASSWORD) == 235
    alice = await totp_user()
    assert await run(smtp_auth, submission, alice.email, PASSWORD) == 535
    app = await make_app_password(client, alice, ["smtp"])
    assert await run(smtp_auth, submission, alice.email, app["password"]) == 235
    # An admin resets the second factor: the password submits again.
    await mailroom.registry.call("admin.users.reset_totp", {"email": alice.email})
    assert await run(smtp_auth, submission, alice.email, PASSWORD) == 235


async def test_nginx_auth_http_honours_protocols_and_the_second_factor(
    client: httpx.AsyncClient, mailroom: Mailroom, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    imap_app = await make_app_password(client, alice, ["imap"])

    async def status(secret: str, protocol: str) -> str:
        r = await client.get("/internal/auth/email", headers=nginx_headers(alice.email, secret, protocol))
        assert r.status_code == 200
        return r.headers["auth-status"]

    assert await status(imap_app["password"], "imap") == "OK"
    assert await status(imap_app["password"], "smtp") != "OK"
    assert await status(imap_app["password"], "pop3") != "OK"
    assert await status(PASSWORD, "imap") != "OK"
    await mailroom.registry.call("admin.users.reset_totp", {"email": alice.email})
    assert await status(PASSWORD, "imap") == "OK"


async def test_over_json_rpc(client: httpx.AsyncClient, signed_in: MakeTotpUser) -> None:
    alice = await signed_in()
    made = await jsonrpc(
        client,
        "mail.app_passwords.create",
        {"app_password": {"name": "K-9", "protocols": ["imap"]}},
        headers=alice.headers,
    )
    assert made["result"]["password"].startswith("mrapp_")
    listed = await jsonrpc(client, "mail.app_passwords.list", {}, headers=alice.headers)
    assert [a["name"] for a in listed["result"]] == ["K-9"]
    assert "password" not in listed["result"][0]
    bad = await jsonrpc(
        client,
        "mail.app_passwords.create",
        {"app_password": {"name": "x", "protocols": ["web"]}},
        headers=alice.headers,
    )
    assert bad["error"]["data"]["code"] == "invalid_params"
    gone = await jsonrpc(
        client, "mail.app_passwords.revoke", {"id": made["result"]["id"]}, headers=alice.headers
    )
    assert "error" not in gone
    again = await jsonrpc(
        client, "mail.app_passwords.revoke", {"id": made["result"]["id"]}, headers=alice.headers
    )
    assert again["error"]["data"]["code"] == "not_found"


async def test_dovecot_passdb_does_not_hand_out_the_password_of_a_totp_user(
    mailroom: Mailroom, signed_in: MakeTotpUser, totp_user: MakeTotpUser
) -> None:
    await signed_in("bob@example.org")
    alice = await totp_user()

    async def passdb(email: str) -> dict[str, Any]:
        found: dict[str, Any] = await mailroom.registry.call(
            "mail.dovecot.lookup", {"key": f"shared/passdb/imap/{email}"}, principal=INTERNAL
        )
        return found

    assert (await passdb("bob@example.org"))["found"] is True
    assert (await passdb(alice.email))["found"] is False
    await mailroom.registry.call("admin.users.reset_totp", {"email": alice.email})
    assert (await passdb(alice.email))["found"] is True


async def test_a_disabled_user_s_app_password_is_refused_but_their_api_key_works_with_totp(
    client: httpx.AsyncClient, mailroom: Mailroom, submission: int, totp_user: MakeTotpUser
) -> None:
    alice = await totp_user()
    app = await make_app_password(client, alice, ["smtp"])
    key = await mailroom.registry.call("admin.apikeys.create", {"key": {"name": "mua", "owner": alice.email}})
    # An API key is a generated secret too: it still submits with TOTP on (docs/auth.md).
    assert await run(smtp_auth, submission, alice.email, key["key"]) == 235
    await mailroom.registry.call("admin.users.update", {"email": alice.email, "changes": {"enabled": False}})
    assert await run(smtp_auth, submission, alice.email, app["password"]) == 535
