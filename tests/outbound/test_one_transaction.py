"""Several recipients of one message on one next hop go out in one SMTP transaction, and every
queue entry records the message's Message-ID (issue 11 §8).

The relay is a real aiosmtpd server on loopback (the ``sink`` fixture): it sees the MAIL FROM,
every RCPT and one DATA per transaction.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.queue import OutboundQueue
from mailroom.store.outbound_schema import outbound_queue, outbound_recipients
from tests.mailhelpers import create_user, message
from tests.outbound.conftest import Sink
from tests.outbound.test_intents import arrive

pytestmark = pytest.mark.anyio

PARTNER = ["a@partner.example", "b@partner.example", "c@partner.example"]


async def queue_rows(mailroom: Mailroom) -> list[dict[str, Any]]:
    async with mailroom.runtime.db.read() as tx:
        return await tx.all(select(outbound_queue).order_by(outbound_queue.c.id))


async def statuses(mailroom: Mailroom, queue_id: int) -> dict[str, str]:
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.all(
            select(outbound_recipients.c.address, outbound_recipients.c.status).where(
                outbound_recipients.c.queue_id == queue_id
            )
        )
    return {str(r["address"]): str(r["status"]) for r in rows}


@pytest.fixture
async def partner(mailroom: Mailroom, settings_overrides: dict[str, Any]) -> None:
    """A relayed domain whose smarthost is the sink."""
    port = settings_overrides["relay_port"]
    await mailroom.registry.call(
        "admin.relays.create", {"relay": {"name": "partner.example", "smarthost": f"127.0.0.1:{port}"}}
    )


@pytest.mark.usefixtures("partner")
async def test_relay_recipients_of_one_message_share_one_transaction(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    raw = message(to=", ".join(PARTNER), message_id="<many@remote.example>")
    replies = await arrive(mailroom, raw, PARTNER)
    assert [r["code"] for r in replies] == [250, 250, 250]
    await queue.run_once()
    assert sink.data_attempts == 1
    [got] = sink.messages
    assert got.rcpt_tos == PARTNER
    assert got.mail_from == "bob@remote.example"
    assert got.content == raw
    [entry] = await queue_rows(mailroom)
    assert entry["source"] == "relay"
    assert entry["message_id"] == "<many@remote.example>"
    assert await statuses(mailroom, int(entry["id"])) == dict.fromkeys(PARTNER, "delivered")


@pytest.mark.usefixtures("partner")
async def test_per_recipient_failures_stay_per_recipient(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, clock: FakeClock
) -> None:
    sink.rcpt_replies["b@partner.example"] = "550 5.1.1 no such user"
    sink.rcpt_replies["c@partner.example"] = "450 4.2.1 try later"
    await arrive(mailroom, message(to="a@partner.example", message_id="<mixed@remote.example>"), PARTNER)
    await queue.run_once()
    assert sink.data_attempts == 1
    [got] = sink.messages
    assert got.rcpt_tos == ["a@partner.example"]  # the refused ones were never given the data
    entry, dsn = await queue_rows(mailroom)
    assert await statuses(mailroom, int(entry["id"])) == {
        "a@partner.example": "delivered",
        "b@partner.example": "failed",
        "c@partner.example": "deferred",
    }
    # The one failure bounces to the sender, and the DSN's entry has its own Message-ID.
    assert dsn["source"] == "dsn"
    assert dsn["message_id"]
    assert dsn["message_id"].startswith("<")
    assert dsn["message_id"] != entry["message_id"]
    # The retry sends only the deferred recipient.
    del sink.rcpt_replies["c@partner.example"]
    clock.advance(3600)
    await queue.run_once()
    assert sink.messages[-1].rcpt_tos == ["c@partner.example"]
    assert (await statuses(mailroom, int(entry["id"])))["c@partner.example"] == "delivered"


async def test_alias_destinations_share_one_transaction(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    await create_user(mailroom, "alice@example.org")
    outside = ["x@one.example", "y@two.example", "z@one.example"]
    await mailroom.registry.call(
        "admin.aliases.create", {"alias": {"address": "team@example.org", "destinations": outside}}
    )
    await arrive(
        mailroom, message(to="team@example.org", message_id="<team@remote.example>"), ["team@example.org"]
    )
    await queue.run_once()
    assert sink.data_attempts == 1
    [got] = sink.messages
    assert sorted(got.rcpt_tos) == sorted(outside)
    [entry] = await queue_rows(mailroom)
    assert entry["source"] == "alias"
    assert entry["message_id"] == "<team@remote.example>"


async def test_forward_destinations_share_one_transaction(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    await create_user(
        mailroom,
        "alice@example.org",
        forward_enabled=True,
        forward_destinations=["alice@elsewhere.example", "alice@third.example"],
    )
    await arrive(
        mailroom, message(to="alice@example.org", message_id="<fw@remote.example>"), ["alice@example.org"]
    )
    await queue.run_once()
    [got] = sink.messages
    assert sorted(got.rcpt_tos) == ["alice@elsewhere.example", "alice@third.example"]
    assert got.content.startswith(b"Delivered-To: alice@example.org\r\n")
    [entry] = await queue_rows(mailroom)
    assert entry["source"] == "forward"
    assert entry["message_id"] == "<fw@remote.example>"


async def test_two_mailboxes_forwarding_one_message_are_two_transactions(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    """Different bytes (each copy says which mailbox forwarded it): not one transaction."""
    for name in ("alice", "carol"):
        await create_user(
            mailroom,
            f"{name}@example.org",
            forward_enabled=True,
            forward_destinations=[f"{name}@elsewhere.example"],
        )
    await arrive(mailroom, message(to="alice@example.org"), ["alice@example.org", "carol@example.org"])
    await queue.run_once()
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        "alice@elsewhere.example",
        "carol@elsewhere.example",
    ]
    assert len(sink.messages) == 2


async def test_auto_reply_entries_record_their_message_id(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    await create_user(mailroom, "alice@example.org", reply_enabled=True, reply_body="Away.")
    await arrive(
        mailroom, message(to="alice@example.org", message_id="<q@remote.example>"), ["alice@example.org"]
    )
    await queue.run_once()
    [entry] = await queue_rows(mailroom)
    assert entry["source"] == "autoreply"
    [got] = sink.messages
    assert entry["message_id"]
    assert entry["message_id"] in got.content.decode()
