"""docs/auth.md, "Everywhere": a disabled user, a revoked app password and a reset second
factor take effect on REST, SMTP submission and IMAP alike — at once in the worker that made
the change and within ``auth_cache_seconds`` in every other worker (here: a second mailroom
on the same database, which is what another worker or host is)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import Unauthenticated
from mailroom.frontends.imap import start_imap
from mailroom.frontends.listeners import listening_socket
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.settings import Settings
from tests.conftest import Actor, started
from tests.identity.conftest import PASSWORD, MakeTotpUser
from tests.identity.test_app_passwords import smtp_auth
from tests.outbound.test_submission import run

pytestmark = pytest.mark.anyio

#: The bound under test (the default is 1 s; any value up to 60 behaves the same).
CACHE_SECONDS = 1.5


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"auth_cache_seconds": CACHE_SECONDS, "imap_allow_plaintext_loopback": True}


@dataclass
class Ports:
    submission: int
    imap: int


@pytest.fixture
async def ports(mailroom: Mailroom) -> AsyncIterator[Ports]:
    smtp: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    sock = listening_socket("127.0.0.1", 0)
    imap = await start_imap(mailroom, sock=sock, implicit_tls=False, tls_context=None)
    try:
        yield Ports(smtp.ports["submission"], sock.getsockname()[1])
    finally:
        imap.close()
        await smtp.close()


@pytest.fixture
async def other_worker(settings: Settings, clock: FakeClock, mailroom: Mailroom) -> AsyncIterator[Mailroom]:
    """Another worker: its own process state (auth cache) on the same database."""
    async with started(settings, clock) as other:
        yield other


def imap_login(port: int, user: str, secret: str) -> bool:
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        conn.login(user, secret)
    except imaplib.IMAP4.error:
        return False
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
    return True


async def rest_status(client: httpx.AsyncClient, **auth: Any) -> int:
    return (await client.get("/api/v1/me/keys", **auth)).status_code


async def app_password(
    call: Callable[..., Awaitable[Any]], who: Actor, protocols: list[str]
) -> dict[str, Any]:
    made: dict[str, Any] = await call(
        "mail.app_passwords.create", {"app_password": {"name": "Mail app", "protocols": protocols}}, as_=who
    )
    return made


async def test_a_disabled_user_is_refused_everywhere(
    make_user: Callable[..., Awaitable[Actor]],
    call: Callable[..., Awaitable[Any]],
    client: httpx.AsyncClient,
    ports: Ports,
    mailroom: Mailroom,
    other_worker: Mailroom,
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    assert alice.key is not None
    app = await app_password(call, alice, ["smtp", "imap"])
    basic = {"auth": ("alice@example.org", PASSWORD)}
    assert await rest_status(client, headers=alice.headers) == 200
    assert await rest_status(client, **basic) == 200
    for secret in (PASSWORD, app["password"], alice.key):
        assert await run(smtp_auth, ports.submission, alice.email, secret) == 235
    for secret in (PASSWORD, app["password"]):
        assert await run(imap_login, ports.imap, alice.email, secret)
    cached_at = time.monotonic()
    await other_worker.authenticator.bearer(alice.key, "127.0.0.1")  # now cached there

    await call("admin.users.update", {"email": alice.email, "changes": {"enabled": False}})

    # This worker: at once, on every protocol and with every kind of secret.
    assert await rest_status(client, headers=alice.headers) == 401
    assert await rest_status(client, **basic) == 401
    for secret in (PASSWORD, app["password"], alice.key):
        assert await run(smtp_auth, ports.submission, alice.email, secret) == 535
    for secret in (PASSWORD, app["password"]):
        assert not await run(imap_login, ports.imap, alice.email, secret)
    # Another worker: passwords and app passwords at once (never cached) ...
    with pytest.raises(Unauthenticated):
        await other_worker.authenticator.basic(alice.email, PASSWORD, "127.0.0.1", "imap")
    with pytest.raises(Unauthenticated):
        await other_worker.authenticator.basic(alice.email, app["password"], "127.0.0.1", "smtp")
    # ... its cached API key within auth_cache_seconds.
    if time.monotonic() - cached_at < CACHE_SECONDS:
        await other_worker.authenticator.bearer(alice.key, "127.0.0.1")  # still in the cache
    await asyncio.sleep(max(0.0, CACHE_SECONDS - (time.monotonic() - cached_at)) + 0.05)
    with pytest.raises(Unauthenticated):
        await other_worker.authenticator.bearer(alice.key, "127.0.0.1")


async def test_a_revoked_app_password_is_refused_everywhere_at_once(
    make_user: Callable[..., Awaitable[Actor]],
    call: Callable[..., Awaitable[Any]],
    ports: Ports,
    other_worker: Mailroom,
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    app = await app_password(call, alice, ["smtp", "imap"])
    assert await run(smtp_auth, ports.submission, alice.email, app["password"]) == 235
    assert await run(imap_login, ports.imap, alice.email, app["password"])
    await other_worker.authenticator.basic(alice.email, app["password"], "127.0.0.1", "imap")

    await call("mail.app_passwords.revoke", {"id": app["id"]}, as_=alice)

    assert await run(smtp_auth, ports.submission, alice.email, app["password"]) == 535
    assert not await run(imap_login, ports.imap, alice.email, app["password"])
    with pytest.raises(Unauthenticated):  # app passwords are never cached: no wait anywhere
        await other_worker.authenticator.basic(alice.email, app["password"], "127.0.0.1", "imap")
    # The account password is untouched.
    assert await run(smtp_auth, ports.submission, alice.email, PASSWORD) == 235


async def test_a_reset_second_factor_takes_effect_everywhere_at_once(
    totp_user: MakeTotpUser,
    client: httpx.AsyncClient,
    ports: Ports,
    mailroom: Mailroom,
    other_worker: Mailroom,
) -> None:
    alice = await totp_user()
    basic = {"auth": (alice.email, PASSWORD)}
    login = {"username": alice.email, "password": PASSWORD}
    # With TOTP on, the password alone opens nothing that cannot ask for a code.
    r = await client.post("/api/v1/login", json=login)
    assert (r.status_code, r.json()["code"]) == (401, "otp_required")
    assert await rest_status(client, **basic) == 401
    assert await run(smtp_auth, ports.submission, alice.email, PASSWORD) == 535
    assert not await run(imap_login, ports.imap, alice.email, PASSWORD)

    await mailroom.registry.call("admin.users.reset_totp", {"email": alice.email})

    assert (await client.post("/api/v1/login", json=login)).status_code == 200
    assert await rest_status(client, **basic) == 200
    assert await run(smtp_auth, ports.submission, alice.email, PASSWORD) == 235
    assert await run(imap_login, ports.imap, alice.email, PASSWORD)
    principal = await other_worker.authenticator.basic(alice.email, PASSWORD, "127.0.0.1", "smtp")
    assert principal.email == alice.email
