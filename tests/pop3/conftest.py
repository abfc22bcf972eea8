"""A started mailroom serving POP3 and POP3S on free loopback ports, and poplib clients."""

from __future__ import annotations

import poplib
import ssl
from collections.abc import AsyncIterator

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.pop3 import Pop3Listeners, start_pop3
from mailroom.frontends.smtp.certificate import tls_files


@pytest.fixture
async def pop3(mailroom: Mailroom) -> AsyncIterator[Pop3Listeners]:
    running = await start_pop3(mailroom, pop3=("127.0.0.1", 0), pop3s=("127.0.0.1", 0))
    try:
        yield running
    finally:
        await running.close()


def client_context(mailroom: Mailroom) -> ssl.SSLContext:
    """A client context that trusts exactly the server's (self-signed) certificate."""
    cert, _ = tls_files(mailroom.settings)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the certificate names the mail host name, not 127.0.0.1
    return context


def connect(running: Pop3Listeners, name: str = "pop3", **kwargs: object) -> poplib.POP3:
    host, port = running.address(name)
    if name == "pop3s":
        return poplib.POP3_SSL(host, port, timeout=10, **kwargs)  # type: ignore[arg-type]
    return poplib.POP3(host, port, timeout=10)
