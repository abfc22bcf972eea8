"""Work ingest recorded (forwards, relayed domains, auto-replies) carried out by the queue worker."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery import srs
from mailroom.delivery.queue import OutboundQueue
from mailroom.store.mail_schema import emails, outbound_intents
from tests.mailhelpers import create_user, message
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


async def arrive(
    mailroom: Mailroom, raw: bytes, rcpts: list[str], mail_from: str = "bob@remote.example"
) -> Any:
    """Mail arriving over SMTP, as the inbound listener hands it to the registry."""
    return await mailroom.registry.call(
        "mail.delivery.deliver", {"raw": raw, "mail_from": mail_from, "recipients": rcpts, "source": "smtp"}
    )


async def count(mailroom: Mailroom, table: Any, *where: Any) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(table).where(*where)))


def secret(mailroom: Mailroom) -> bytes:
    return mailroom.settings.secret_key.get_secret_value().encode()


async def test_forwarding_rewrites_the_sender_with_srs(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    alice = await create_user(
        mailroom,
        "alice@example.org",
        forward_enabled=True,
        forward_destinations=["alice@elsewhere.example"],
        forward_keep=False,
    )
    [status] = await arrive(mailroom, message(to="alice@example.org"), ["alice@example.org"])
    assert status["code"] == 250
    assert await count(mailroom, emails, emails.c.user_id == alice) == 0  # no forward_keep: no copy
    assert await queue.run_once() == 2  # the intent taken, then the message sent
    [got] = sink.messages
    assert got.rcpt_tos == ["alice@elsewhere.example"]
    assert got.mail_from.startswith("SRS0=")
    assert got.mail_from.endswith("=remote.example=bob@example.org")
    assert srs.reverse(got.mail_from, secret(mailroom), mailroom.runtime.clock.now()) == "bob@remote.example"
    assert got.content.startswith(b"Delivered-To: alice@example.org\r\n")
    assert got.content.endswith(message(to="alice@example.org"))  # otherwise untouched
    assert await count(mailroom, outbound_intents) == 0  # carried out once, then deleted
    assert await queue.run_once() == 0


async def test_forward_keep_keeps_a_local_copy(mailroom: Mailroom, sink: Sink, queue: OutboundQueue) -> None:
    alice = await create_user(
        mailroom, "alice@example.org", forward_enabled=True, forward_destinations=["a@elsewhere.example"]
    )
    await arrive(mailroom, message(to="alice@example.org"), ["alice@example.org"])
    await queue.run_once()
    assert await count(mailroom, emails, emails.c.user_id == alice) == 1
    assert [m.rcpt_tos for m in sink.messages] == [["a@elsewhere.example"]]


async def test_a_forward_that_bounces_tells_the_original_sender(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    bob = await create_user(mailroom, "bob@example.org")
    await create_user(
        mailroom, "alice@example.org", forward_enabled=True, forward_destinations=["gone@elsewhere.example"]
    )
    sink.rcpt_replies["gone@elsewhere.example"] = "550 5.1.1 gone"
    await arrive(
        mailroom, message(to="alice@example.org"), ["alice@example.org"], mail_from="bob@example.org"
    )
    await queue.run_once()  # intent → queue → 550 → DSN queued to the SRS-decoded sender
    await queue.run_once()  # the DSN, for a local mailbox
    assert await count(mailroom, emails, emails.c.user_id == bob) == 1


async def test_relayed_domains_go_to_their_smarthost_with_the_envelope_unchanged(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, settings_overrides: dict[str, Any]
) -> None:
    port = settings_overrides["relay_port"]
    await mailroom.registry.call(
        "admin.relays.create", {"relay": {"name": "partner.example", "smarthost": f"127.0.0.1:{port}"}}
    )
    await arrive(mailroom, message(to="x@partner.example"), ["x@partner.example"])
    await queue.run_once()
    [got] = sink.messages
    assert got.mail_from == "bob@remote.example"
    assert got.rcpt_tos == ["x@partner.example"]
    assert got.content == message(to="x@partner.example")


async def test_auto_reply_follows_rfc_3834(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, clock: FakeClock
) -> None:
    await create_user(
        mailroom,
        "alice@example.org",
        display_name="Alice Example",
        reply_enabled=True,
        reply_body="I am away until Monday.",
    )
    original = message(
        to="alice@example.org",
        subject="Lunch?",
        message_id="<q1@remote.example>",
        references="<q0@remote.example>",
    )
    await arrive(mailroom, original, ["alice@example.org"])
    await queue.run_once()
    [got] = sink.messages
    assert got.mail_from == "<>"  # MAIL FROM:<>, the null sender: never bounced back
    assert got.rcpt_tos == ["bob@remote.example"]
    reply = email.message_from_bytes(got.content, policy=policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<q1@remote.example>"
    assert reply["References"] == "<q0@remote.example> <q1@remote.example>"
    assert reply["Subject"] == "Re: Lunch?"
    assert reply["From"] == "Alice Example <alice@example.org>"
    assert reply["To"] == "bob@remote.example"
    assert reply.get_content().strip() == "I am away until Monday."

    # Once per sender per period (7 days by default).
    await arrive(
        mailroom, message(to="alice@example.org", message_id="<q2@remote.example>"), ["alice@example.org"]
    )
    await queue.run_once()
    assert len(sink.messages) == 1
    clock.advance(days=7)
    await arrive(
        mailroom, message(to="alice@example.org", message_id="<q3@remote.example>"), ["alice@example.org"]
    )
    await queue.run_once()
    assert len(sink.messages) == 2


async def test_configured_subject_is_used(mailroom: Mailroom, sink: Sink, queue: OutboundQueue) -> None:
    await create_user(
        mailroom, "alice@example.org", reply_enabled=True, reply_subject="Out of office", reply_body="Away"
    )
    await arrive(mailroom, message(to="alice@example.org"), ["alice@example.org"])
    await queue.run_once()
    [got] = sink.messages
    assert email.message_from_bytes(got.content, policy=policy.default)["Subject"] == "Out of office"


@pytest.mark.parametrize(
    ("headers", "mail_from"),
    [
        ({"List-Id": "<dev.lists.example>"}, "bob@remote.example"),
        ({"Precedence": "bulk"}, "bob@remote.example"),
        ({"Auto-Submitted": "auto-generated"}, "bob@remote.example"),
        ({}, ""),
        ({}, "MAILER-DAEMON@remote.example"),
    ],
)
async def test_no_auto_reply_to_lists_bulk_automatic_or_null_senders(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, headers: dict[str, str], mail_from: str
) -> None:
    await create_user(mailroom, "alice@example.org", reply_enabled=True, reply_body="Away")
    [status] = await arrive(
        mailroom, message(to="alice@example.org", headers=headers), ["alice@example.org"], mail_from
    )
    assert status["code"] == 250
    await queue.run_once()
    assert sink.messages == []
    # The same message without the marker does get a reply: the rule, not the setup, said no.
    if mail_from:
        await arrive(
            mailroom,
            message(to="alice@example.org", message_id="<plain@x>"),
            ["alice@example.org"],
            mail_from="carol@remote.example",
        )
        await queue.run_once()
        assert len(sink.messages) == 1


async def test_auto_reply_to_a_local_sender_is_delivered_locally(
    mailroom: Mailroom, queue: OutboundQueue
) -> None:
    bob = await create_user(mailroom, "bob@example.org")
    await create_user(mailroom, "alice@example.org", reply_enabled=True, reply_body="Away")
    await arrive(
        mailroom,
        message(sender="bob@example.org", to="alice@example.org"),
        ["alice@example.org"],
        "bob@example.org",
    )
    await queue.run_once()
    assert await count(mailroom, emails, emails.c.user_id == bob) == 1
