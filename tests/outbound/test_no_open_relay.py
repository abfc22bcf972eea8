"""The inbound SMTP listener (no authentication) is no open relay: mail leaves for an external
address only through an alias or a forward of a local recipient, with an SRS envelope sender,
and never signed by us as a domain it did not come from.

Over real SMTP on loopback, with the recording sink as the global smarthost.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Callable

import dkim
import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.frontends.smtp import Listeners
from mailroom.store.mail_schema import outbound_intents
from mailroom.store.outbound_schema import outbound_queue
from tests.mailhelpers import create_user, message, smtp_send
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


async def nothing_queued(mailroom: Mailroom) -> bool:
    async with mailroom.runtime.db.read() as tx:
        intents = await tx.scalar(select(func.count()).select_from(outbound_intents))
        entries = await tx.scalar(select(func.count()).select_from(outbound_queue))
    return intents == 0 and entries == 0


def signatures(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    return re.findall(r"^DKIM-Signature:.*?\bd=([^;\s]+)", head, re.S | re.M)


async def dkim_dns(mailroom: Mailroom, domain: str) -> Callable[..., bytes]:
    key = await mailroom.registry.call("admin.dkim.generate", {"domain": domain, "bits": 1024})
    record = "".join(re.findall(r'"([^"]*)"', key["record_value"])).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == key["record_name"].encode() else b""

    return dns


@pytest.mark.parametrize(
    "rcpt",
    [
        "friend@remote.example",
        "friend%remote.example@example.org",  # the percent hack
        "@example.org:friend@remote.example",  # a source route
        '"friend@remote.example"@example.org',  # a quoted local part
        "friend@remote.example@example.org",
        "friend@[127.0.0.1]",
        "friend@example.org.remote.example",
    ],
)
async def test_no_relay_to_external_addresses(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue, rcpt: str
) -> None:
    await create_user(mailroom, "alice@example.org")
    await dkim_dns(mailroom, "example.org")
    raw = message(sender="alice@example.org", to=rcpt)
    out = await asyncio.to_thread(smtp_send, listeners.ports["smtp"], "alice@example.org", [rcpt], raw)
    [(code, reply)] = out.rcpt
    assert code >= 500, reply
    assert out.data == []
    await queue.run_once()
    assert sink.messages == []
    assert await nothing_queued(mailroom)


async def test_no_authentication_is_offered_inbound(mailroom: Mailroom, listeners: Listeners) -> None:
    def conversation() -> tuple[bool, int]:
        with smtplib.SMTP("127.0.0.1", listeners.ports["smtp"], timeout=10) as client:
            client.ehlo("client.test")
            offered = client.has_extn("auth")
            code, _ = client.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==")
            return offered, code

    offered, code = await asyncio.to_thread(conversation)
    assert not offered
    assert code >= 500


async def test_aliases_and_forwards_of_local_recipients_go_out_with_srs_and_unsigned(
    mailroom: Mailroom, listeners: Listeners, sink: Sink, queue: OutboundQueue
) -> None:
    """Arriving mail whose From claims one of our domains (with a key) is forwarded as it came:
    the envelope rewritten (SRS), no signature of ours added."""
    await create_user(
        mailroom,
        "bob@example.org",
        forward_enabled=True,
        forward_destinations=["bob@elsewhere.example"],
        forward_keep=False,
    )
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "team@example.org", "destinations": ["friend@remote.example"]}},
    )
    await dkim_dns(mailroom, "example.org")
    raw = message(sender="Alice <alice@example.org>", to="team@example.org, bob@example.org")
    out = await asyncio.to_thread(
        smtp_send,
        listeners.ports["smtp"],
        "spoofer@evil.example",
        ["team@example.org", "bob@example.org"],
        raw,
    )
    assert [code for code, _ in out.rcpt] == [250, 250]
    assert out.data[0][0] == 250
    await queue.run_once()
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == [
        "bob@elsewhere.example",
        "friend@remote.example",
    ]
    for got in sink.messages:
        assert got.mail_from.startswith("SRS0=")
        assert got.mail_from.endswith("@example.org")
        assert signatures(got.content) == []


async def test_a_users_signed_mail_forwarded_keeps_only_its_own_signature(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    """Sent by alice to an alias that expands outside: her domain's signature, nobody else's."""
    alice = await create_user(mailroom, "alice@example.org")
    await mailroom.registry.call("admin.domains.create", {"domain": {"name": "lists.test"}})
    await mailroom.registry.call(
        "admin.aliases.create",
        {"alias": {"address": "all@lists.test", "destinations": ["friend@remote.example"]}},
    )
    dns = await dkim_dns(mailroom, "example.org")
    await dkim_dns(mailroom, "lists.test")
    raw = message(sender="Alice <alice@example.org>", to="all@lists.test", message_id=None)
    await submit(
        mailroom.runtime,
        raw,
        mail_from="alice@example.org",
        recipients=["all@lists.test"],
        source="api",
        sender_user_id=alice,
    )
    await queue.run_once()
    [got] = sink.messages
    assert got.rcpt_tos == ["friend@remote.example"]
    assert got.mail_from.startswith("SRS0=")
    assert got.mail_from.endswith("@lists.test")
    assert signatures(got.content) == ["example.org"]
    assert dkim.verify(got.content, dnsfunc=dns)
