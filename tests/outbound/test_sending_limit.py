"""The submission listener's per-user sending limit lives in the accounting's shared counters.

With the memory backend every listener of a process counts together (on the injected clock);
with Redis (``MAILROOM_TEST_REDIS_URL``) two separately started mailrooms, as two workers
are, share it too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailroom import bootstrap
from mailroom.accounting.sending import SendingLimit, counters_of
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.settings import Settings
from tests.mailhelpers import create_user, message
from tests.outbound.test_submission import login, session

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("MAILROOM_TEST_REDIS_URL", "")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"submission_rate_limit": "2/hour", "submission_allow_plaintext_loopback": True}


def send_one(port: int, user: str) -> int:
    """One message over submission (plaintext on loopback); the MAIL FROM reply code."""
    with session(port, tls=False) as client:
        login(client, user, PASSWORD)
        code = client.mail(user)[0]
        if code == 250:
            client.rcpt("bob@remote.example")
            client.data(message(sender=user, to="bob@remote.example", message_id=None))
        return int(code)


async def send(port: int, user: str = "alice@example.org") -> int:
    return await asyncio.to_thread(send_one, port, user)


async def listen(mailroom: Mailroom) -> Listeners:
    return await start_submission(mailroom, bind=("127.0.0.1", 0))


@pytest.fixture
async def two_listeners(mailroom: Mailroom) -> AsyncIterator[tuple[int, int]]:
    one, two = await listen(mailroom), await listen(mailroom)
    try:
        yield one.ports["submission"], two.ports["submission"]
    finally:
        await one.close()
        await two.close()


async def test_the_limit_is_counted_in_the_accounting_counters(
    mailroom: Mailroom, two_listeners: tuple[int, int], clock: FakeClock
) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "carol@example.org")
    a, b = two_listeners
    assert counters_of(mailroom.runtime) is not None
    assert [await send(a), await send(b), await send(a), await send(b)] == [250, 250, 451, 451]
    assert await send(b, "carol@example.org") == 250  # per user
    clock.advance(minutes=59)
    assert await send(a) == 451
    clock.advance(minutes=1, seconds=1)  # the window slid past both messages
    assert [await send(b), await send(a), await send(a)] == [250, 250, 451]


async def test_counters_that_are_down_do_not_stop_mail(mailroom: Mailroom, settings: Settings) -> None:
    counters = counters_of(mailroom.runtime)
    assert counters is not None

    class Down:
        async def test(self, *args: Any, **kwargs: Any) -> bool:
            raise ConnectionError("counter store down")

        hit = test

    limit = SendingLimit(settings.submission_rate_limit, counters)
    limit.counters = type(counters)(counters.storage, Down(), counters.now, counters.backend)  # type: ignore[arg-type]
    assert await limit.allowed(1)
    await limit.record(1)  # logged, not raised


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set")
async def test_two_workers_share_the_limit_through_redis(settings: Settings) -> None:
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_key_prefix": f"test-{uuid.uuid4().hex[:12]}"}
    )
    workers = [await bootstrap.start(shared, clock=FakeClock(), run_migrations=False) for _ in range(2)]
    listeners = [await listen(w) for w in workers]
    try:
        for worker in workers:
            counters = counters_of(worker.runtime)
            assert counters is not None
            assert counters.backend == "redis"
        await create_user(workers[0], "alice@example.org")
        a, b = (x.ports["submission"] for x in listeners)
        assert [await send(a), await send(b), await send(a), await send(b)] == [250, 250, 451, 451]
    finally:
        for running in listeners:
            await running.close()
        for worker in workers:
            await worker.close()
