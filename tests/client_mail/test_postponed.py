"""Postponed threads come back at their time: a task in every worker, not the next list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.events import Event
from mailroom.services.mail._actions import PostponedWakeUp, wake_due_postponed
from mailroom.store import mailbox_queries as queries
from tests.client_mail.conftest import Deliver, message
from tests.client_mail.test_batch import listing, ok
from tests.client_mail.test_label_counts import assert_exact
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


async def postponed_thread(
    client: httpx.AsyncClient, who: Actor, deliver: Deliver, clock: FakeClock, hours: float, subject: str
) -> int:
    await deliver(message(subject=subject, message_id=f"<{subject}@x>", to=who.name), who.name)
    [thread_id] = [t for t, s in (await listing(client, who, "inbox")).items() if s["subject"] == subject]
    until = (clock.now() + timedelta(hours=hours)).isoformat()
    await ok(client, who, "threads", [thread_id], "postpone", until=until)
    return thread_id


async def in_inbox(mailroom: Mailroom, user_id: int) -> set[int]:
    async with mailroom.runtime.db.read() as tx:
        label = await queries.label_by_name(tx, user_id, "inbox")
        assert label is not None
        rows = await queries.list_page(tx, user_id, label.id, offset=0, limit=50)
    return {r.id for r in rows}


async def test_threads_of_every_mailbox_come_back_at_their_time_with_push_events(
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    alice: Actor,
    bob: Actor,
    deliver: Deliver,
    clock: FakeClock,
) -> None:
    a1 = await postponed_thread(client, alice, deliver, clock, 1, "soon")
    a2 = await postponed_thread(client, alice, deliver, clock, 5, "later")
    b1 = await postponed_thread(client, bob, deliver, clock, 1, "bobs")
    assert alice.principal.user_id is not None
    assert bob.principal.user_id is not None
    events = await mailroom.runtime.events.subscribe(alice.principal.user_id)
    assert await wake_due_postponed(mailroom.runtime) == 0
    clock.advance(hours=1)
    assert await wake_due_postponed(mailroom.runtime) == 2
    assert await in_inbox(mailroom, alice.principal.user_id) == {a1}
    assert await in_inbox(mailroom, bob.principal.user_id) == {b1}
    updated: Event = await asyncio.wait_for(anext(events), 5)
    assert (updated.type, updated.data["action"], updated.data["thread_ids"]) == (
        "thread.updated",
        "unpostpone",
        [a1],
    )
    [summary] = updated.data["threads"]
    assert (summary["labels"], summary["is_postponed"]) == (["inbox"], False)
    counts: Event = await asyncio.wait_for(anext(events), 5)
    assert counts.type == "label.counts"
    by_name = {label["name"]: label for label in counts.data["labels"]}
    assert (by_name["inbox"]["threads_total"], by_name["postponed"]["threads_total"]) == (1, 1)
    await events.aclose()
    clock.advance(hours=4)
    assert await wake_due_postponed(mailroom.runtime) == 1
    assert await in_inbox(mailroom, alice.principal.user_id) == {a1, a2}
    await assert_exact(mailroom)


async def test_two_workers_waking_at_once_bring_each_thread_back_once(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, deliver: Deliver, clock: FakeClock
) -> None:
    threads = [await postponed_thread(client, alice, deliver, clock, 1, f"t{i}") for i in range(3)]
    clock.advance(hours=2)
    assert alice.principal.user_id is not None
    events = await mailroom.runtime.events.subscribe(alice.principal.user_id)
    woken = await asyncio.gather(*(wake_due_postponed(mailroom.runtime, limit=2) for _ in range(3)))
    assert sum(woken) == 3
    seen: list[int] = []
    while len(seen) < 3:
        event: Event = await asyncio.wait_for(anext(events), 5)
        if event.type == "thread.updated":
            seen += event.data["thread_ids"]
    assert sorted(seen) == sorted(threads)
    rest: list[str] = []
    with contextlib.suppress(TimeoutError):  # nothing more but label.counts, one per update
        while True:
            rest.append((await asyncio.wait_for(anext(events), 0.3)).type)
    assert set(rest) <= {"label.counts"}
    await events.aclose()
    await assert_exact(mailroom)


async def test_a_thread_moved_meanwhile_stays_where_it_was_put(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, deliver: Deliver, clock: FakeClock
) -> None:
    thread_id = await postponed_thread(client, alice, deliver, clock, 1, "moved")
    await ok(client, alice, "threads", [thread_id], "archive")
    clock.advance(hours=2)
    assert await wake_due_postponed(mailroom.runtime) == 0
    assert set(await listing(client, alice, "archive")) == {thread_id}


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def test_the_worker_task_wakes_them_without_any_request(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, deliver: Deliver, clock: FakeClock
) -> None:
    thread_id = await postponed_thread(client, alice, deliver, clock, 1, "task")
    user_id = alice.principal.user_id
    assert user_id is not None
    task = PostponedWakeUp(mailroom.runtime, interval=0.05)
    task.start()
    try:
        assert await task.delay() == 0.05  # due in an hour: the interval caps the sleep
        await asyncio.sleep(0.2)
        assert await in_inbox(mailroom, user_id) == set()
        clock.advance(minutes=59, seconds=59, milliseconds=990)
        assert 0 < await task.delay() <= 0.011  # due in 10 ms: sleeps until then
        clock.advance(seconds=1)

        async def back() -> bool:
            return await in_inbox(mailroom, user_id) == {thread_id}

        await eventually(back)
    finally:
        await task.stop()
    assert task.task is None


async def test_the_task_stops_even_when_its_cancellation_is_swallowed(
    mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's asyncio.wait_for (under publish_safely) can swallow a cancellation that
    meets a finishing publish: stop() must not then wait for ever."""
    from mailroom.services.mail import _actions

    started = asyncio.Event()

    async def swallowing(rt: object, **_: object) -> int:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return 0  # as wait_for does when the inner call finishes at that moment
        return 0

    monkeypatch.setattr(_actions, "wake_due_postponed", swallowing)
    task = PostponedWakeUp(mailroom.runtime, interval=30)
    task.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(task.stop(), 5)
    assert task.task is None
