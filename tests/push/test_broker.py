"""The event broker: fan-out per user, replay after a reconnection, bounds, slow clients.

Every test runs on the memory broker and, with ``MAILROOM_TEST_REDIS_URL``, on Redis.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailroom.clock import FakeClock
from mailroom.events import Broker, Event, SubscriberOverflow, open_broker, publish_safely
from mailroom.settings import Settings

pytestmark = pytest.mark.anyio
REDIS_URL = os.environ.get("MAILROOM_TEST_REDIS_URL", "")


def make_settings(tmp_path: Path, backend: str, **values: Any) -> Settings:
    if backend == "redis":
        values |= {"redis_url": REDIS_URL, "redis_key_prefix": f"test-{uuid.uuid4().hex[:12]}"}
    return Settings(data_dir=tmp_path, mode="test", **values)


@pytest.fixture(
    params=[
        "memory",
        pytest.param(
            "redis",
            marks=[
                pytest.mark.redis,
                pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set"),
            ],
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_factory(tmp_path: Path, backend: str, clock: FakeClock) -> Any:
    made: list[Broker] = []

    async def make(**values: Any) -> Broker:
        broker = open_broker(make_settings(tmp_path, backend, **values), clock)
        await broker.start()
        made.append(broker)
        return broker

    return make, made


@pytest.fixture
async def broker(broker_factory: Any) -> AsyncIterator[Broker]:
    make, made = broker_factory
    broker = await make()
    try:
        yield broker
    finally:
        for b in made:
            await b.close()


async def take(sub: AsyncIterator[Event], n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(sub), 5) for _ in range(n)]


async def test_events_reach_only_their_user(broker: Broker, backend: str) -> None:
    assert broker.backend == backend
    alice = await broker.subscribe(1)
    bob = await broker.subscribe(2)
    first = await broker.publish(1, "email.received", {"email_id": 10})
    await broker.publish(2, "email.received", {"email_id": 20})
    second = await broker.publish(1, "email.status", {"queue_id": 3})
    got = await take(alice, 2)
    assert [(e.id, e.type, e.data) for e in got] == [
        (first, "email.received", {"email_id": 10}),
        (second, "email.status", {"queue_id": 3}),
    ]
    assert [e.data for e in await take(bob, 1)] == [{"email_id": 20}]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(bob), 0.3)  # nothing of Alice's
    await alice.aclose()
    await bob.aclose()


async def test_replay_after_reconnection(broker: Broker) -> None:
    ids = [await broker.publish(1, "thread.updated", {"n": n}) for n in range(5)]
    await broker.publish(2, "thread.updated", {"n": "bob"})
    sub = await broker.subscribe(1, last_event_id=ids[1])
    assert [e.data["n"] for e in await take(sub, 3)] == [2, 3, 4]
    live = await broker.publish(1, "label.counts", {"n": 5})
    [event] = await take(sub, 1)
    assert (event.id, event.data) == (live, {"n": 5})
    await sub.aclose()
    # The newest id replays nothing; a malformed one is ignored (live events only).
    for last in (live, "not-an-id"):
        again = await broker.subscribe(1, last_event_id=last)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(again), 0.3)
        await again.aclose()


async def test_replay_is_bounded_by_count(broker_factory: Any) -> None:
    make, made = broker_factory
    broker = await make(push_replay_events=3)
    try:
        ids = [await broker.publish(1, "thread.updated", {"n": n}) for n in range(6)]
        sub = await broker.subscribe(1, last_event_id=ids[0])
        assert [e.data["n"] for e in await take(sub, 3)] == [3, 4, 5]
        await sub.aclose()
    finally:
        for b in made:
            await b.close()


async def test_replay_is_bounded_by_time(broker_factory: Any, clock: FakeClock) -> None:
    make, made = broker_factory
    broker = await make(push_replay_minutes=5)
    try:
        start = await broker.publish(1, "thread.updated", {"n": 0})
        await broker.publish(1, "thread.updated", {"n": 1})
        clock.advance(minutes=4)
        await broker.publish(1, "thread.updated", {"n": 2})
        clock.advance(minutes=2)  # events 0 and 1 are now 6 minutes old
        sub = await broker.subscribe(1, last_event_id=start)
        assert [e.data["n"] for e in await take(sub, 1)] == [2]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(sub), 0.3)
        await sub.aclose()
    finally:
        for b in made:
            await b.close()


async def test_slow_subscriber_is_dropped_and_catches_up_by_replay(broker_factory: Any) -> None:
    make, made = broker_factory
    broker = await make(push_queue_size=3)
    try:
        slow = await broker.subscribe(1)
        fast = await broker.subscribe(1)
        ids = []
        for n in range(5):
            ids.append(await broker.publish(1, "thread.updated", {"n": n}))
            assert (await take(fast, 1))[0].data == {"n": n}
        await asyncio.sleep(0.2)  # (Redis) let every message reach the subscribers
        got = [e.data["n"] for e in await take(slow, 3)]
        assert got == [0, 1, 2]
        with pytest.raises(SubscriberOverflow):
            await asyncio.wait_for(anext(slow), 5)
        assert broker.subscribers(1) == 1  # the fast one stays
        again = await broker.subscribe(1, last_event_id=ids[2])
        assert [e.data["n"] for e in await take(again, 2)] == [3, 4]
        await again.aclose()
        await fast.aclose()
        assert broker.subscribers(1) == 0
    finally:
        for b in made:
            await b.close()


async def test_closing_ends_the_iteration(broker: Broker) -> None:
    sub = await broker.subscribe(7)

    async def drain() -> list[Event]:
        return [e async for e in sub]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.05)
    await sub.aclose()
    assert await asyncio.wait_for(task, 5) == []
    assert broker.subscribers(7) == 0


async def test_unknown_type_is_refused_and_publish_safely_never_raises(broker: Broker) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        await broker.publish(1, "email.exploded", {})

    async def broken(events: list[tuple[int, dict[str, Any]]]) -> None:
        raise RuntimeError("the database went away")

    broker.add_enricher("email.received", broken)
    sub = await broker.subscribe(1)
    await publish_safely(broker, 1, "email.received", {"email_id": 1})  # logged, not raised
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(sub), 0.3)
    await sub.aclose()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set")
async def test_redis_fans_out_between_brokers_and_replays_across_them(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two brokers (two workers) sharing one Redis: live events and replay cross over."""
    settings = make_settings(tmp_path, "redis")
    one, two = open_broker(settings, clock), open_broker(settings, clock)
    await one.start()
    await two.start()
    try:
        on_two = await two.subscribe(1)
        first = await one.publish(1, "email.received", {"email_id": 1})
        [event] = await take(on_two, 1)
        assert (event.id, event.data) == (first, {"email_id": 1})
        second = await one.publish(1, "email.received", {"email_id": 2})
        await take(on_two, 1)
        replayed = await two.subscribe(1, last_event_id=first)
        assert [e.id for e in await take(replayed, 1)] == [second]
        await replayed.aclose()
        await on_two.aclose()
    finally:
        await one.close()
        await two.close()


async def test_an_event_published_while_the_replay_is_read_comes_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Subscribing attaches first, then reads the buffer: an event in between is in both."""
    from mailroom.events import MemoryBroker

    class Racing(MemoryBroker):
        async def replay(self, user_id: int, after: str) -> list[Event]:
            await self.publish(user_id, "thread.updated", {"n": "during"})
            return await super().replay(user_id, after)

    broker = Racing(make_settings(tmp_path, "memory"), clock)
    first = await broker.publish(1, "thread.updated", {"n": "before"})
    await broker.publish(1, "thread.updated", {"n": "missed"})
    sub = await broker.subscribe(1, last_event_id=first)
    assert [e.data["n"] for e in await take(sub, 2)] == ["missed", "during"]
    await broker.publish(1, "thread.updated", {"n": "live"})
    assert [e.data["n"] for e in await take(sub, 1)] == ["live"]  # not "during" again
    await sub.aclose()


async def test_redis_unreachable_at_start_is_an_error(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from mailroom.events import RedisBroker

    monkeypatch.setattr(RedisBroker, "START_TIMEOUT_SECONDS", 1.0)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(data_dir=tmp_path, mode="test", redis_url=f"redis://127.0.0.1:{port}/0")
    broker = open_broker(settings, clock)
    assert broker.backend == "redis"
    with pytest.raises(TimeoutError):
        await broker.start()
