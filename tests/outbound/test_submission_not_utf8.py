"""Submission (real smtplib over STARTTLS): bytes that are not UTF-8 in EHLO or RCPT TO get
an immediate 5xx for that command, not a 451 with a traceback, and the message goes out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from tests.mailhelpers import create_user, message
from tests.outbound.test_submission import PASSWORD, login, session

pytestmark = pytest.mark.anyio


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[int]:
    running: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


async def test_bytes_that_are_not_utf8_do_not_defer_submission(
    mailroom: Mailroom, submission: int, caplog: pytest.LogCaptureFixture
) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "dave@example.org")

    def conversation() -> tuple[tuple[int, bytes], ...]:
        with session(submission) as client:
            client.send(b"EHLO \xff\xfe.test\r\n")
            ehlo = client.getreply()
            auth = login(client, "alice@example.org", PASSWORD)
            client.mail("alice@example.org")
            client.send(b"RCPT TO:<\xff@example.org>\r\n")
            bad = client.getreply()
            good = client.rcpt("dave@example.org")
            data = client.data(message(sender="alice@example.org", to="dave@example.org", message_id=None))
            return ehlo, auth, bad, good, data

    ehlo, auth, bad, good, data = await asyncio.to_thread(conversation)
    assert ehlo[0] == 250
    assert auth[0] == 235
    assert bad[0] == 553, bad
    assert bad[1].startswith(b"5.1.3 "), bad
    assert good[0] == 250
    assert data[0] == 250, data
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
