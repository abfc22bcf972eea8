"""Repository functions the mail client API builds on: threads by label, flags, labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.mailhelpers import create_user, message

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.store import emails as email_store
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store import threads as thread_store

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def fill(mailroom: Mailroom, user_id: int, n: int) -> list[int]:
    """``n`` one-message threads arriving an hour apart; returns email ids, oldest first."""
    target = Resolution("alice@example.org", "accepted", [LocalTarget(user_id, "alice@example.org")])
    ids = []
    for i in range(n):
        raw = message(message_id=f"<t{i}@x>", subject=f"Topic {i}")
        options = IngestOptions(received_at=T0 + timedelta(hours=i))
        [r] = await ingest(
            mailroom.runtime, raw, mail_from="", recipients=[target], source="lmtp", options=options
        )
        ids.append(r.email_ids[0])
    return ids


async def test_threads_by_label_newest_first_with_paging(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    await fill(mailroom, alice, 7)
    async with mailroom.runtime.db.read() as tx:
        inbox = (await label_store.ids_by_name(tx, alice))["inbox"]
        first = await thread_store.list_by_label(tx, alice, inbox, offset=0, limit=3)
        second = await thread_store.list_by_label(tx, alice, inbox, offset=3, limit=3)
        total = (await queries.label_counts(tx, alice, inbox))[0].threads_total
    assert [t.subject for t in first] == ["Topic 6", "Topic 5", "Topic 4"]
    assert [t.subject for t in second] == ["Topic 3", "Topic 2", "Topic 1"]
    assert total == 7
    assert first[0].label_ids == (inbox,)
    assert first[0].snippet.startswith("Hello Alice")


async def test_a_reply_moves_its_thread_to_the_top(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    await fill(mailroom, alice, 3)
    target = Resolution("alice@example.org", "accepted", [LocalTarget(alice, "alice@example.org")])
    reply = message(
        message_id="<r@x>", subject="Re: Topic 0", in_reply_to="<t0@x>", sender="Carol <carol@x.net>"
    )
    options = IngestOptions(received_at=T0 + timedelta(days=1))
    await ingest(mailroom.runtime, reply, mail_from="", recipients=[target], source="lmtp", options=options)
    async with mailroom.runtime.db.read() as tx:
        inbox = (await label_store.ids_by_name(tx, alice))["inbox"]
        [top, *_] = await thread_store.list_by_label(tx, alice, inbox)
    assert top.subject == "Topic 0"
    assert top.n_emails == 2
    assert top.latest_subject == "Re: Topic 0"
    assert [p["email"] for p in top.participants] == ["bob@example.net", "carol@x.net"]


async def test_flags_and_labels_keep_thread_summaries_in_step(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    [a, b] = await fill(mailroom, alice, 2)
    now = mailroom.runtime.clock.now()
    async with mailroom.runtime.db.write() as tx:
        assert await email_store.set_flags(tx, alice, [a, 9999], now=now, is_read=True, is_starred=True) == [
            a
        ]
        await email_store.change_labels(
            tx, alice, [b], add=["archive", "Receipts"], remove=["inbox"], now=now
        )
    async with mailroom.runtime.db.read() as tx:
        names = await label_store.ids_by_name(tx, alice)
        starred = await thread_store.list_by_label(tx, alice, names["starred"])
        inbox = await thread_store.list_by_label(tx, alice, names["inbox"])
        receipts = await thread_store.list_by_label(tx, alice, names["Receipts"])
        email_a = await email_store.get(tx, alice, a)
        counts = {r.name: (r.threads_total, r.threads_unread) for r in await queries.label_counts(tx, alice)}
    assert [t.subject for t in starred] == ["Topic 0"]
    assert starred[0].n_unread == 0
    assert starred[0].n_starred == 1
    assert [t.subject for t in inbox] == ["Topic 0"]
    assert [t.subject for t in receipts] == ["Topic 1"]
    assert email_a is not None
    assert email_a.labels == ("inbox", "starred")
    assert counts["inbox"] == (1, 0)
    assert counts["Receipts"] == (1, 1)
    assert counts["trash"] == (0, 0)


async def test_deleting_the_last_email_removes_the_thread(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    [a] = await fill(mailroom, alice, 1)
    async with mailroom.runtime.db.write() as tx:
        email = await email_store.get(tx, alice, a)
        assert email is not None
        await email_store.delete_emails(tx, alice, [a])
        assert await thread_store.get(tx, alice, email.thread_id) is None
        assert await email_store.of_thread(tx, alice, email.thread_id) == []
