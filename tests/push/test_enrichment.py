"""``email.received`` events of one group commit are enriched together: each carries its own
thread's summary, and each mailbox's summaries are read once for the whole group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.events import Event
from mailroom.services.mail import _push
from tests.conftest import Actor
from tests.mailhelpers import message
from tests.push.conftest import Deliver

pytestmark = pytest.mark.anyio
MakeUser = Callable[..., Awaitable[Actor]]


async def test_a_group_of_new_mail_is_enriched_together(
    mailroom: Mailroom, make_user: MakeUser, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_user("alice@example.org")
    bob = await make_user("bob@example.org")
    reads: list[tuple[int, list[int]]] = []
    real = _push._summaries

    async def counting(tx: Any, user_id: int, thread_ids: list[int]) -> list[dict[str, Any]]:
        reads.append((user_id, list(thread_ids)))
        return await real(tx, user_id, thread_ids)

    monkeypatch.setattr(_push, "_summaries", counting)
    events = mailroom.runtime.events
    subs = {a.email: await events.subscribe(a.principal.user_id or 0) for a in (alice, bob)}
    subjects = {
        "alice@example.org": ["Lunch?", "Budget", "Re: Lunch?"],
        "bob@example.org": ["Hello Bob", "Minutes"],
    }
    # Delivered at once: the group commit takes them in one or a few transactions.
    await asyncio.gather(
        *(
            deliver(message(subject=subject, to=rcpt, message_id=f"<{hash(subject)}.{rcpt}>"), rcpt)
            for rcpt, subject_list in subjects.items()
            for subject in subject_list
        )
    )
    for rcpt, subject_list in subjects.items():
        got: list[Event] = [await asyncio.wait_for(anext(subs[rcpt]), 5) for _ in subject_list]
        assert sorted(e.data["subject"] for e in got) == sorted(subject_list)
        for event in got:
            thread = event.data["thread"]
            assert thread is not None
            assert thread["thread_id"] == event.data["thread_id"]
            assert thread["subject"].removeprefix("Re: ") == event.data["subject"].removeprefix("Re: ")
        await subs[rcpt].aclose()
    # Fewer reads than messages: one per mailbox per group, whatever the grouping was.
    assert len(reads) < sum(len(s) for s in subjects.values())
    assert {user_id for user_id, _ in reads} == {alice.principal.user_id, bob.principal.user_id}


async def test_nobody_listening_reads_no_summary_and_a_replay_gets_it(
    mailroom: Mailroom, make_user: MakeUser, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_user("alice@example.org")
    user_id = alice.principal.user_id or 0
    reads: list[list[int]] = []
    real = _push._summaries

    async def counting(tx: Any, uid: int, thread_ids: list[int]) -> list[dict[str, Any]]:
        reads.append(list(thread_ids))
        return await real(tx, uid, thread_ids)

    monkeypatch.setattr(_push, "_summaries", counting)
    events = mailroom.runtime.events
    assert not events.listening(user_id)
    before = await events.publish(user_id, "label.counts", {"labels": []})
    await deliver(message(subject="While away", to="alice@example.org"), "alice@example.org")
    assert reads == []  # nobody listens: no summary read after the commit

    sub = await events.subscribe(user_id, before)  # a client reconnects: the replay enriches
    event = await asyncio.wait_for(anext(sub), 5)
    assert event.type == "email.received"
    assert event.data["thread"]["subject"] == "While away"
    assert event.data["thread"]["thread_id"] == event.data["thread_id"]
    assert isinstance(event.data["state"], int)
    assert len(reads) == 1

    await deliver(message(subject="Live one", to="alice@example.org"), "alice@example.org")
    live = await asyncio.wait_for(anext(sub), 5)  # listened to now: enriched as it is published
    assert live.data["thread"]["subject"] == "Live one"
    assert len(reads) == 2
    await sub.aclose()
