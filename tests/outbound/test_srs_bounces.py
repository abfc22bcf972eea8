"""Mail to our SRS addresses (bounces of forwarded mail) goes back to the address encoded in it.

Over real SMTP and LMTP on loopback, with the recording sink as the global smarthost.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery import srs
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.frontends.smtp import Listeners
from mailroom.store.mail_schema import emails, outbound_intents
from mailroom.store.outbound_schema import outbound_queue, outbound_recipients
from tests.mailhelpers import create_user, lmtp_send, message, smtp_send
from tests.outbound.conftest import Sink
from tests.outbound.test_intents import count, secret

pytestmark = pytest.mark.anyio

DSN = message(
    sender="MAILER-DAEMON@elsewhere.example",
    to="bob@remote.example",
    subject="Undelivered Mail Returned to Sender",
    message_id="<dsn1@elsewhere.example>",
    headers={"Auto-Submitted": "auto-replied"},
    body="The mail you sent could not be delivered.\r\n",
)


async def nothing_queued(mailroom: Mailroom) -> bool:
    return await count(mailroom, outbound_intents) == 0 and await count(mailroom, outbound_queue) == 0


async def test_a_bounce_of_a_forward_reaches_the_original_sender_from_the_null_sender(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue
) -> None:
    await create_user(
        mailroom,
        "alice@example.org",
        forward_enabled=True,
        forward_destinations=["alice@elsewhere.example"],
        forward_keep=False,
    )
    original = message(to="alice@example.org")
    out = await asyncio.to_thread(
        smtp_send, listeners.ports["smtp"], "Bob@Remote.Example", ["alice@example.org"], original
    )
    assert out.data[0][0] == 250
    await queue.run_once()
    [forwarded] = sink.messages
    srs_sender = forwarded.mail_from
    assert srs_sender.startswith("SRS0=")
    assert srs_sender.endswith("@example.org")

    # elsewhere.example refuses it later and bounces to the SRS sender, from <>.
    out = await asyncio.to_thread(smtp_send, listeners.ports["smtp"], "", [srs_sender], DSN)
    assert out.rcpt[0][0] == 250
    assert out.data[0][0] == 250
    assert await queue.run_once() == 2  # the intent taken, then the bounce sent
    bounce = sink.messages[1]
    assert bounce.mail_from == "<>"  # MAIL FROM:<>, not rewritten again
    assert bounce.rcpt_tos == ["Bob@remote.example"]  # the local part as the sender wrote it
    assert bounce.content.startswith(f"Delivered-To: {srs_sender}\r\n".encode())
    assert bounce.content.endswith(DSN)
    async with mailroom.runtime.db.read() as tx:
        row = (await tx.all(select(outbound_queue.c.source, outbound_queue.c.mail_from)))[-1]
    assert (row["source"], row["mail_from"]) == ("srs", "")
    assert await queue.run_once() == 0  # done once; no DSN of a DSN, nothing more
    assert len(sink.messages) == 2
    # The same bounce coming round again (it carries Delivered-To: <the SRS address>) is a loop.
    out = await asyncio.to_thread(smtp_send, listeners.ports["smtp"], "", [srs_sender], bounce.content)
    assert out.data[0][0] == 554
    assert await queue.run_once() == 0


async def test_lmtp_bounce_to_an_srs1_address_goes_to_the_first_forwarder(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue
) -> None:
    await create_user(mailroom, "alice@example.org")
    now = mailroom.runtime.clock.now()
    first = srs.forward("bob@remote.example", "First.Example", b"their secret", now)
    ours = srs.forward(first, "example.org", secret(mailroom), now)
    assert ours.startswith("SRS1=")
    out = await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "", [ours], DSN)
    assert [c for c, _ in out.rcpt] == [250]
    assert [c for c, _ in out.data] == [250]
    await queue.run_once()
    [bounce] = sink.messages
    assert bounce.mail_from == "<>"
    assert bounce.rcpt_tos == [first.rpartition("@")[0] + "@first.example"]  # hash's case kept


async def test_a_bounce_for_a_local_sender_is_stored_without_an_auto_reply(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue
) -> None:
    bob = await create_user(
        mailroom, "bob@example.org", reply_enabled=True, reply_body="Away."
    )  # bob wrote to someone whose forwarding (by us) failed
    address = srs.forward("bob@example.org", "example.org", secret(mailroom), mailroom.runtime.clock.now())
    out = await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "", [address], DSN)
    assert [c for c, _ in out.data] == [250]
    assert await count(mailroom, emails, emails.c.user_id == bob) == 1
    await queue.run_once()
    assert await nothing_queued(mailroom)
    assert sink.messages == []


async def test_a_bounce_for_a_relayed_domain_goes_to_its_relay(
    mailroom: Mailroom,
    listeners: Listeners,
    sink: Sink,
    queue: OutboundQueue,
    settings_overrides: dict[str, Any],
) -> None:
    await create_user(mailroom, "alice@example.org")
    smarthost = f"127.0.0.1:{settings_overrides['relay_port']}"
    await mailroom.registry.call(
        "admin.relays.create", {"relay": {"name": "partner.example", "smarthost": smarthost}}
    )
    address = srs.forward("x@partner.example", "example.org", secret(mailroom), mailroom.runtime.clock.now())
    out = await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "", [address], DSN)
    assert [c for c, _ in out.data] == [250]
    await queue.run_once()
    async with mailroom.runtime.db.read() as tx:
        [row] = await tx.all(select(outbound_recipients.c.address, outbound_recipients.c.relay))
    assert (row["address"], row["relay"]) == ("x@partner.example", smarthost)
    [bounce] = sink.messages
    assert (bounce.mail_from, bounce.rcpt_tos) == ("<>", ["x@partner.example"])


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
async def test_forged_expired_and_garbage_srs_addresses_are_refused_and_queue_nothing(
    mailroom: Mailroom, listeners: Listeners, queue: OutboundQueue, clock: FakeClock, protocol: str
) -> None:
    await create_user(mailroom, "alice@example.org")
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "*@example.org", "wildcard": True, "destinations": ["alice@example.org"]}},
    )  # a catch-all does not capture them either
    now = clock.now()
    valid = srs.forward("bob@remote.example", "example.org", secret(mailroom), now)
    hash_ = valid.split("=")[1]
    forged = valid.replace(f"={hash_}=", "=AAAA=" if hash_.lower() != "aaaa" else "=BBBB=")
    other_key = srs.forward("bob@remote.example", "example.org", b"not our secret", now)
    expired = srs.forward(
        "bob@remote.example", "example.org", secret(mailroom), now.replace(year=now.year - 1)
    )
    clock.advance(days=srs.MAX_AGE_DAYS + 1)
    stale = valid  # made 22 days ago now
    garbage = [
        "SRS0=garbage@example.org",
        "SRS1=x=y@example.org",
        "srs0=a=b=c=d@example.org",
    ]
    send = smtp_send if protocol == "smtp" else lmtp_send
    for address in [forged, other_key, expired, stale, *garbage]:
        out = await asyncio.to_thread(send, listeners.ports[protocol], "", [address], DSN)
        [(code, reply)] = out.rcpt
        assert code == 550, (address, code, reply)
        assert reply.startswith("5.1.1 ")
        assert "SRS address" in reply
        assert out.data == []
    assert await queue.run_once() == 0
    assert await nothing_queued(mailroom)
    assert await count(mailroom, emails) == 0


async def test_an_srs_address_lowercased_on_the_way_still_decodes(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue
) -> None:
    # Some MTAs lowercase addresses; the hash is compared without regard to case (libsrs2).
    await create_user(mailroom, "alice@example.org")
    address = srs.forward("bob@remote.example", "example.org", secret(mailroom), mailroom.runtime.clock.now())
    out = await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "", [address.lower()], DSN)
    assert [c for c, _ in out.data] == [250]
    await queue.run_once()
    [bounce] = sink.messages
    assert bounce.rcpt_tos == ["bob@remote.example"]


async def test_sending_to_an_srs_address_of_ours_reaches_the_address_it_encodes(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    address = srs.forward("bob@remote.example", "example.org", secret(mailroom), mailroom.runtime.clock.now())
    result = await submit(
        mailroom.runtime,
        message(sender="alice@example.org", to=address),
        mail_from="alice@example.org",
        recipients=[address],
        source="api",
        sender_user_id=alice,
    )
    assert [r.status for r in result.recipients] == ["delivered"]  # taken: an srs intent
    await queue.run_once()
    [got] = sink.messages
    assert got.rcpt_tos == ["bob@remote.example"]
    assert srs.reverse(got.mail_from, secret(mailroom), mailroom.runtime.clock.now()) == "alice@example.org"


def test_reverse_takes_any_hash_text_without_failing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert srs.reverse("SRS0=ÄÖÜ=AA=remote.example=bob@example.org", b"k", now) is None
    assert srs.reverse("SRS1=ÄÖÜ=first.example==x@example.org", b"k", now) is None
