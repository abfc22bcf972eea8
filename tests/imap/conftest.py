"""IMAP over real loopback sockets against a started mailroom (imaplib and IMAPClient)."""

from __future__ import annotations

import asyncio
import imaplib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.imap import start_imap
from mailroom.frontends.listeners import listening_socket
from mailroom.frontends.smtp import Listeners, start_listeners
from mailroom.frontends.smtp.certificate import server_context
from tests.mailhelpers import create_user, lmtp_send, message

PASSWORD = "correct horse battery"


@dataclass
class Imap:
    port: int
    tls_port: int
    lmtp_port: int
    mailroom: Mailroom

    def client(self) -> imaplib.IMAP4:
        return imaplib.IMAP4("127.0.0.1", self.port, timeout=10)

    def login(self, user: str = "alice@example.org") -> imaplib.IMAP4:
        conn = self.client()
        typ, _ = conn.login(user, PASSWORD)
        assert typ == "OK"
        return conn

    async def deliver(self, rcpt: str = "alice@example.org", **fields: object) -> None:
        raw = message(**fields)  # type: ignore[arg-type]
        out = await asyncio.to_thread(lmtp_send, self.lmtp_port, "bob@example.net", [rcpt], raw)
        assert [c for c, _ in out.data] == [250], out


def free_socket() -> socket.socket:
    return listening_socket("127.0.0.1", 0)


@pytest.fixture
async def imap(mailroom: Mailroom) -> AsyncIterator[Imap]:
    await create_user(mailroom, "alice@example.org")
    context = await asyncio.to_thread(server_context, mailroom.settings)
    plain, tls = free_socket(), free_socket()
    servers = [
        await start_imap(mailroom, sock=plain, implicit_tls=False, tls_context=context),
        await start_imap(mailroom, sock=tls, implicit_tls=True, tls_context=context),
    ]
    lmtp: Listeners = await start_listeners(mailroom, smtp=("127.0.0.1", 0), lmtp=("127.0.0.1", 0))
    try:
        yield Imap(plain.getsockname()[1], tls.getsockname()[1], lmtp.ports["lmtp"], mailroom)
    finally:
        await lmtp.close()
        for server in servers:
            server.close()
