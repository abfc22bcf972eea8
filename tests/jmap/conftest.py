"""Fixtures of the JMAP tests: users, a JMAP client per user, delivery through ingest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.client_mail.conftest import Deliver, deliver
from tests.conftest import Actor
from tests.jmap.client import JmapClient

__all__ = ["Deliver", "deliver"]


@pytest.fixture
async def alice(make_user: Callable[..., Awaitable[Actor]]) -> Actor:
    return await make_user("alice@example.org")


@pytest.fixture
async def bob(make_user: Callable[..., Awaitable[Actor]]) -> Actor:
    return await make_user("bob@example.org")


@pytest.fixture
async def jmap(client: httpx.AsyncClient, alice: Actor) -> JmapClient:
    c = JmapClient(client, alice.headers)
    await c.session()
    return c
