"""mail.threads.batch / mail.emails.batch over REST: every action, validation, isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.store.mail_schema import blobs, emails
from mailroom.store.schema import users
from tests.client_mail.conftest import Deliver, at, message, problem
from tests.client_mail.test_labels import labels
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"


async def batch(
    client: httpx.AsyncClient, who: Actor, kind: str, ids: list[int], action: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/{kind}/batch", json={"ids": ids, "action": action, **extra}, headers=who.headers
    )


async def ok(
    client: httpx.AsyncClient, who: Actor, kind: str, ids: list[int], action: str, **extra: Any
) -> None:
    r = await batch(client, who, kind, ids, action, **extra)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "n_ok": len(set(ids)),
        "results": [{"id": i, "ok": True, "error": None, "message": None} for i in dict.fromkeys(ids)],
    }


async def listing(client: httpx.AsyncClient, who: Actor, label: str) -> dict[int, dict[str, Any]]:
    r = await client.get("/api/v1/threads", params={"label": label}, headers=who.headers)
    assert r.status_code == 200, r.text
    return {t["thread_id"]: t for t in r.json()["threads"]}


async def thread_of(client: httpx.AsyncClient, who: Actor, thread_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/threads/{thread_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def two_threads(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> tuple[int, int, list[int]]:
    """Alice's inbox: a thread of two emails and a thread of one; (thread 1, thread 2, emails)."""
    e1 = await deliver(message(subject="Plan", message_id="<p1@x>"), A, received_at=at(1))
    e2 = await deliver(
        message(subject="Re: Plan", message_id="<p2@x>", in_reply_to="<p1@x>"), A, received_at=at(2)
    )
    e3 = await deliver(message(subject="Other", message_id="<o@x>"), A, received_at=at(3))
    inbox = await listing(client, alice, "inbox")
    by_subject = {t["subject"]: tid for tid, t in inbox.items()}
    return by_subject["Re: Plan"], by_subject["Other"], [e1, e2, e3]


async def test_archive_and_unarchive(client: httpx.AsyncClient, alice: Actor, two_threads: Any) -> None:
    t1, t2, _ = two_threads
    await ok(client, alice, "threads", [t1], "archive")
    assert set(await listing(client, alice, "inbox")) == {t2}
    assert (await listing(client, alice, "archive"))[t1]["labels"] == ["archive"]
    counts = await labels(client, alice)
    assert (counts["inbox"]["threads_total"], counts["inbox"]["emails_total"]) == (1, 1)
    assert (counts["archive"]["threads_total"], counts["archive"]["emails_unread"]) == (1, 2)
    await ok(client, alice, "threads", [t1], "unarchive")
    assert set(await listing(client, alice, "inbox")) == {t1, t2}
    assert await listing(client, alice, "archive") == {}


async def test_read_unread_star_unstar(client: httpx.AsyncClient, alice: Actor, two_threads: Any) -> None:
    t1, t2, (e1, e2, _) = two_threads
    await ok(client, alice, "emails", [e1], "read")
    assert (await thread_of(client, alice, t1))["is_read"] is False  # e2 is still unread
    await ok(client, alice, "threads", [t1, t2], "read")
    assert all(t["is_read"] for t in (await listing(client, alice, "inbox")).values())
    await ok(client, alice, "emails", [e2], "unread")
    assert (await thread_of(client, alice, t1))["n_unread"] == 1
    await ok(client, alice, "emails", [e2], "star")
    starred = await thread_of(client, alice, t1)
    assert starred["is_starred"] is True
    assert "starred" in starred["labels"]
    await ok(client, alice, "threads", [t1], "unstar")
    assert (await thread_of(client, alice, t1))["is_starred"] is False


async def test_spam_and_trash_round_trips(client: httpx.AsyncClient, alice: Actor, two_threads: Any) -> None:
    t1, t2, _ = two_threads
    await ok(client, alice, "threads", [t1], "spam")
    assert set(await listing(client, alice, "spam")) == {t1}
    assert set(await listing(client, alice, "inbox")) == {t2}
    await ok(client, alice, "threads", [t1], "not_spam")
    assert set(await listing(client, alice, "inbox")) == {t1, t2}
    await ok(client, alice, "threads", [t2], "trash")
    assert set(await listing(client, alice, "trash")) == {t2}
    await ok(client, alice, "threads", [t2], "untrash")
    assert await listing(client, alice, "trash") == {}
    assert set(await listing(client, alice, "inbox")) == {t1, t2}


async def test_untrash_keeps_sent_mail_out_of_the_inbox(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    await deliver(message(subject="Mine", sender=A, to="bob@example.net"), A, labels=("sent",))
    [thread_id] = await listing(client, alice, "sent")
    await ok(client, alice, "threads", [thread_id], "trash")
    await ok(client, alice, "threads", [thread_id], "untrash")
    assert await listing(client, alice, "inbox") == {}
    assert (await thread_of(client, alice, thread_id))["labels"] == ["sent"]


async def quota_used(mailroom: Mailroom, email: str) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(users.c.quota_bytes_used).where(users.c.email == email)))


async def test_delete_only_from_trash_or_spam_and_gives_back_quota_and_blobs(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    shared = message(subject="Both", message_id="<both@x>")
    mine = message(subject="Alone", message_id="<alone@x>", body="only for alice\r\n")
    e_shared = await deliver(shared, A)
    await deliver(shared, "bob@example.org")
    e_mine = await deliver(mine, A)
    before = await quota_used(mailroom, A)
    r = await batch(client, alice, "emails", [e_shared, e_mine], "delete")
    assert r.status_code == 200
    assert [(i["id"], i["ok"], i["error"]) for i in r.json()["results"]] == [
        (e_shared, False, "conflict"),
        (e_mine, False, "conflict"),
    ]
    assert await quota_used(mailroom, A) == before
    await ok(client, alice, "emails", [e_shared], "trash")
    await ok(client, alice, "emails", [e_mine], "spam")
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.all(select(emails.c.id, emails.c.blob_sha, emails.c.size))
    shas = {r["id"]: r["blob_sha"] for r in rows}
    sizes = {r["id"]: r["size"] for r in rows}
    await ok(client, alice, "emails", [e_shared, e_mine], "delete")
    assert await quota_used(mailroom, A) == before - sizes[e_shared] - sizes[e_mine]
    problem(await client.get(f"/api/v1/emails/{e_mine}", headers=alice.headers), 404, "not_found")
    assert await listing(client, alice, "trash") == {}
    async with mailroom.runtime.db.read() as tx:
        left = set(await tx.scalars(select(blobs.c.sha)))
    assert shas[e_shared] in left  # Bob still has it
    assert shas[e_mine] not in left
    assert await mailroom.runtime.blobs.exists(shas[e_shared])
    assert not await mailroom.runtime.blobs.exists(shas[e_mine])
    assert (await listing(client, bob, "inbox")) != {}


async def test_move_and_labels(client: httpx.AsyncClient, alice: Actor, two_threads: Any) -> None:
    t1, t2, _ = two_threads
    r = await client.post("/api/v1/labels", json={"name": "Work"}, headers=alice.headers)
    work_id = r.json()["id"]
    await ok(client, alice, "threads", [t1], "move", label="Work")
    assert set(await listing(client, alice, "inbox")) == {t2}
    assert (await listing(client, alice, "Work"))[t1]["labels"] == ["Work"]
    await ok(client, alice, "threads", [t2], "add_label", label=str(work_id))
    assert set(await listing(client, alice, "Work")) == {t1, t2}
    assert (await listing(client, alice, "inbox"))[t2]["labels"] == ["Work", "inbox"]
    await ok(client, alice, "threads", [t1, t2], "remove_label", label="Work")
    assert await listing(client, alice, "Work") == {}
    r = await batch(client, alice, "threads", [t1], "add_label", label="Nope")
    problem(r, 404, "not_found")
    r = await batch(client, alice, "threads", [t1], "move")
    problem(r, 422, "invalid_params")
    r = await batch(client, alice, "threads", [t1], "add_label", label="postponed")
    problem(r, 422, "invalid_params")


async def test_postpone_leaves_the_inbox_and_comes_back(
    client: httpx.AsyncClient, alice: Actor, clock: FakeClock, two_threads: Any
) -> None:
    t1, t2, _ = two_threads
    later = clock.now() + timedelta(hours=3)
    await ok(client, alice, "threads", [t1], "postpone", until=later.isoformat())
    assert set(await listing(client, alice, "inbox")) == {t2}
    postponed = (await listing(client, alice, "postponed"))[t1]
    assert postponed["is_postponed"] is True
    assert postponed["postponed_until"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    clock.advance(hours=2)
    assert set(await listing(client, alice, "inbox")) == {t2}
    clock.advance(hours=2)
    inbox = await listing(client, alice, "inbox")
    assert set(inbox) == {t1, t2}
    assert inbox[t1]["is_postponed"] is False
    assert inbox[t1]["labels"] == ["inbox"]
    assert await listing(client, alice, "postponed") == {}


async def test_postpone_needs_a_future_time(
    client: httpx.AsyncClient, alice: Actor, clock: FakeClock
) -> None:
    for extra in (
        {},
        {"until": (clock.now() - timedelta(minutes=1)).isoformat()},
        {"until": "2030-01-01T00:00:00"},
    ):
        problem(await batch(client, alice, "threads", [1], "postpone", **extra), 422, "invalid_params")


async def test_mute_archives_and_unmute(client: httpx.AsyncClient, alice: Actor, two_threads: Any) -> None:
    t1, t2, (e1, _, _) = two_threads
    await ok(client, alice, "emails", [e1], "mute")
    assert set(await listing(client, alice, "inbox")) == {t2}
    muted = await thread_of(client, alice, t1)
    assert muted["is_muted"] is True
    assert muted["labels"] == ["archive"]
    await ok(client, alice, "threads", [t1], "unmute")
    assert (await thread_of(client, alice, t1))["is_muted"] is False


async def test_replies_to_a_muted_thread_skip_the_inbox(
    client: httpx.AsyncClient, alice: Actor, two_threads: Any, deliver: Deliver
) -> None:
    t1, t2, _ = two_threads
    await ok(client, alice, "threads", [t1], "mute")
    reply = message(subject="Re: Plan", message_id="<p3@x>", in_reply_to="<p2@x>", references="<p1@x> <p2@x>")
    await deliver(reply, A, received_at=at(4))
    assert set(await listing(client, alice, "inbox")) == {t2}
    archived = await listing(client, alice, "archive")
    assert archived[t1]["n_emails"] == 3
    assert archived[t1]["labels"] == ["archive"]
    await ok(client, alice, "threads", [t1], "unmute")
    after = message(subject="Re: Plan", message_id="<p4@x>", in_reply_to="<p3@x>")
    await deliver(after, A, received_at=at(5))
    assert t1 in await listing(client, alice, "inbox")


async def test_validation(client: httpx.AsyncClient, alice: Actor) -> None:
    problem(await batch(client, alice, "threads", [], "read"), 422, "invalid_params")
    problem(await batch(client, alice, "threads", list(range(1, 1002)), "read"), 422, "invalid_params")
    problem(await batch(client, alice, "threads", [1], "explode"), 422, "invalid_params")
    problem(await batch(client, alice, "emails", [0], "read"), 422, "invalid_params")
    r = await client.post("/api/v1/emails/batch", json={"ids": [1]}, headers=alice.headers)
    problem(r, 422, "invalid_params")
    r = await batch(client, alice, "threads", list(range(1, 1001)), "read")
    assert r.status_code == 200
    assert r.json()["n_ok"] == 0


async def test_other_users_ids_are_not_found_and_untouched(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver, two_threads: Any
) -> None:
    t1, t2, (e1, e2, e3) = two_threads
    bob_email = await deliver(message(subject="Bob's", message_id="<bob@x>"), "bob@example.org")
    [bob_thread] = await listing(client, bob, "inbox")
    before = await listing(client, alice, "inbox")
    for action in ("trash", "read", "star", "archive", "spam", "mute"):
        r = await batch(client, bob, "threads", [t1, t2, bob_thread], action)
        assert r.status_code == 200
        results = r.json()["results"]
        assert [(i["id"], i["ok"], i["error"]) for i in results] == [
            (t1, False, "not_found"),
            (t2, False, "not_found"),
            (bob_thread, True, None),
        ]
        r = await batch(client, bob, "emails", [e1, e2, e3], action)
        assert r.json()["n_ok"] == 0
        assert {i["error"] for i in r.json()["results"]} == {"not_found"}
    for action in ("trash", "delete"):
        r = await batch(client, bob, "emails", [e1, bob_email], action)
        assert r.json()["results"][0]["error"] == "not_found"
    assert await listing(client, alice, "inbox") == before
    problem(await client.get(f"/api/v1/emails/{bob_email}", headers=bob.headers), 404, "not_found")


async def test_moving_a_postponed_thread_ends_the_postponement(
    client: httpx.AsyncClient, alice: Actor, clock: FakeClock, two_threads: Any
) -> None:
    t1, t2, _ = two_threads
    later = (clock.now() + timedelta(days=1)).isoformat()
    await ok(client, alice, "threads", [t1, t2], "postpone", until=later)
    await ok(client, alice, "threads", [t1], "unarchive")
    inbox = await listing(client, alice, "inbox")
    assert set(inbox) == {t1}
    assert inbox[t1]["is_postponed"] is False
    assert inbox[t1]["labels"] == ["inbox"]
    assert set(await listing(client, alice, "postponed")) == {t2}
    await ok(client, alice, "threads", [t2], "trash")
    assert await listing(client, alice, "postponed") == {}
    assert (await thread_of(client, alice, t2))["postponed_until"] is None
