"""submit() and the queue worker against a loopback SMTP sink: delivery, retries, DSNs, DKIM."""

from __future__ import annotations

import asyncio
import email
import re
import socket
from datetime import timedelta
from email import policy
from email.message import Message
from typing import Any, cast

import dkim
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.store import outbound as store
from mailroom.store.mail_schema import email_labels, emails, labels
from mailroom.store.outbound import QueuedMessage
from mailroom.store.outbound_schema import outbound_queue
from tests.mailhelpers import create_user, message
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


def status_blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (per-message, then per recipient)."""
    return cast(list[Message], part.get_payload())


async def statuses(mailroom: Mailroom, queue_id: int) -> dict[str, str]:
    async with mailroom.runtime.db.read() as tx:
        return {r.address: r.status for r in await store.recipients(tx, queue_id)}


async def entry(mailroom: Mailroom, queue_id: int) -> QueuedMessage:
    async with mailroom.runtime.db.read() as tx:
        row = await store.get(tx, queue_id)
    assert row is not None
    return row


async def mailbox(mailroom: Mailroom, user_id: int, label: str | None = None) -> list[bytes]:
    """Raw messages of a mailbox (optionally only those with ``label``), oldest first."""
    query = select(emails.c.blob_sha).where(emails.c.user_id == user_id).order_by(emails.c.id)
    if label is not None:
        query = (
            query.join(email_labels, email_labels.c.email_id == emails.c.id)
            .join(labels, labels.c.id == email_labels.c.label_id)
            .where(labels.c.name == label)
        )
    async with mailroom.runtime.db.read() as tx:
        shas = await tx.scalars(query)
    return [await mailroom.runtime.blobs.get(s) for s in shas]


async def send(
    mailroom: Mailroom,
    to: list[str],
    *,
    sender_id: int | None,
    raw: bytes | None = None,
    mail_from: str = "alice@example.org",
) -> Any:
    return await submit(
        mailroom.runtime,
        raw or message(sender="Alice <alice@example.org>", to=", ".join(to), message_id=None),
        mail_from=mail_from,
        recipients=to,
        source="api",
        sender_user_id=sender_id,
    )


async def test_remote_recipients_are_queued_then_relayed(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    result = await send(mailroom, ["bob@remote.example", "carol@remote.example"], sender_id=alice)
    assert [(r.address, r.status) for r in result.recipients] == [
        ("bob@remote.example", "queued"),
        ("carol@remote.example", "queued"),
    ]
    assert sink.messages == []
    assert await queue.run_once() == 1
    [got] = sink.messages
    assert got.mail_from == "alice@example.org"
    assert got.rcpt_tos == ["bob@remote.example", "carol@remote.example"]
    parsed = email.message_from_bytes(got.content, policy=policy.default)
    # Message-ID and Date were added, and the id is the one reported.
    assert parsed["Message-ID"] == result.message_id
    assert result.message_id.endswith("@mail.example.org>")
    assert parsed["Date"] is not None
    assert await statuses(mailroom, result.queue_id) == {
        "bob@remote.example": "delivered",
        "carol@remote.example": "delivered",
    }
    row = await entry(mailroom, result.queue_id)
    assert row.status == "done"
    assert row.blob_sha is None
    # The sender's copy is in their sent label, and reachable from its status.
    [sent] = await mailbox(mailroom, alice, "sent")
    assert sent == got.content
    async with mailroom.runtime.db.read() as tx:
        rows = await store.statuses_for_email(tx, result.sent_email_id)
    assert [(r.address, r.status, r.last_code) for r in rows] == [
        ("bob@remote.example", "delivered", 250),
        ("carol@remote.example", "delivered", 250),
    ]
    assert await queue.run_once() == 0  # nothing left


async def test_local_recipients_are_delivered_at_once(mailroom: Mailroom, sink: Sink) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    dave = await create_user(mailroom, "dave@example.org")
    result = await send(mailroom, ["dave@example.org", "ghost@example.org"], sender_id=alice)
    assert [(r.address, r.status) for r in result.recipients] == [
        ("dave@example.org", "delivered"),
        ("ghost@example.org", "error"),
    ]
    assert result.recipients[1].reason is not None
    assert result.recipients[1].reason.startswith("550 5.1.1")
    assert len(await mailbox(mailroom, dave, "inbox")) == 1
    assert (await entry(mailroom, result.queue_id)).status == "done"
    assert sink.messages == []


async def test_sending_to_oneself_keeps_one_copy_with_both_labels(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    await send(mailroom, ["alice@example.org"], sender_id=alice)
    assert len(await mailbox(mailroom, alice)) == 1
    assert len(await mailbox(mailroom, alice, "inbox")) == 1
    assert len(await mailbox(mailroom, alice, "sent")) == 1


async def test_temporary_failure_is_retried_with_backoff(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, clock: FakeClock
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    sink.data_replies = ["451 4.3.0 try again later", "451 4.3.0 still busy"]
    result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
    await queue.run_once()
    assert await statuses(mailroom, result.queue_id) == {"bob@remote.example": "deferred"}
    row = await entry(mailroom, result.queue_id)
    assert row.attempts == 1
    assert row.locked_until is None
    assert row.next_attempt_at == clock.now() + timedelta(seconds=60)
    clock.advance(59)
    assert await queue.run_once() == 0  # not due yet
    clock.advance(1)
    await queue.run_once()
    row = await entry(mailroom, result.queue_id)
    assert row.attempts == 2
    # The delay doubles: 120 s after the second attempt.
    clock.advance(119)
    assert await queue.run_once() == 0
    clock.advance(1)
    await queue.run_once()
    assert sink.data_attempts == 3
    assert len(sink.messages) == 1
    assert await statuses(mailroom, result.queue_id) == {"bob@remote.example": "delivered"}


async def test_permanent_failure_bounces_to_the_sender_with_a_dsn(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    sink.rcpt_replies["nobody@remote.example"] = "550 5.1.1 <nobody@remote.example>: no such user"
    raw = message(
        sender="Alice <alice@example.org>",
        to="nobody@remote.example",
        subject="Lost",
        message_id="<lost@example.org>",
    )
    result = await send(mailroom, ["nobody@remote.example", "bob@remote.example"], sender_id=alice, raw=raw)
    await queue.run_once()
    assert await statuses(mailroom, result.queue_id) == {
        "nobody@remote.example": "failed",
        "bob@remote.example": "delivered",
    }
    await queue.run_once()  # the DSN is queued like any message, for a local recipient
    [bounce] = await mailbox(mailroom, alice, "inbox")
    report = email.message_from_bytes(bounce, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["In-Reply-To"] == "<lost@example.org>"  # threads with the message it reports on
    human, status, headers = report.iter_parts()
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    assert headers.get_content_type() == "text/rfc822-headers"
    per_message, per_recipient = status_blocks(status)
    assert per_message["Reporting-MTA"] == "dns; mail.example.org"
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@remote.example"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; 127.0.0.1"
    assert "550 5.1.1" in per_recipient["Diagnostic-Code"]
    original = headers.get_payload()
    assert "Message-ID: <lost@example.org>" in original
    assert "Subject: Lost" in original
    assert "this is a test" not in original  # headers only
    # The DSN itself went with the null sender.
    async with mailroom.runtime.db.read() as tx:
        dsn_from = await tx.scalar(select(outbound_queue.c.mail_from).where(outbound_queue.c.source == "dsn"))
    assert dsn_from == ""


async def test_a_bounce_is_never_bounced(mailroom: Mailroom, sink: Sink, queue: OutboundQueue) -> None:
    await create_user(mailroom, "alice@example.org")
    sink.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
    result = await send(mailroom, ["nobody@remote.example"], sender_id=None, mail_from="")
    await queue.run_once()
    assert await statuses(mailroom, result.queue_id) == {"nobody@remote.example": "failed"}
    async with mailroom.runtime.db.read() as tx:
        assert await tx.scalar(select(outbound_queue.c.id).where(outbound_queue.c.source == "dsn")) is None


async def test_a_message_too_long_in_the_queue_bounces(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, clock: FakeClock
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    sink.data_replies = ["451 4.3.0 busy"] * 100
    result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
    for _ in range(40):
        clock.advance(4 * 3600)
        await queue.run_once()
        if (await entry(mailroom, result.queue_id)).status == "done":
            break
    assert await statuses(mailroom, result.queue_id) == {"bob@remote.example": "failed"}
    row = await entry(mailroom, result.queue_id)
    assert clock.now() - row.created_at >= timedelta(days=5)
    await queue.run_once()
    [bounce] = await mailbox(mailroom, alice, "inbox")
    report = email.message_from_bytes(bounce, policy=policy.default)
    per_recipient = status_blocks(list(report.iter_parts())[1])[1]
    assert per_recipient["Status"] == "4.3.0"
    assert "gave up" not in per_recipient["Diagnostic-Code"]  # the relay's own last words
    async with mailroom.runtime.db.read() as tx:
        [r] = await store.recipients(tx, result.queue_id)
    assert "gave up after 5 days" in r.last_reply


class TestUnreachableRelay:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        # A loopback port nobody listens on: connections are refused at once.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {
            "relay_host": "127.0.0.1",
            "relay_port": port,
            "relay_tls": "none",
            "hostname": "mail.example.org",
        }

    async def test_connection_failures_are_temporary(self, mailroom: Mailroom, queue: OutboundQueue) -> None:
        alice = await create_user(mailroom, "alice@example.org")
        result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
        await queue.run_once()
        async with mailroom.runtime.db.read() as tx:
            [r] = await store.recipients(tx, result.queue_id)
        assert r.status == "deferred"
        assert r.last_code is None
        assert f"connection to 127.0.0.1:{mailroom.settings.relay_port} failed" in r.last_reply
        assert (await entry(mailroom, result.queue_id)).attempts == 1


async def test_outbound_mail_is_dkim_signed(mailroom: Mailroom, sink: Sink, queue: OutboundQueue) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    key = await mailroom.registry.call("admin.dkim.generate", {"domain": "example.org", "bits": 1024})
    record = "".join(re.findall(r'"([^"]*)"', key["record_value"])).encode()
    await send(mailroom, ["bob@remote.example"], sender_id=alice)
    await queue.run_once()
    [got] = sink.messages
    assert got.content.startswith(b"DKIM-Signature:")
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record if name == key["record_name"].encode() else b""

    assert dkim.verify(got.content, dnsfunc=dns)
    assert looked_up == [f"{key['selector']}._domainkey.example.org.".encode()]
    signature = got.content.split(b"\r\n\r\n", 1)[0].decode()
    assert "c=relaxed/relaxed" in signature
    assert "d=example.org" in signature
    # A changed body no longer verifies: the check is real.
    assert not dkim.verify(got.content.replace(b"this is a test", b"this is a fake"), dnsfunc=dns)


async def test_claims_are_exclusive(mailroom: Mailroom, sink: Sink) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
    now = mailroom.runtime.clock.now()
    until = now + timedelta(minutes=10)
    async with mailroom.runtime.db.write() as tx:
        assert await store.claim(tx, result.queue_id, now, until)
    async with mailroom.runtime.db.write() as tx:
        assert not await store.claim(tx, result.queue_id, now, until)
    async with mailroom.runtime.db.read() as tx:
        assert await store.due(tx, now) == []
    # An expired claim (a dead worker) is taken again.
    later = until + timedelta(seconds=1)
    async with mailroom.runtime.db.write() as tx:
        assert await store.claim(tx, result.queue_id, later, later)


class TestWithoutSmarthost:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"hostname": "mail.example.org", "relay_missing": "bounce"}

    async def test_remote_mail_bounces_clearly_when_configured_to(
        self, mailroom: Mailroom, queue: OutboundQueue
    ) -> None:
        alice = await create_user(mailroom, "alice@example.org")
        result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
        await queue.run_once()
        async with mailroom.runtime.db.read() as tx:
            [r] = await store.recipients(tx, result.queue_id)
        assert r.status == "failed"
        assert r.last_reply.startswith("554 5.4.4 no smarthost configured")
        await queue.run_once()
        assert len(await mailbox(mailroom, alice, "inbox")) == 1  # the DSN


class TestDeferWithoutSmarthost:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"hostname": "mail.example.org"}

    async def test_remote_mail_waits_by_default(self, mailroom: Mailroom, queue: OutboundQueue) -> None:
        alice = await create_user(mailroom, "alice@example.org")
        result = await send(mailroom, ["bob@remote.example"], sender_id=alice)
        await queue.run_once()
        async with mailroom.runtime.db.read() as tx:
            [r] = await store.recipients(tx, result.queue_id)
        assert r.status == "deferred"
        assert r.last_reply.startswith("451 4.4.4 no smarthost")


async def test_a_full_local_mailbox_is_retried_through_the_queue(
    mailroom: Mailroom, queue: OutboundQueue, clock: FakeClock
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    dave = await create_user(mailroom, "dave@example.org", quota_bytes=10)
    result = await send(mailroom, ["dave@example.org"], sender_id=alice)
    [status] = result.recipients
    assert status.status == "queued"
    await queue.run_once()
    async with mailroom.runtime.db.read() as tx:
        [r] = await store.recipients(tx, result.queue_id)
    assert r.status == "deferred"
    assert r.last_code == 452
    await mailroom.registry.call(
        "admin.users.update", {"email": "dave@example.org", "changes": {"quota_bytes": 0}}
    )
    clock.advance(60)
    await queue.run_once()
    assert await statuses(mailroom, result.queue_id) == {"dave@example.org": "delivered"}
    assert len(await mailbox(mailroom, dave, "inbox")) == 1


async def test_two_workers_send_each_message_once(mailroom: Mailroom, sink: Sink) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    for n in range(6):
        await send(mailroom, [f"r{n}@remote.example"], sender_id=alice)
    first, second = OutboundQueue(mailroom.runtime), OutboundQueue(mailroom.runtime)
    handled = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(handled) == 6
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [f"r{n}@remote.example" for n in range(6)]


async def test_the_senders_copy_never_triggers_their_own_auto_reply(
    mailroom: Mailroom, queue: OutboundQueue
) -> None:
    alice = await create_user(mailroom, "alice@example.org", reply_enabled=True, reply_body="Away")
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "sales@example.org", "destinations": ["alice@example.org"]}},
    )
    raw = message(sender="sales@example.org", to="alice@example.org, bob@remote.example", message_id=None)
    await submit(
        mailroom.runtime,
        raw,
        mail_from="sales@example.org",
        recipients=["bob@remote.example"],
        source="submission",
        sender_user_id=alice,
    )
    assert len(await mailbox(mailroom, alice, "sent")) == 1
    async with mailroom.runtime.db.read() as tx:
        assert await store.due_intents(tx, mailroom.runtime.clock.now(), mailroom.runtime.clock.now()) == []


async def test_finished_entries_are_deleted_after_the_retention(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue, clock: FakeClock
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    sink.data_replies = ["451 4.3.0 busy"]
    done = await send(mailroom, ["bob@remote.example"], sender_id=alice)
    await queue.run_once()  # deferred
    clock.advance(60)
    await queue.run_once()  # delivered: done now
    clock.advance(days=30, seconds=-61)
    await queue.run_once()
    assert (await entry(mailroom, done.queue_id)).status == "done"  # not 30 days yet
    sink.rcpt_replies["carol@remote.example"] = "451 4.2.0 later"
    waiting = await send(mailroom, ["carol@remote.example"], sender_id=alice)
    clock.advance(hours=1)
    await queue.run_once()
    assert (await entry(mailroom, waiting.queue_id)).status == "queued"  # still waiting: kept
    async with mailroom.runtime.db.read() as tx:
        assert await store.get(tx, done.queue_id) is None
        assert await store.recipients(tx, done.queue_id) == []
