"""Fixtures for the listener tests: SMTP and LMTP on free loopback ports, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners, start_listeners


@pytest.fixture
async def listeners(mailroom: Mailroom) -> AsyncIterator[Listeners]:
    running = await start_listeners(mailroom, smtp=("127.0.0.1", 0), lmtp=("127.0.0.1", 0))
    try:
        yield running
    finally:
        await running.close()
