"""email.status: the sender hears of each delivery attempt the outbound queue makes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from tests.mailhelpers import create_user, message
from tests.outbound.conftest import Sink, queue, sink, sink_socket

__all__ = ["queue", "sink", "sink_socket"]  # fixtures
pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides(sink_socket: socket.socket) -> dict[str, Any]:
    return {
        "relay_host": "127.0.0.1",
        "relay_port": sink_socket.getsockname()[1],
        "relay_tls": "none",
        "relay_timeout_seconds": 10.0,
        "hostname": "mail.example.org",
    }


async def test_queue_outcomes_are_pushed_to_the_sender(
    mailroom: Mailroom, sink: Sink, queue: OutboundQueue
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    bob = await create_user(mailroom, "bob@example.org")
    events = mailroom.runtime.events
    to_alice = await events.subscribe(alice)
    to_bob = await events.subscribe(bob)
    sink.rcpt_replies["carol@remote.example"] = "550 5.1.1 no such user"
    result = await submit(
        mailroom.runtime,
        message(sender="Alice <alice@example.org>", to="x@remote.example", message_id=None),
        mail_from="alice@example.org",
        recipients=["dave@remote.example", "carol@remote.example"],
        source="api",
        sender_user_id=alice,
    )
    sent_copy = await asyncio.wait_for(anext(to_alice), 5)  # her copy in sent
    assert sent_copy.type == "email.received"
    await queue.run_once()
    status = await asyncio.wait_for(anext(to_alice), 5)
    assert status.type == "email.status"
    assert status.data["queue_id"] == result.queue_id
    assert status.data["email_id"] == result.sent_email_id
    assert {(r["address"], r["status"], r["code"]) for r in status.data["recipients"]} == {
        ("dave@remote.example", "delivered", 250),
        ("carol@remote.example", "failed", 550),
    }
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(to_bob), 0.3)  # Bob hears nothing of Alice's mail
    await to_alice.aclose()
    await to_bob.aclose()
