"""One resolution per recipient and transaction: RCPT's is handed to DATA (issue 12 §3).

Real LMTP over loopback; the resolver is wrapped to count its calls, nothing else changes.
"""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import pytest
from sqlalchemy import select, update

from mailroom.bootstrap import Mailroom
from mailroom.delivery.resolve import Resolution
from mailroom.frontends.smtp import Listeners
from mailroom.services.mail import delivery
from mailroom.store.mail_schema import emails
from mailroom.store.schema import users
from tests.mailhelpers import Transaction, create_user, lmtp_send, message

pytestmark = pytest.mark.anyio


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The addresses the delivery service resolves, in order."""
    calls: list[str] = []
    original = delivery.resolve

    async def counting(tx: Any, address: str, **kwargs: Any) -> Resolution:
        calls.append(address)
        return await original(tx, address, **kwargs)

    monkeypatch.setattr(delivery, "resolve", counting)
    return calls


@pytest.fixture
async def mailboxes(mailroom: Mailroom) -> dict[str, int]:
    ids = {
        "alice": await create_user(mailroom, "alice@example.org"),
        "bob": await create_user(mailroom, "bob@example.org"),
    }
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "team@example.org", "destinations": ["alice@example.org"]}},
    )
    return ids


async def holders(mailroom: Mailroom, message_id: str) -> set[int]:
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.execute(
            select(emails.c.user_id).where(emails.c.message_id.in_([message_id, message_id.strip("<>")]))
        )
        return {int(r[0]) for r in rows}


async def test_a_transaction_resolves_each_recipient_once(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int], resolved: list[str]
) -> None:
    rcpts = ["alice@example.org", "team@example.org", "bob@example.org"]
    held_before = len(delivery._held)  # other tests' transactions that never reached DATA
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "x@example.net", rcpts, message(message_id="<once@x>")
    )
    assert [c for c, _ in out.data] == [250, 250, 250]
    assert resolved == rcpts  # at RCPT, and not again at DATA
    assert await holders(mailroom, "<once@x>") == {mailboxes["alice"], mailboxes["bob"]}
    assert len(delivery._held) == held_before  # DATA took them back


async def test_an_alias_changed_between_transactions_applies_to_the_next(
    mailroom: Mailroom, listeners: Listeners, mailboxes: dict[str, int], resolved: list[str]
) -> None:
    def first() -> tuple[smtplib.LMTP, Transaction]:
        client = smtplib.LMTP("127.0.0.1", listeners.ports["lmtp"])
        client.ehlo("client.test")
        return client, lmtp_send(
            0, "x@example.net", ["team@example.org"], message(message_id="<a@x>"), client=client
        )

    client, out = await asyncio.to_thread(first)
    try:
        assert [c for c, _ in out.data] == [250]
        await mailroom.registry.call(
            "admin.aliases.update",
            {"address": "team@example.org", "changes": {"destinations": ["bob@example.org"]}},
        )
        out = await asyncio.to_thread(
            lmtp_send, 0, "x@example.net", ["team@example.org"], message(message_id="<b@x>"), client=client
        )
        assert [c for c, _ in out.data] == [250]
    finally:
        await asyncio.to_thread(client.quit)
    assert await holders(mailroom, "<a@x>") == {mailboxes["alice"]}
    assert await holders(mailroom, "<b@x>") == {mailboxes["bob"]}
    assert resolved == ["team@example.org", "team@example.org"]


async def test_deliver_resolves_afresh_without_a_usable_handle(
    mailroom: Mailroom, mailboxes: dict[str, int], resolved: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    call = mailroom.registry.call

    async def deliver(message_id: str, rcpts: list[str], handles: list[str | None]) -> list[int]:
        statuses = await call(
            "mail.delivery.deliver",
            {
                "raw": message(message_id=message_id),
                "mail_from": "x@example.net",
                "recipients": rcpts,
                "handles": handles,
            },
        )
        return [s["code"] if isinstance(s, dict) else s.code for s in statuses]

    async def handle(address: str) -> str:
        result = await call("mail.delivery.check", {"address": address, "hold": True})
        value = result["handle"] if isinstance(result, dict) else result.handle
        assert isinstance(value, str)
        return value

    # Without hold, no handle (the submission listener's check keeps nothing).
    plain = await call("mail.delivery.check", {"address": "alice@example.org"})
    assert (plain["handle"] if isinstance(plain, dict) else plain.handle) is None

    # Unknown handle: resolved now.
    resolved.clear()
    assert await deliver("<u@x>", ["alice@example.org"], ["no-such-handle"]) == [250]
    assert resolved == ["alice@example.org"]

    # A handle given for another address is not taken for this one.
    h = await handle("team@example.org")
    resolved.clear()
    assert await deliver("<w@x>", ["bob@example.org"], [h]) == [250]
    assert resolved == ["bob@example.org"]
    assert await holders(mailroom, "<w@x>") == {mailboxes["bob"]}

    # A handle serves once: the second use resolves again.
    h = await handle("alice@example.org")
    resolved.clear()
    assert await deliver("<o1@x>", ["alice@example.org"], [h]) == [250]
    assert await deliver("<o2@x>", ["alice@example.org"], [h]) == [250]
    assert resolved == ["alice@example.org"]

    # Expired: resolved again.
    monkeypatch.setattr(delivery, "HOLD_SECONDS", -1.0)
    h = await handle("alice@example.org")
    resolved.clear()
    assert await deliver("<e@x>", ["alice@example.org"], [h]) == [250]
    assert resolved == ["alice@example.org"]
    monkeypatch.setattr(delivery, "HOLD_SECONDS", 600.0)

    # Bounded: the oldest are evicted.
    monkeypatch.setattr(delivery, "HOLD_MAX", 2)
    first = await handle("alice@example.org")
    for _ in range(3):
        await handle("bob@example.org")
    assert len(delivery._held) == 2
    resolved.clear()
    assert await deliver("<m@x>", ["alice@example.org"], [first]) == [250]
    assert resolved == ["alice@example.org"]


async def test_a_full_mailbox_left_out_at_rcpt_is_resolved_again_at_data(
    mailroom: Mailroom, mailboxes: dict[str, int]
) -> None:
    """RCPT leaves a full mailbox out of an alias; DATA must still see it (as before)."""
    await mailroom.registry.call(
        "admin.aliases.update",
        {
            "address": "team@example.org",
            "changes": {"destinations": ["alice@example.org", "bob@example.org"]},
        },
    )
    async with mailroom.runtime.db.write() as tx:
        await tx.execute(
            update(users)
            .where(users.c.email == "bob@example.org")
            .values(quota_bytes=100, quota_bytes_used=100)
        )
    result = await mailroom.registry.call(
        "mail.delivery.check", {"address": "team@example.org", "hold": True}
    )
    accepted = result["accepted"] if isinstance(result, dict) else result.accepted
    handle = result["handle"] if isinstance(result, dict) else result.handle
    assert accepted
    assert handle is None
