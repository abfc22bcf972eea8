"""The labels' maintained counts (``labels.threads_total`` ...) stay exact.

After every kind of change (ingest, threading merges, each batch action, delete, label
rename and delete, mute, spam, postponing and its return) the counts must equal what
counting ``thread_labels`` gives, and ``thread_labels`` must equal what the emails'
labels give: :func:`assert_exact` recomputes both from scratch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import case, func, select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.services.mail._actions import wake_due_postponed
from mailroom.store.mail_schema import email_labels, emails, labels, thread_labels, threads
from tests.client_mail.conftest import Deliver, at, message
from tests.client_mail.test_batch import listing, ok
from tests.client_mail.test_labels import labels as label_map
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"


async def assert_exact(mailroom: Mailroom) -> None:
    """Every label's counts, every thread's label rows and unread/starred counts, recounted."""
    async with mailroom.runtime.db.read() as tx:
        kept = {
            int(r["id"]): (r["threads_total"], r["threads_unread"], r["emails_total"], r["emails_unread"])
            for r in await tx.all(select(labels))
        }
        counted = {
            int(r["label_id"]): (r["t"], r["tu"], r["e"], r["eu"])
            for r in await tx.all(
                select(
                    thread_labels.c.label_id,
                    func.count().label("t"),
                    func.sum(case((thread_labels.c.n_unread > 0, 1), else_=0)).label("tu"),
                    func.sum(thread_labels.c.n_emails).label("e"),
                    func.sum(thread_labels.c.n_unread).label("eu"),
                ).group_by(thread_labels.c.label_id)
            )
        }
        rows = {
            (r["label_id"], r["thread_id"]): (r["n_emails"], r["n_unread"], r["last_date"])
            for r in await tx.all(select(thread_labels))
        }
        unread = func.sum(case((emails.c.is_read.is_(False), 1), else_=0))
        expected_rows = {
            (r["label_id"], r["thread_id"]): (r["n"], r["u"], r["last_date"])
            for r in await tx.all(
                select(
                    email_labels.c.label_id,
                    emails.c.thread_id,
                    func.count().label("n"),
                    unread.label("u"),
                    threads.c.last_date,
                )
                .select_from(
                    email_labels.join(emails, emails.c.id == email_labels.c.email_id).join(
                        threads, threads.c.id == emails.c.thread_id
                    )
                )
                .group_by(email_labels.c.label_id, emails.c.thread_id, threads.c.last_date)
            )
        }
        summaries = {
            int(r["id"]): (r["n_emails"], r["n_unread"], r["n_starred"])
            for r in await tx.all(
                select(threads.c.id, threads.c.n_emails, threads.c.n_unread, threads.c.n_starred)
            )
        }
        expected_summaries = {
            int(r["thread_id"]): (r["n"], r["u"], r["s"])
            for r in await tx.all(
                select(
                    emails.c.thread_id,
                    func.count().label("n"),
                    unread.label("u"),
                    func.sum(case((emails.c.is_starred.is_(True), 1), else_=0)).label("s"),
                ).group_by(emails.c.thread_id)
            )
        }
    assert rows == expected_rows
    assert summaries == expected_summaries
    assert kept == {i: counted.get(i, (0, 0, 0, 0)) for i in kept}


async def label_count(client: httpx.AsyncClient, who: Actor, name: str) -> dict[str, Any]:
    return (await label_map(client, who))[name]


@pytest.fixture
async def mailbox(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, mailroom: Mailroom
) -> dict[str, Any]:
    """Five threads, one of three emails, one of the owner's own sent mail, one read."""
    ids: dict[str, Any] = {}
    ids["p1"] = await deliver(message(subject="Plan", message_id="<p1@x>"), A, received_at=at(1))
    ids["p2"] = await deliver(
        message(subject="Re: Plan", message_id="<p2@x>", in_reply_to="<p1@x>"), A, received_at=at(2)
    )
    ids["p3"] = await deliver(
        message(subject="Re: Plan", message_id="<p3@x>", in_reply_to="<p2@x>"), A, received_at=at(3)
    )
    ids["o"] = await deliver(message(subject="Other", message_id="<o@x>"), A, received_at=at(4))
    ids["r"] = await deliver(message(subject="Read", message_id="<r@x>"), A, received_at=at(5), is_read=True)
    ids["x"] = await deliver(message(subject="Extra", message_id="<x@x>"), A, received_at=at(6))
    ids["s"] = await deliver(
        message(subject="Mine", sender=A, to="bob@example.net", message_id="<s@x>"),
        A,
        received_at=at(7),
        labels=("sent",),
        is_read=True,
    )
    inbox = await listing(client, alice, "inbox")
    ids["threads"] = {t["subject"]: tid for tid, t in inbox.items()}
    ids["sent_thread"] = next(iter(await listing(client, alice, "sent")))
    r = await client.post("/api/v1/labels", json={"name": "Receipts"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    await assert_exact(mailroom)
    return ids


async def test_ingest_keeps_counts_exact(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, mailbox: dict[str, Any]
) -> None:
    inbox = await label_count(client, alice, "inbox")
    assert (inbox["threads_total"], inbox["threads_unread"]) == (4, 3)
    assert (inbox["emails_total"], inbox["emails_unread"]) == (6, 5)
    r = await client.get("/api/v1/threads", params={"label": "inbox", "limit": 2}, headers=alice.headers)
    assert r.json()["n_threads"] == 4  # not the last page: the maintained count


async def test_a_late_parent_merging_threads_keeps_counts_exact(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, deliver: Deliver
) -> None:
    # Two replies to a parent not yet arrived, unrelated to each other: then the parent.
    await deliver(message(subject="Re: A", message_id="<c1@x>", references="<root@x>"), A, received_at=at(2))
    await deliver(message(subject="Re: B", message_id="<c2@x>", references="<other@x>"), A, received_at=at(3))
    await deliver(
        message(subject="A", message_id="<other@x>", references="<root@x>"),
        A,
        received_at=at(1),
        is_read=True,
    )
    await assert_exact(mailroom)
    assert (await label_count(client, alice, "inbox"))["emails_total"] == 3


@pytest.mark.parametrize(
    ("kind", "action", "extra"),
    [
        ("threads", "archive", {}),
        ("threads", "unarchive", {}),
        ("emails", "archive", {}),
        ("threads", "read", {}),
        ("emails", "unread", {}),
        ("threads", "star", {}),
        ("emails", "unstar", {}),
        ("threads", "spam", {}),
        ("emails", "not_spam", {}),
        ("threads", "trash", {}),
        ("emails", "untrash", {}),
        ("threads", "move", {"label": "Receipts"}),
        ("emails", "add_label", {"label": "Receipts"}),
        ("threads", "remove_label", {"label": "inbox"}),
        ("threads", "mute", {}),
        ("emails", "mute", {}),
        ("threads", "unmute", {}),
        ("emails", "postpone", {"until": "2099-01-01T00:00:00+00:00"}),
    ],
)
async def test_every_batch_action_keeps_counts_exact(
    client: httpx.AsyncClient,
    alice: Actor,
    mailroom: Mailroom,
    mailbox: dict[str, Any],
    kind: str,
    action: str,
    extra: dict[str, Any],
) -> None:
    plan, other = mailbox["threads"]["Re: Plan"], mailbox["threads"]["Other"]
    # Some variety first: one email read, one thread starred, one archived.
    await ok(client, alice, "emails", [mailbox["p2"]], "read")
    await ok(client, alice, "threads", [other], "star")
    await ok(client, alice, "threads", [mailbox["threads"]["Extra"]], "archive")
    await assert_exact(mailroom)
    ids = (
        [plan, other, mailbox["sent_thread"]]
        if kind == "threads"
        else [mailbox["p1"], mailbox["p3"], mailbox["o"]]
    )
    await ok(client, alice, kind, ids, action, **extra)
    await assert_exact(mailroom)
    # And back, or on to the trash and a delete for good.
    await ok(client, alice, kind, ids, "trash")
    await assert_exact(mailroom)
    await ok(client, alice, kind, ids, "untrash")
    await assert_exact(mailroom)


async def test_delete_for_good_keeps_counts_exact(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, mailbox: dict[str, Any]
) -> None:
    plan = mailbox["threads"]["Re: Plan"]
    await ok(client, alice, "emails", [mailbox["p3"]], "trash")  # part of a thread
    await ok(client, alice, "emails", [mailbox["p3"]], "delete")
    await assert_exact(mailroom)
    await ok(client, alice, "threads", [plan, mailbox["threads"]["Other"]], "spam")
    await ok(client, alice, "threads", [plan, mailbox["threads"]["Other"]], "delete")  # whole threads
    await assert_exact(mailroom)
    assert (await label_count(client, alice, "spam"))["threads_total"] == 0
    inbox = await label_count(client, alice, "inbox")
    assert (inbox["threads_total"], inbox["emails_total"]) == (2, 2)


async def test_label_rename_and_delete_keep_counts_exact(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, mailbox: dict[str, Any]
) -> None:
    r = await client.post("/api/v1/labels", json={"name": "Work"}, headers=alice.headers)
    work = r.json()["id"]
    await ok(client, alice, "threads", [mailbox["threads"]["Re: Plan"]], "add_label", label="Work")
    r = await client.patch(f"/api/v1/labels/{work}", json={"name": "Job"}, headers=alice.headers)
    assert (r.json()["threads_total"], r.json()["emails_total"], r.json()["emails_unread"]) == (1, 3, 3)
    await assert_exact(mailroom)
    assert (await client.delete(f"/api/v1/labels/{work}", headers=alice.headers)).status_code == 204
    await assert_exact(mailroom)
    assert (await label_count(client, alice, "inbox"))["threads_total"] == 4


async def test_postponed_threads_coming_back_keep_counts_exact(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, clock: FakeClock, mailbox: dict[str, Any]
) -> None:
    until = clock.now() + timedelta(hours=1)
    threads_ = [mailbox["threads"]["Re: Plan"], mailbox["threads"]["Other"]]
    await ok(client, alice, "threads", threads_, "postpone", until=until.isoformat())
    await assert_exact(mailroom)
    assert (await label_count(client, alice, "postponed"))["threads_total"] == 2
    clock.advance(hours=2)
    assert await wake_due_postponed(mailroom.runtime) == 2
    await assert_exact(mailroom)
    assert (await label_count(client, alice, "postponed"))["threads_total"] == 0
    assert (await label_count(client, alice, "inbox"))["threads_total"] == 4


async def test_batches_larger_than_one_chunk_keep_counts_exact(
    client: httpx.AsyncClient,
    alice: Actor,
    mailroom: Mailroom,
    mailbox: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.store import _prepared

    monkeypatch.setattr(_prepared, "IN_CHUNK", 2)  # 5 threads: three chunks
    every = [*mailbox["threads"].values(), mailbox["sent_thread"]]
    for action in ("read", "archive", "unread", "unarchive", "star"):
        await ok(client, alice, "threads", every, action)
        await assert_exact(mailroom)
    inbox = await label_count(client, alice, "inbox")
    assert (inbox["threads_total"], inbox["emails_total"], inbox["emails_unread"]) == (5, 7, 7)
