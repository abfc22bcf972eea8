"""Bytes that are not UTF-8 in HELO/EHLO, MAIL FROM or RCPT TO, over real SMTP and LMTP.

aiosmtpd keeps such bytes as lone surrogates; the registry refuses those, so before the
fix the message was taken up to DATA and then answered ``451`` (a sending MTA retries that
for days) with a traceback in the log. Now MAIL and RCPT refuse them at once with a 5xx,
and a HELO name that is not UTF-8 is left out of the ``Received`` line.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.store.mail_schema import emails
from tests.mailhelpers import create_user

pytestmark = pytest.mark.anyio


def converse(port: int, lines: list[bytes]) -> list[bytes]:
    """The greeting, then one reply per line sent (LMTP's DATA answers one per recipient)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def reply() -> bytes:
            out = b""
            while True:
                line = reader.readline()
                out += line
                if len(line) < 4 or line[3:4] != b"-":
                    return out

        replies = [reply()]
        for line in lines:
            sock.sendall(line)
            replies.append(reply())
        return replies


async def count_emails(mailroom: Mailroom) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(emails)))


@pytest.mark.parametrize("kind", ["smtp", "lmtp"])
async def test_addresses_that_are_not_utf8_are_refused_at_once(
    mailroom: Mailroom, listeners: Listeners, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    await create_user(mailroom, "alice@example.org")
    hello = b"LHLO client.test\r\n" if kind == "lmtp" else b"EHLO client.test\r\n"
    replies = await asyncio.to_thread(
        converse,
        listeners.ports[kind],
        [
            hello,
            b"MAIL FROM:<\xff\xfe@example.net>\r\n",
            b"MAIL FROM:<bob@example.net>\r\n",
            b"RCPT TO:<\xff@example.org>\r\n",
            b"RCPT TO:<alice@example.org>\r\n",
            b"QUIT\r\n",
        ],
    )
    assert replies[2].startswith(b"553 5.1.7 "), replies
    assert replies[3].startswith(b"250"), replies
    assert replies[4].startswith(b"553 5.1.3 "), replies
    assert replies[5].startswith(b"250"), replies
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("hello", [b"EHLO \xff\xfe.test\r\n", b"HELO \xff\xfe.test\r\n"])
async def test_a_helo_name_that_is_not_utf8_does_not_defer_the_message(
    mailroom: Mailroom, listeners: Listeners, hello: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    await create_user(mailroom, "alice@example.org")
    replies = await asyncio.to_thread(
        converse,
        listeners.ports["smtp"],
        [
            hello,
            b"MAIL FROM:<bob@example.net>\r\n",
            b"RCPT TO:<alice@example.org>\r\n",
            b"DATA\r\n",
            b"From: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n.\r\n",
            b"QUIT\r\n",
        ],
    )
    assert replies[1].startswith(b"250"), replies
    assert replies[4].startswith(b"354"), replies
    assert replies[5].startswith(b"250 2.0.0 "), replies
    assert await count_emails(mailroom) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_control_characters_a_client_sends_reach_the_log_escaped(
    listeners: Listeners, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mail.log")
    replies = await asyncio.to_thread(
        converse, listeners.ports["smtp"], [b"\x1b[2J\x00\x07BOGUS \xff\r\n", b"QUIT\r\n"]
    )
    assert replies[1].startswith(b"500"), replies
    logged = [r.getMessage() for r in caplog.records if r.name == "mail.log"]
    logged = [m for m in logged if "unrecognised" in m]
    assert logged, caplog.text

    def control(c: str) -> bool:
        return ord(c) < 32 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF

    assert not [m for m in logged if any(control(c) for c in m)], logged
    assert any("\\x1b[2J\\x00\\x07BOGUS" in m for m in logged), logged
