"""LMTP over loopback with smtplib: one reply per recipient after DATA (RFC 2033)."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.store.mail_schema import emails
from tests.mailhelpers import Transaction, create_user, lmtp_send, message

pytestmark = pytest.mark.anyio


async def send(listeners: Listeners, mail_from: str, rcpts: list[str], raw: bytes) -> Transaction:
    return await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], mail_from, rcpts, raw)


async def count_emails(mailroom: Mailroom) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(emails)))


@pytest.fixture
async def mailboxes(mailroom: Mailroom) -> dict[str, int]:
    return {
        "alice": await create_user(mailroom, "alice@example.org"),
        "carol": await create_user(mailroom, "carol@example.org", quota_bytes=2000),
    }


async def test_each_recipient_gets_its_own_reply(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int]
) -> None:
    raw = message(pad_to=5000)
    out = await send(
        listeners, "bob@example.net", ["alice@example.org", "nobody@example.org", "carol@example.org"], raw
    )
    assert [c for c, _ in out.rcpt] == [250, 550, 250]
    assert out.rcpt[1][1].startswith("5.1.1 ")
    # Two accepted recipients, two replies: alice stored, carol over quota (temporary).
    assert [c for c, _ in out.data] == [250, 452]
    assert out.data[0][1].startswith("2.0.0 <alice@example.org>")
    assert out.data[1][1].startswith("4.2.2 <carol@example.org>")
    assert await count_emails(mailroom) == 1


async def test_a_resent_message_is_acknowledged_without_a_duplicate(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int]
) -> None:
    raw = message()
    for _ in range(3):
        out = await send(listeners, "bob@example.net", ["alice@example.org"], raw)
        assert [c for c, _ in out.data] == [250]
    assert await count_emails(mailroom) == 1


async def test_many_messages_on_one_connection(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int]
) -> None:
    def session() -> list[Transaction]:
        client = smtplib.LMTP("127.0.0.1", listeners.ports["lmtp"])
        client.ehlo("client.test")
        try:
            return [
                lmtp_send(
                    0, "bob@example.net", ["alice@example.org"], message(message_id=f"<{i}@x>"), client=client
                )
                for i in range(30)
            ]
        finally:
            client.quit()

    results = await asyncio.to_thread(session)
    assert all(t.data == [(250, t.data[0][1])] for t in results)
    assert await count_emails(mailroom) == 30


async def test_too_big_is_552_per_recipient(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int]
) -> None:
    mailroom.runtime.settings = mailroom.runtime.settings.model_copy(update={"max_message_bytes": 4096})
    # The listener's limit was read at start; restart them with the new settings.
    await listeners.close()
    from mailroom.frontends.smtp import start_listeners

    mailroom.settings = mailroom.runtime.settings
    # Both on free ports: the settings' SMTP port (2525) may belong to another server here.
    small = await start_listeners(mailroom, smtp=("127.0.0.1", 0), lmtp=("127.0.0.1", 0))
    try:
        out = await asyncio.to_thread(
            lmtp_send,
            small.ports["lmtp"],
            "bob@example.net",
            ["alice@example.org", "carol@example.org"],
            message(pad_to=20_000),
        )
    finally:
        await small.close()
    assert [c for c, _ in out.data] == [552, 552]
    assert all(text.startswith("5.3.4 ") for _, text in out.data)
    assert await count_emails(mailroom) == 0


async def test_internal_errors_are_451_never_5xx(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    out_ok = await send(listeners, "bob@example.net", ["alice@example.org"], message(message_id="<first@x>"))
    assert [c for c, _ in out_ok.data] == [250]
    monkeypatch.setattr(mailroom.runtime.db, "write", broken)
    out = await send(listeners, "bob@example.net", ["alice@example.org", "alice@example.org"], message())
    assert [c for c, _ in out.data] == [451, 451]
    assert all(text.startswith("4.3.0 ") for _, text in out.data)
    monkeypatch.setattr(mailroom.runtime.db, "read", broken)
    out = await asyncio.to_thread(_rcpt_only, listeners.ports["lmtp"], "alice@example.org")
    assert out[0] == 451


def _rcpt_only(port: int, rcpt: str) -> tuple[int, bytes]:
    client = smtplib.LMTP("127.0.0.1", port)
    try:
        client.ehlo("client.test")
        client.mail("bob@example.net")
        return client.rcpt(rcpt)
    finally:
        client.quit()


async def test_bounces_with_a_null_sender_are_accepted(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int]
) -> None:
    out = await send(listeners, "<>", ["alice@example.org"], message())
    assert [c for c, _ in out.data] == [250]
    async with mailroom.runtime.db.read() as tx:
        assert await tx.scalar(select(emails.c.mail_from)) == ""


async def test_lmtp_refuses_helo_and_ehlo(listeners: Listeners) -> None:
    def greet() -> tuple[int, int]:
        client = smtplib.SMTP("127.0.0.1", listeners.ports["lmtp"])
        try:
            return client.helo("x")[0], client.ehlo("x")[0]
        finally:
            client.close()

    assert await asyncio.to_thread(greet) == (500, 500)
