"""The LDAP back-end against a real OpenLDAP slapd (tests/ldap_server.py) on loopback.

Logins over REST, SMTP submission (smtplib, STARTTLS) and IMAP (imaplib); provisioning of
mailboxes from directory attributes; groups mapped to global admin and domain manager;
users disabled or out of the filter refused; the directory down answering a temporary
error while local users still log in; RFC 4515 escaping of the login; no password stored
or logged; LDAPS, StartTLS and direct bind.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import poplib
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.errors import Unauthenticated, Unavailable
from mailroom.frontends.imap import start_imap
from mailroom.frontends.listeners import listening_socket
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.certificate import server_context
from mailroom.frontends.smtp.submission import start_submission
from mailroom.settings import Settings
from mailroom.store.schema import aliases, managers, users
from tests.client.conftest import bearer, login
from tests.conftest import Actor, problem, started
from tests.ldap_server import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, running_slapd
from tests.mta.test_auth_http import nginx_headers
from tests.outbound.test_submission import run, session
from tests.pop3.conftest import Pop3Listeners, connect, pop3  # noqa: F401 (the pop3 fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ALICE_PASSWORD = "alice-Directory-pw-7731"
BOB_PASSWORD = "bob-Directory-pw-1408"
ADMINS = f"cn=mailadmins,{GROUPS}"
MANAGERS = f"cn=example-managers,{GROUPS}"


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path / "slapd") as server:
        alice = server.add_user(
            "alice",
            ALICE_PASSWORD,
            "alice@example.org",
            display_name="Alice Liddell",
            quota=5_000_000,
            aliases=("ali@example.org", "alice@elsewhere.test", "Liddell@Example.org"),
        )
        bob = server.add_user("bob", BOB_PASSWORD, "bob@example.org", cn="Bob Builder")
        server.add_group("mailadmins", [alice])
        server.add_group("example-managers", [bob])
        yield server


def ldap_settings(server: Slapd) -> dict[str, Any]:
    return {
        "ldap_url": server.tls_url,
        "ldap_ca_file": server.ca_file,
        "ldap_timeout_seconds": 2.0,
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": SERVICE_PASSWORD,
        "ldap_user_base": PEOPLE,
        "ldap_user_filter": "(&(objectClass=inetOrgPerson)(mail={login})(!(mailEnabled=FALSE)))",
        "ldap_provision": True,
        "ldap_quota_attribute": "mailQuota",
        "ldap_alias_attribute": "mailAlias",
        "ldap_group_base": GROUPS,
        "ldap_admin_groups": [ADMINS],
        "ldap_manager_groups": {MANAGERS: "example.org"},
    }


@pytest.fixture
def settings_overrides(slapd: Slapd) -> dict[str, Any]:
    return ldap_settings(slapd)


@pytest.fixture
async def domain(make_domain: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    await make_domain("example.org")


async def stored_user(mailroom: Mailroom, email: str) -> dict[str, Any] | None:
    async with mailroom.runtime.db.read() as tx:
        return await tx.first(select(users).where(users.c.email == email))


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[int]:
    running: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


@pytest.fixture
async def imap_port(mailroom: Mailroom) -> AsyncIterator[int]:
    context = await asyncio.to_thread(server_context, mailroom.settings)
    sock = listening_socket("127.0.0.1", 0)
    server = await start_imap(mailroom, sock=sock, implicit_tls=False, tls_context=context)
    try:
        yield sock.getsockname()[1]
    finally:
        server.close()


def smtp_login(port: int, user: str, password: str) -> tuple[int, str]:
    """AUTH PLAIN over STARTTLS; (reply code, text)."""
    with session(port) as client:
        try:
            client.login(user, password)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error.decode()
        client.mail(user)
        client.rcpt("carol@remote.example")
        code, _ = client.data(
            f"From: {user}\r\nTo: carol@remote.example\r\nSubject: hi\r\n\r\nhello\r\n".encode()
        )
        assert code == 250
        return 235, ""


def pop3_login(running: Pop3Listeners, user: str, password: str) -> str:
    """USER/PASS; the server's answer to PASS (+OK or -ERR ...)."""
    client = connect(running)
    try:
        client.user(user)
        answer = client.pass_(password).decode()
    except poplib.error_proto as error:
        answer = bytes(error.args[0]).decode()
    if answer.startswith("+OK"):
        client.quit()
    else:
        client.close()
    return answer


def imap_login(port: int, user: str, password: str) -> tuple[str, str]:
    """LOGIN; ("OK", "") or ("NO", the response text)."""
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        typ, _ = conn.login(user, password)
    except imaplib.IMAP4.error as error:
        conn.shutdown()
        return "NO", str(error)
    assert conn.select("INBOX")[0] == "OK"
    conn.logout()
    return typ, ""


async def test_rest_login_provisions_the_mailbox_from_the_directory(
    client: httpx.AsyncClient, mailroom: Mailroom, domain: None
) -> None:
    assert await stored_user(mailroom, "alice@example.org") is None
    r = await login(client, "Alice@Example.org", ALICE_PASSWORD)
    assert r.status_code == 200, r.text
    user = await stored_user(mailroom, "alice@example.org")
    assert user is not None
    assert user["auth_source"] == "ldap"
    assert user["display_name"] == "Alice Liddell"
    assert user["quota_bytes"] == 5_000_000
    assert ALICE_PASSWORD not in user["password_hash"]
    assert mailroom.runtime.passwords.verify(user["password_hash"], ALICE_PASSWORD).ok is False
    # Aliases: the addresses in local mail domains; elsewhere.test is not one of ours.
    async with mailroom.runtime.db.read() as tx:
        made = {row["address"]: row["destinations"] for row in await tx.all(select(aliases))}
    assert made == {"ali@example.org": ["alice@example.org"], "liddell@example.org": ["alice@example.org"]}
    # The session works like any other; the directory said alice is an administrator.
    me = await client.get("/api/v1/users/alice@example.org", headers=bearer(r.json()["token"]))
    assert me.status_code == 200, me.text
    assert (me.json()["display_name"], me.json()["auth_source"]) == ("Alice Liddell", "ldap")
    listed = await client.get("/api/v1/domains", headers=bearer(r.json()["token"]))
    assert listed.status_code == 200, listed.text  # global admins only
    principal = await mailroom.authenticator.login("alice@example.org", ALICE_PASSWORD, None, "127.0.0.1")
    assert principal.is_admin is True

    wrong = await login(client, "alice@example.org", "not-her-password")
    problem(wrong, 401, "unauthenticated")


async def test_concurrent_first_logins_make_one_mailbox(mailroom: Mailroom, domain: None) -> None:
    auth = mailroom.authenticator
    principals = await asyncio.gather(
        *(
            auth.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", p)
            for p in ("imap", "smtp", "pop3", "api")
        )
    )
    assert {p.user_id for p in principals} == {principals[0].user_id}
    assert principals[0].user_id is not None


async def test_no_mailbox_outside_mail_domains_or_without_provisioning(
    client: httpx.AsyncClient, mailroom: Mailroom, slapd: Slapd, settings: Settings
) -> None:
    # example.org does not exist here: mail domains stay in mailroom.
    problem(await login(client, "alice@example.org", ALICE_PASSWORD), 401, "unauthenticated")
    assert await stored_user(mailroom, "alice@example.org") is None
    async with started(settings.model_copy(update={"ldap_provision": False})) as app:
        await app.registry.call("admin.domains.create", {"domain": {"name": "example.org"}})
        with pytest.raises(Unauthenticated):
            await app.authenticator.login("alice@example.org", ALICE_PASSWORD, None, "127.0.0.1")
        assert await stored_user(app, "alice@example.org") is None


async def test_smtp_submission_imap_and_pop3_log_in_a_directory_user(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    domain: None,
    submission: int,
    imap_port: int,
    pop3: Pop3Listeners,  # noqa: F811
) -> None:
    # The first login may be on any protocol: IMAP provisions the mailbox here.
    assert await run(imap_login, imap_port, "bob@example.org", BOB_PASSWORD) == ("OK", "")
    assert await run(smtp_login, submission, "bob@example.org", BOB_PASSWORD) == (235, "")
    code, _ = await run(smtp_login, submission, "bob@example.org", ALICE_PASSWORD)
    assert code == 535
    assert (await run(pop3_login, pop3, "bob@example.org", BOB_PASSWORD)).startswith("+OK")
    assert (await run(pop3_login, pop3, "bob@example.org", "wrong")).startswith("-ERR [AUTH]")
    r = await client.get("/internal/auth/email", headers=nginx_headers("bob@example.org", BOB_PASSWORD))
    assert r.headers["auth-status"] == "OK"
    basic = base64.b64encode(f"bob@example.org:{BOB_PASSWORD}".encode()).decode()
    jmap = await client.get("/.well-known/jmap", headers={"Authorization": f"Basic {basic}"})
    assert jmap.status_code == 200, jmap.text
    assert jmap.json()["username"] == "bob@example.org"
    typ, text = await run(imap_login, imap_port, "bob@example.org", "wrong")
    assert typ == "NO"
    assert "AUTHENTICATIONFAILED" in text
    user = await stored_user(mailroom, "bob@example.org")
    assert user is not None
    assert user["display_name"] == "Bob Builder"  # cn without displayName
    assert user["quota_bytes"] == 1024**3  # no mailQuota: the default


async def test_groups_map_to_admin_and_manager_on_every_login(
    mailroom: Mailroom, slapd: Slapd, domain: None
) -> None:
    auth = mailroom.authenticator
    alice = await auth.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
    bob = await auth.basic("bob@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
    assert (alice.is_admin, alice.managed_domains) == (True, frozenset())
    assert (bob.is_admin, bob.managed_domains) == (False, frozenset({"example.org"}))
    # Membership changes in the directory apply at the next login.
    slapd.replace(ADMINS, "member", f"uid=bob,{PEOPLE}")
    slapd.modify(f"dn: {MANAGERS}\nchangetype: modify\nreplace: member\nmember: uid=alice,{PEOPLE}\n")
    alice = await auth.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
    bob = await auth.basic("bob@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
    assert (alice.is_admin, alice.managed_domains) == (False, frozenset({"example.org"}))
    assert (bob.is_admin, bob.managed_domains) == (True, frozenset())
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.all(
            select(managers.c.domain, users.c.email).join(users, users.c.id == managers.c.user_id)
        )
    assert [(r["domain"], r["email"]) for r in rows] == [("example.org", "alice@example.org")]


async def test_disabled_or_out_of_the_filter_is_refused(
    client: httpx.AsyncClient, mailroom: Mailroom, slapd: Slapd, domain: None, submission: int
) -> None:
    assert (await login(client, "bob@example.org", BOB_PASSWORD)).status_code == 200
    # Disabled in the directory: the filter leaves out mailEnabled=FALSE.
    slapd.modify(f"dn: uid=bob,{PEOPLE}\nchangetype: modify\nadd: mailEnabled\nmailEnabled: FALSE\n")
    problem(await login(client, "bob@example.org", BOB_PASSWORD), 401, "unauthenticated")
    code, _ = await run(smtp_login, submission, "bob@example.org", BOB_PASSWORD)
    assert code == 535
    slapd.replace(f"uid=bob,{PEOPLE}", "mailEnabled", "TRUE")
    assert (await login(client, "bob@example.org", BOB_PASSWORD)).status_code == 200
    # Out of the filter another way: the address moved away from the login.
    slapd.replace(f"uid=bob,{PEOPLE}", "mail", "robert@example.org")
    problem(await login(client, "bob@example.org", BOB_PASSWORD), 401, "unauthenticated")
    slapd.replace(f"uid=bob,{PEOPLE}", "mail", "bob@example.org")
    # Disabled in mailroom: refused although the directory says yes.
    await mailroom.registry.call(
        "admin.users.update", {"email": "bob@example.org", "changes": {"enabled": False}}
    )
    problem(await login(client, "bob@example.org", BOB_PASSWORD), 401, "unauthenticated")


async def test_directory_down_is_a_temporary_failure_and_local_users_log_in(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    slapd: Slapd,
    domain: None,
    make_user: Callable[..., Awaitable[Actor]],
    submission: int,
    imap_port: int,
    pop3: Pop3Listeners,  # noqa: F811
) -> None:
    await make_user("carol@example.org", password="carol-Local-pw-5521")
    assert (await login(client, "alice@example.org", ALICE_PASSWORD)).status_code == 200
    slapd.stop()
    r = await login(client, "alice@example.org", ALICE_PASSWORD)
    problem(r, 503, "unavailable")
    assert "directory" in r.json()["detail"]
    code, text = await run(smtp_login, submission, "alice@example.org", ALICE_PASSWORD)
    assert (code, text) == (454, "4.7.0 Temporary authentication failure")
    typ, text = await run(imap_login, imap_port, "alice@example.org", ALICE_PASSWORD)
    assert typ == "NO"
    assert "[UNAVAILABLE]" in text
    answer = await run(pop3_login, pop3, "alice@example.org", ALICE_PASSWORD)
    assert answer == "-ERR [SYS/TEMP] the user directory is unavailable, try again later"
    r = await client.get("/internal/auth/email", headers=nginx_headers("alice@example.org", ALICE_PASSWORD))
    assert r.headers["auth-status"] == "Temporary server problem, try again later"
    # Local users never ask the directory.
    assert (await login(client, "carol@example.org", "carol-Local-pw-5521")).status_code == 200
    assert await run(imap_login, imap_port, "carol@example.org", "carol-Local-pw-5521") == ("OK", "")
    slapd.start()
    assert (await login(client, "alice@example.org", ALICE_PASSWORD)).status_code == 200


async def test_a_directory_that_does_not_answer_times_out(
    mailroom: Mailroom, settings: Settings, domain: None
) -> None:
    # A listener that accepts and never answers (the TLS handshake waits for ever).
    silent = listening_socket("127.0.0.1", 0)
    port = silent.getsockname()[1]
    try:
        update = {"ldap_url": f"ldaps://127.0.0.1:{port}", "ldap_timeout_seconds": 0.3}
        async with started(settings.model_copy(update=update)) as app:
            loop = asyncio.get_running_loop()
            began = loop.time()
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            with pytest.raises(Unavailable):
                await app.authenticator.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
            ticker.cancel()
            assert loop.time() - began < 3
            assert ticks > 10  # the event loop went on while the directory was awaited
    finally:
        silent.close()


async def test_the_login_is_escaped_in_the_filter(mailroom: Mailroom, slapd: Slapd, domain: None) -> None:
    auth = mailroom.authenticator
    # Unescaped, (mail=*@example.org) would find alice alone and her password would bind.
    slapd.modify(f"dn: uid=bob,{PEOPLE}\nchangetype: delete\n")
    for login_name in ("*@example.org", "alice@example.org)(mail=*", "a*@example.org", "\\2a@example.org"):
        with pytest.raises(Unauthenticated):
            await auth.basic(login_name, ALICE_PASSWORD, "127.0.0.1", "imap")
    # An address with filter characters in it is found as itself.
    slapd.add_user("odd", "odd-Directory-pw-99", "o*d(d)@example.org")
    principal = await auth.basic("o*d(d)@example.org", "odd-Directory-pw-99", "127.0.0.1", "imap")
    assert principal.email == "o*d(d)@example.org"


async def test_an_empty_password_is_never_an_anonymous_bind(mailroom: Mailroom, domain: None) -> None:
    # RFC 4513 5.1.2: a simple bind with a DN and no password is an "unauthenticated" bind,
    # which some servers accept as anonymous (slapd answers unwillingToPerform): it is
    # refused before the directory is asked.
    with pytest.raises(Unauthenticated):
        await mailroom.authenticator.basic("alice@example.org", "", "127.0.0.1", "smtp")
    assert await stored_user(mailroom, "alice@example.org") is None


async def test_a_local_user_is_checked_locally_only(
    client: httpx.AsyncClient, make_user: Callable[..., Awaitable[Actor]], domain: None
) -> None:
    await make_user("alice@example.org", password="alice-Local-pw-3141")
    assert (await login(client, "alice@example.org", "alice-Local-pw-3141")).status_code == 200
    problem(await login(client, "alice@example.org", ALICE_PASSWORD), 401, "unauthenticated")


async def test_password_changes_are_refused_for_directory_users(
    client: httpx.AsyncClient, admin: Actor, domain: None
) -> None:
    r = await login(client, "alice@example.org", ALICE_PASSWORD)
    token = r.json()["token"]
    changed = await client.put(
        "/api/v1/me/password",
        json={"current_password": ALICE_PASSWORD, "new_password": "a-New-password-2718"},
        headers=bearer(token),
    )
    body = problem(changed, 409, "conflict")
    assert "LDAP directory" in body["detail"]
    by_admin = await client.patch(
        "/api/v1/users/alice@example.org", json={"password": "a-New-password-2718"}, headers=admin.headers
    )
    problem(by_admin, 409, "conflict")
    assert (await login(client, "alice@example.org", ALICE_PASSWORD)).status_code == 200
    problem(await login(client, "alice@example.org", "a-New-password-2718"), 401, "unauthenticated")


@pytest.mark.parametrize("mode", ["starttls", "direct-bind"])
async def test_starttls_and_direct_bind(mode: str, slapd: Slapd, settings: Settings) -> None:
    update: dict[str, Any] = {"ldap_url": slapd.url, "ldap_starttls": True}
    if mode == "direct-bind":
        # No service account: the user's own bind reads the entry (and the groups).
        update |= {
            "ldap_user_dn_template": f"uid={{localpart}},{PEOPLE}",
            "ldap_bind_dn": None,
            "ldap_bind_password": None,
            "ldap_admin_groups": [],
            "ldap_manager_groups": {},
        }
    async with started(settings.model_copy(update=update)) as app:
        await app.registry.call("admin.domains.create", {"domain": {"name": "example.org"}})
        principal = await app.authenticator.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
        assert principal.email == "alice@example.org"
        with pytest.raises(Unauthenticated):
            await app.authenticator.basic("alice@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
        if mode == "direct-bind":
            # A DN-special login is escaped (RFC 4514): no other entry is named.
            with pytest.raises(Unauthenticated):
                await app.authenticator.basic(f"bob,{PEOPLE}@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
            slapd.replace(f"uid=alice,{PEOPLE}", "mailEnabled", "FALSE")
            with pytest.raises(Unauthenticated):
                await app.authenticator.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")


@pytest.mark.parametrize(
    "update",
    [{"ldap_ca_file": None}, {"ldap_bind_password": SecretStr("not-the-service-password")}],
    ids=["untrusted-certificate", "wrong-service-password"],
)
async def test_a_misconfigured_directory_is_unavailable_not_a_wrong_password(
    update: dict[str, Any], slapd: Slapd, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(settings.model_copy(update=update)) as app:
        await app.registry.call("admin.domains.create", {"domain": {"name": "example.org"}})
        with pytest.raises(Unavailable):
            await app.authenticator.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
    assert "not-the-service-password" not in caplog.text


def test_plain_ldap_only_to_loopback_or_when_allowed(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "mode": "test", "secret_key": "test-secret-key-not-for-production"}
    Settings(**base, ldap_url="ldap://127.0.0.1:389")
    Settings(**base, ldap_url="ldap://localhost")
    Settings(**base, ldap_url="ldap://directory.example:389", ldap_starttls=True)
    Settings(**base, ldap_url="ldap://directory.example:389", ldap_allow_plaintext=True)
    with pytest.raises(ValidationError, match="in clear"):
        Settings(**base, ldap_url="ldap://directory.example:389")
    masked = Settings(**base, ldap_url="ldaps://directory.example", ldap_bind_password="s3cret-bind").masked()
    assert "s3cret-bind" not in repr(masked)


async def test_no_password_in_the_logs(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    slapd: Slapd,
    domain: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await login(client, "alice@example.org", ALICE_PASSWORD)).status_code == 200
    await login(client, "alice@example.org", "wrong-Secret-4242")
    slapd.stop()
    await login(client, "alice@example.org", ALICE_PASSWORD)
    text = caplog.text
    assert "mailroom.auth.ldap" in {r.name for r in caplog.records}
    for secret in (ALICE_PASSWORD, "wrong-Secret-4242", SERVICE_PASSWORD):
        assert secret not in text


async def test_the_brute_force_guard_counts_wrong_directory_passwords_only(
    client: httpx.AsyncClient, slapd: Slapd, domain: None
) -> None:
    # The directory down: failures that judged no password do not count (5/hour per network).
    slapd.stop()
    for i in range(8):
        problem(await login(client, "bob@example.org", f"{BOB_PASSWORD}-{i}"), 503, "unavailable")
    slapd.start()
    # Were they counted, the network would be locked out from the first of these on.
    for i in range(5):
        problem(await login(client, "bob@example.org", f"wrong-{i}"), 401, "unauthenticated")
    # Locked out before the directory is asked, even with the right password.
    problem(await login(client, "bob@example.org", BOB_PASSWORD), 429, "rate_limited")


async def test_an_admin_hands_a_local_user_to_the_directory_and_back(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    settings: Settings,
    admin: Actor,
    make_user: Callable[..., Awaitable[Actor]],
) -> None:
    # Without provisioning the directory checks only the users handed to it.
    bob = await make_user("bob@example.org", password="bob-Local-pw-6180", manages=("example.org",))
    manager = await client.patch(
        "/api/v1/users/bob@example.org", json={"auth_source": "ldap"}, headers=bob.headers
    )
    assert problem(manager, 403, "forbidden")["data"]["fields"] == ["auth_source"]
    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"auth_source": "ldap"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["auth_source"] == "ldap"
    async with started(settings.model_copy(update={"ldap_provision": False})) as app:
        auth = app.authenticator
        assert (
            await auth.basic("bob@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
        ).email == "bob@example.org"
        with pytest.raises(Unauthenticated):
            await auth.basic("bob@example.org", "bob-Local-pw-6180", "127.0.0.1", "imap")
        # Back to local: only with a new password.
        back = await client.patch(
            "/api/v1/users/bob@example.org", json={"auth_source": "local"}, headers=admin.headers
        )
        assert {e["loc"] for e in problem(back, 422, "invalid_params")["errors"]} == {"changes.password"}
        back = await client.patch(
            "/api/v1/users/bob@example.org",
            json={"auth_source": "local", "password": "bob-New-local-pw-1123"},
            headers=admin.headers,
        )
        assert back.json()["auth_source"] == "local"
        assert (await auth.basic("bob@example.org", "bob-New-local-pw-1123", "127.0.0.1", "imap")).email
        with pytest.raises(Unauthenticated):
            await auth.basic("bob@example.org", BOB_PASSWORD, "127.0.0.1", "imap")
