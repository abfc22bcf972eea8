"""Fixtures for outbound tests: a recording SMTP sink on loopback as the relay, the queue worker."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from mailroom.bootstrap import Mailroom
from mailroom.delivery.queue import OutboundQueue


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Sink:
    """An SMTP server that records what it accepts; replies can be scripted.

    ``rcpt_replies``: address → reply for RCPT (refusals); ``data_replies``: replies for the
    next DATA commands in order (after them, ``250``).
    """

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    data_attempts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("2"):
                return reply
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: queued as SINK1"


@pytest.fixture
def sink_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def settings_overrides(sink_socket: socket.socket) -> dict[str, Any]:
    return {
        "relay_host": "127.0.0.1",
        "relay_port": sink_socket.getsockname()[1],
        "relay_tls": "none",
        "relay_timeout_seconds": 10.0,
        "hostname": "mail.example.org",
    }


@pytest.fixture
async def sink(sink_socket: socket.socket) -> AsyncIterator[Sink]:
    import asyncio

    handler = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), sock=sink_socket)
    try:
        yield handler
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def queue(mailroom: Mailroom) -> OutboundQueue:
    return OutboundQueue(mailroom.runtime)
