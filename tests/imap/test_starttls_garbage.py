"""A client that asks for STARTTLS and then does not speak TLS is hung up on quietly: no
traceback at ERROR in the log (before, "IMAP STARTTLS failed" with the SSL error, and under
uvloop an unhandled exception in the connection callback), and the server serves on."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tests.imap.conftest import Imap

pytestmark = pytest.mark.anyio


def starttls_then_garbage(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"* OK")
        sock.sendall(b"a STARTTLS\r\n")
        assert reader.readline().startswith(b"a OK")
        sock.sendall(b"this is not a TLS client hello\r\n")
        return reader.read()  # until the server closes


async def test_a_failed_starttls_handshake_closes_quietly(
    imap: Imap, caplog: pytest.LogCaptureFixture
) -> None:
    rest = await asyncio.to_thread(starttls_then_garbage, imap.port)
    assert b"OK" not in rest
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    conn = await asyncio.to_thread(imap.login)  # still serving
    await asyncio.to_thread(conn.logout)
