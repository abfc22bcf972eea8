"""The submission listener over real SMTP (smtplib) on loopback: STARTTLS, AUTH, sender checks."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.store import outbound as store
from mailroom.store.outbound_schema import outbound_queue
from tests.mailhelpers import create_user, message

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[int]:
    running: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def session(port: int, *, tls: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.ehlo("client.test")
    if tls:
        client.starttls(context=unverified())
        client.ehlo("client.test")
    return client


def login(client: smtplib.SMTP, user: str, password: str, mechanism: str = "PLAIN") -> tuple[int, bytes]:
    client.user, client.password = user, password
    auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
    return client.auth(mechanism, auth, initial_response_ok=mechanism == "PLAIN")


async def run(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


async def queued(mailroom: Mailroom) -> list[dict[str, Any]]:
    async with mailroom.runtime.db.read() as tx:
        return await tx.all(select(outbound_queue).order_by(outbound_queue.c.id))


async def test_authenticated_submission_over_starttls(mailroom: Mailroom, submission: int) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "dave@example.org")

    def conversation() -> tuple[Any, ...]:
        with session(submission) as client:
            auth = login(client, "alice@example.org", PASSWORD)
            client.mail("alice@example.org")
            rcpt_remote = client.rcpt("bob@remote.example")
            rcpt_local = client.rcpt("dave@example.org")
            rcpt_unknown = client.rcpt("ghost@example.org")
            data = client.data(message(sender="alice@example.org", to="bob@remote.example", message_id=None))
            return auth, rcpt_remote, rcpt_local, rcpt_unknown, data

    auth, rcpt_remote, rcpt_local, rcpt_unknown, data = await run(conversation)
    assert auth[0] == 235
    assert rcpt_remote[0] == 250
    assert rcpt_local[0] == 250
    assert rcpt_unknown[0] == 550
    assert data[0] == 250
    [row] = await queued(mailroom)
    assert data[1].decode().endswith(f"queued as {row['id']}")
    assert row["source"] == "submission"
    assert row["user_id"] == alice
    assert row["mail_from"] == "alice@example.org"
    async with mailroom.runtime.db.read() as tx:
        recipients = {r.address: r.status for r in await store.recipients(tx, row["id"])}
    assert recipients == {"bob@remote.example": "queued", "dave@example.org": "delivered"}
    assert row["email_id"] is not None  # the sent copy
    # The self-signed certificate was made in the data folder on first start.
    assert (mailroom.settings.data_dir / "tls" / "cert.pem").exists()


async def test_auth_login_and_api_keys_work(mailroom: Mailroom, submission: int) -> None:
    await create_user(mailroom, "alice@example.org")
    key = await mailroom.registry.call(
        "admin.apikeys.create", {"key": {"name": "mua", "owner": "alice@example.org"}}
    )

    def conversation() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        with session(submission) as client:
            by_login = login(client, "alice@example.org", PASSWORD, "LOGIN")
        with session(submission) as client:
            by_key = login(client, "alice@example.org", key["key"])
        return by_login, by_key

    by_login, by_key = await run(conversation)
    assert by_login[0] == 235
    assert by_key[0] == 235


async def test_wrong_password_is_535(mailroom: Mailroom, submission: int) -> None:
    await create_user(mailroom, "alice@example.org")

    def conversation() -> int:
        with session(submission) as client:
            try:
                login(client, "alice@example.org", "wrong")
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code
        return 0

    assert await run(conversation) == 535


async def test_nothing_before_auth(mailroom: Mailroom, submission: int) -> None:
    def conversation() -> tuple[int, bytes]:
        with session(submission) as client:
            return client.mail("alice@example.org")

    code, text = await run(conversation)
    assert code == 530
    assert b"Authentication required" in text


async def test_plaintext_is_refused(mailroom: Mailroom, submission: int) -> None:
    await create_user(mailroom, "alice@example.org")

    def conversation() -> tuple[tuple[int, bytes], tuple[int, bytes], bool]:
        with session(submission, tls=False) as client:
            advertised = client.has_extn("auth")
            auth = client.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==")
            mail = client.mail("alice@example.org")
            return auth, mail, advertised

    auth, mail, advertised = await run(conversation)
    assert not advertised
    assert auth[0] == 530
    assert mail[0] == 530
    assert b"STARTTLS" in mail[1]


async def test_envelope_sender_must_be_the_users(mailroom: Mailroom, submission: int) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "carol@example.org")
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "sales@example.org", "destinations": ["alice@example.org"]}},
    )
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "hr@example.org", "destinations": ["carol@example.org"]}},
    )

    def conversation() -> list[int]:
        codes = []
        with session(submission) as client:
            login(client, "alice@example.org", PASSWORD)
            for sender in (
                "carol@example.org",
                "hr@example.org",
                "someone@else.example",
                "sales@example.org",
            ):
                codes.append(client.mail(sender)[0])
                client.rset()
        return codes

    assert await run(conversation) == [553, 553, 553, 250]


async def test_allow_spoofing_sends_as_anyone(mailroom: Mailroom, submission: int) -> None:
    await create_user(mailroom, "alice@example.org", allow_spoofing=True)

    def conversation() -> int:
        with session(submission) as client:
            login(client, "alice@example.org", PASSWORD)
            return client.mail("newsletter@else.example")[0]

    assert await run(conversation) == 250


class TestLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"submission_rate_limit": "2/hour"}

    async def test_per_user_sending_rate_limit(self, mailroom: Mailroom, submission: int) -> None:
        await create_user(mailroom, "alice@example.org")

        def conversation() -> list[int]:
            codes = []
            with session(submission) as client:
                login(client, "alice@example.org", PASSWORD)
                for _ in range(3):
                    code = client.mail("alice@example.org")[0]
                    codes.append(code)
                    if code == 250:
                        client.rcpt("bob@remote.example")
                        client.data(
                            message(sender="alice@example.org", to="bob@remote.example", message_id=None)
                        )
            return codes

        assert await run(conversation) == [250, 250, 451]


class TestPlaintextLoopback:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"submission_allow_plaintext_loopback": True}

    async def test_loopback_may_skip_tls_when_allowed(self, mailroom: Mailroom, submission: int) -> None:
        await create_user(mailroom, "alice@example.org")

        def conversation() -> tuple[int, int]:
            with session(submission, tls=False) as client:
                auth = login(client, "alice@example.org", PASSWORD)[0]
                return auth, client.mail("alice@example.org")[0]

        assert await run(conversation) == (235, 250)
