"""Fixtures of the mail client API tests: users with mail delivered through ingest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import resolve
from tests.conftest import Actor, problem
from tests.mailhelpers import message

__all__ = ["Deliver", "message", "problem"]

Deliver = Callable[..., Awaitable[int]]


@pytest.fixture
def deliver(mailroom: Mailroom) -> Deliver:
    """Deliver a raw message to one address through ingest; returns the stored email id.

    Keyword arguments other than ``mail_from`` are :class:`IngestOptions` fields.
    """

    async def _deliver(raw: bytes, rcpt: str, *, mail_from: str = "bob@example.net", **options: Any) -> int:
        async with mailroom.runtime.db.read() as tx:
            resolved = await resolve(tx, rcpt)
        opts = IngestOptions(**options) if options else None
        [result] = await ingest(
            mailroom.runtime, raw, mail_from=mail_from, recipients=[resolved], source="lmtp", options=opts
        )
        assert result.ok, result.reply
        return result.email_ids[0]

    return _deliver


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 1, day, hour, 0, tzinfo=UTC)


@pytest.fixture
async def alice(make_user: Callable[..., Awaitable[Actor]]) -> Actor:
    return await make_user("alice@example.org")


@pytest.fixture
async def bob(make_user: Callable[..., Awaitable[Actor]]) -> Actor:
    """A second user of the same server (isolation tests)."""
    return await make_user("bob@example.org")
