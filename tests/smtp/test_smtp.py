"""Inbound SMTP over loopback with smtplib: RCPT-time resolution, one reply for DATA."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp._handler import smtp_reply
from mailroom.store.mail_schema import emails
from tests.mailhelpers import Transaction, create_user, message, smtp_send

pytestmark = pytest.mark.anyio


async def send(listeners: Listeners, mail_from: str, rcpts: list[str], raw: bytes) -> Transaction:
    return await asyncio.to_thread(smtp_send, listeners.ports["smtp"], mail_from, rcpts, raw)


async def count_emails(mailroom: Mailroom) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(emails)))


async def test_mail_for_local_users_is_stored(mailroom: Mailroom, listeners: Listeners) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "dave@example.org")
    out = await send(listeners, "bob@example.net", ["alice@example.org", "dave+lists@example.org"], message())
    assert [c for c, _ in out.rcpt] == [250, 250]
    assert out.data == [(250, "2.0.0 OK: message stored")]
    assert await count_emails(mailroom) == 2


async def test_relaying_is_refused_and_unknown_users_get_5_1_1(
    mailroom: Mailroom, listeners: Listeners
) -> None:
    await create_user(mailroom, "alice@example.org")
    out = await send(
        listeners, "spammer@example.net", ["victim@gmail.example", "ghost@example.org"], message()
    )
    assert [c for c, _ in out.rcpt] == [554, 550]
    assert out.rcpt[0][1].startswith("5.7.1 ")
    assert out.rcpt[1][1].startswith("5.1.1 ")
    assert out.data == []
    assert await count_emails(mailroom) == 0


async def test_a_declared_size_over_the_limit_is_refused_at_mail_from(
    mailroom: Mailroom, listeners: Listeners
) -> None:
    limit = mailroom.settings.max_message_bytes

    def declare() -> tuple[int, bytes]:
        client = smtplib.SMTP("127.0.0.1", listeners.ports["smtp"])
        try:
            client.ehlo("client.test")
            assert client.has_extn("size")
            return client.mail("bob@example.net", [f"SIZE={limit + 1}"])
        finally:
            client.quit()

    code, text = await asyncio.to_thread(declare)
    assert code == 552
    assert text.startswith(b"5.3.4 ")


async def test_a_temporary_failure_for_one_recipient_defers_the_message(
    mailroom: Mailroom, listeners: Listeners
) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "carol@example.org", quota_bytes=1500)
    out = await send(
        listeners, "bob@example.net", ["alice@example.org", "carol@example.org"], message(pad_to=3000)
    )
    assert out.data[0][0] == 452
    # The retry (with more room) stores carol's copy and does not duplicate alice's.
    await mailroom.registry.call(
        "admin.users.update", {"email": "carol@example.org", "changes": {"quota_bytes": 0}}
    )
    out = await send(
        listeners, "bob@example.net", ["alice@example.org", "carol@example.org"], message(pad_to=3000)
    )
    assert out.data[0][0] == 250
    assert await count_emails(mailroom) == 2


def test_one_reply_from_many() -> None:
    assert smtp_reply(["250 2.0.0 <a> delivered", "550 5.2.1 <b>: mailbox disabled"]).startswith("250 ")
    assert smtp_reply(["250 2.0.0 <a> delivered", "452 4.2.2 <b>: mailbox full"]).startswith("452 ")
    assert smtp_reply(["550 5.2.1 <b>: mailbox disabled"]).startswith("550 ")
