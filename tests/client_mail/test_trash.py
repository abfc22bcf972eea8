"""untrash puts mail back where it was before the trash (as Gmail does), not always in the inbox."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from tests.client_mail.conftest import Deliver, at, message
from tests.client_mail.test_batch import listing, ok, thread_of
from tests.client_mail.test_label_counts import assert_exact
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"


@pytest.fixture(autouse=True)
async def receipts(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await client.post("/api/v1/labels", json={"name": "Receipts"}, headers=alice.headers)
    assert r.status_code == 201, r.text


async def labels_of_email(client: httpx.AsyncClient, who: Actor, email_id: int) -> list[str]:
    r = await client.get(f"/api/v1/emails/{email_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["labels"])


async def test_an_archived_thread_goes_back_to_the_archive_with_its_labels(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, mailroom: Mailroom
) -> None:
    await deliver(message(subject="Old", message_id="<old@x>"), A, received_at=at(1))
    [thread_id] = await listing(client, alice, "inbox")
    await ok(client, alice, "threads", [thread_id], "add_label", label="Receipts")
    await ok(client, alice, "threads", [thread_id], "archive")
    await ok(client, alice, "threads", [thread_id], "trash")
    assert (await thread_of(client, alice, thread_id))["labels"] == ["Receipts", "trash"]
    await ok(client, alice, "threads", [thread_id], "trash")  # twice: still remembers the archive
    await ok(client, alice, "threads", [thread_id], "untrash")
    assert (await thread_of(client, alice, thread_id))["labels"] == ["Receipts", "archive"]
    assert await listing(client, alice, "inbox") == {}
    await assert_exact(mailroom)


async def test_each_email_of_a_thread_goes_back_where_it_was(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, mailroom: Mailroom
) -> None:
    e1 = await deliver(message(subject="Plan", message_id="<p1@x>"), A, received_at=at(1))
    e2 = await deliver(
        message(subject="Re: Plan", message_id="<p2@x>", in_reply_to="<p1@x>"), A, received_at=at(2)
    )
    e3 = await deliver(
        message(
            subject="Re: Plan", sender=A, to="bob@example.net", message_id="<p3@x>", in_reply_to="<p2@x>"
        ),
        A,
        received_at=at(3),
        labels=("sent",),
    )
    await ok(client, alice, "emails", [e1], "archive")
    [thread_id] = await listing(client, alice, "inbox")
    await ok(client, alice, "threads", [thread_id], "trash")
    assert await listing(client, alice, "inbox") == {}
    await ok(client, alice, "threads", [thread_id], "untrash")
    assert await labels_of_email(client, alice, e1) == ["archive"]
    assert await labels_of_email(client, alice, e2) == ["inbox"]
    assert await labels_of_email(client, alice, e3) == ["sent"]
    await assert_exact(mailroom)


async def test_spam_moved_to_the_trash_goes_back_to_spam(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(subject="Buy", message_id="<b@x>"), A, labels=("spam",))
    await ok(client, alice, "emails", [email_id], "move", label="trash")
    assert await labels_of_email(client, alice, email_id) == ["trash"]
    await ok(client, alice, "emails", [email_id], "untrash")
    assert await labels_of_email(client, alice, email_id) == ["spam"]


async def test_a_postponed_thread_comes_back_to_the_inbox(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, clock: FakeClock
) -> None:
    email_id = await deliver(message(subject="Later", message_id="<l@x>"), A)
    [thread_id] = await listing(client, alice, "inbox")
    until = (clock.now() + timedelta(days=1)).isoformat()
    await ok(client, alice, "threads", [thread_id], "postpone", until=until)
    await ok(client, alice, "threads", [thread_id], "trash")
    await ok(client, alice, "threads", [thread_id], "untrash")
    assert await labels_of_email(client, alice, email_id) == ["inbox"]
    assert (await thread_of(client, alice, thread_id))["is_postponed"] is False


async def test_mail_of_unknown_origin_goes_to_the_inbox_unless_it_is_ones_own(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    theirs = await deliver(message(subject="In trash", message_id="<t@x>"), A, labels=("trash",))
    mine = await deliver(
        message(subject="Mine", sender=A, to="bob@example.net", message_id="<m@x>"),
        A,
        labels=("sent", "trash"),
    )
    await ok(client, alice, "emails", [theirs, mine], "untrash")
    assert await labels_of_email(client, alice, theirs) == ["inbox"]
    assert await labels_of_email(client, alice, mine) == ["sent"]


async def test_untrash_leaves_mail_that_is_not_in_the_trash_alone(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(subject="Kept", message_id="<k@x>"), A)
    await ok(client, alice, "emails", [email_id], "archive")
    await ok(client, alice, "emails", [email_id], "untrash")
    assert await labels_of_email(client, alice, email_id) == ["archive"]


async def test_leaving_the_trash_otherwise_forgets_the_origin(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(subject="Moved", message_id="<mv@x>"), A)
    await ok(client, alice, "emails", [email_id], "archive")
    await ok(client, alice, "emails", [email_id], "trash")
    await ok(client, alice, "emails", [email_id], "move", label="Receipts")
    # Back in the trash from a user label only: it came from nowhere in particular.
    await ok(client, alice, "emails", [email_id], "trash")
    await ok(client, alice, "emails", [email_id], "untrash")
    assert await labels_of_email(client, alice, email_id) == ["Receipts"]
