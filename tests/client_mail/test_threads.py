"""mail.threads.list / mail.threads.get over REST: summaries, order, paging, labels, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.services.mail._mailbox import encryption_level, participants_snippet
from mailroom.store import mailbox_queries
from mailroom.store.engine import SQLiteDatabase
from tests.client_mail.conftest import Deliver, at, message, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


async def threads(client: httpx.AsyncClient, who: Actor, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/threads", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_inbox_lists_threads_newest_first_with_their_summary(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    await deliver(
        message(subject="First", message_id="<a@x>", sender="Billy Joel <billy@example.net>"),
        "alice@example.org",
        received_at=at(1),
    )
    await deliver(
        message(subject="Second", message_id="<b@x>", body="Second body text\r\n"),
        "alice@example.org",
        received_at=at(2),
    )
    body = await threads(client, alice)
    assert body["n_threads"] == 2
    first, second = body["threads"]
    assert (first["subject"], second["subject"]) == ("Second", "First")
    assert second["participants"] == "Billy Joel"
    assert first["snippet"].startswith("Second body text")
    assert first["labels"] == ["inbox"]
    assert first["n_emails"] == 1
    assert first["is_read"] is False
    assert first["is_starred"] is False
    assert first["has_attachments"] is False
    assert first["encryption_level"] == "unencrypted"
    assert first["is_postponed"] is False
    assert first["last_date"].startswith("2026-01-02T10:00:00")
    assert isinstance(first["thread_id"], int)


async def test_a_reply_joins_its_thread_and_moves_it_up(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    await deliver(
        message(subject="Plan", message_id="<p1@x>", sender="Bob <bob@example.net>"),
        "alice@example.org",
        received_at=at(1),
    )
    await deliver(message(subject="Other", message_id="<o1@x>"), "alice@example.org", received_at=at(2))
    await deliver(
        message(
            subject="Re: Plan",
            message_id="<p2@x>",
            in_reply_to="<p1@x>",
            sender="Carol <carol@example.net>",
            body="Latest words\r\n",
        ),
        "alice@example.org",
        received_at=at(3),
        is_read=True,
    )
    body = await threads(client, alice, label="inbox")
    top = body["threads"][0]
    assert top["subject"] == "Re: Plan"
    assert top["n_emails"] == 2
    assert top["participants"] == "Bob and Carol"
    assert top["snippet"].startswith("Latest words")
    assert top["is_read"] is False  # the first email is still unread
    assert [t["subject"] for t in body["threads"]] == ["Re: Plan", "Other"]


async def test_sent_threads_name_their_recipients(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    to = ", ".join(f"Person {i} <p{i}@example.net>" for i in range(6))
    raw = message(
        subject="Party",
        sender="Alice <alice@example.org>",
        to=f"John Smith <john@example.net>, {to}",
        headers={"Cc": "Billy Joel <billy@example.net>"},
    )
    await deliver(raw, "alice@example.org", labels=("sent",))
    body = await threads(client, alice, label="sent")
    assert body["threads"][0]["participants"] == "To: John Smith, Person 0, and 6 others"


async def test_label_by_name_or_id_and_unknown_label(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, call: Any
) -> None:
    await deliver(message(subject="Work", message_id="<w@x>"), "alice@example.org", labels=("Work",))
    await deliver(message(subject="Home", message_id="<h@x>"), "alice@example.org")
    by_name = await threads(client, alice, label="Work")
    assert [t["subject"] for t in by_name["threads"]] == ["Work"]
    labels = await call("mail.labels.list", {}, as_=alice)
    work_id = next(lb["id"] for lb in labels if lb["name"] == "Work")
    by_id = await threads(client, alice, label=str(work_id))
    assert by_id == by_name
    r = await client.get("/api/v1/threads", params={"label": "Nope"}, headers=alice.headers)
    problem(r, 404, "not_found")


async def test_paging_and_totals(client: httpx.AsyncClient, alice: Actor, deliver: Deliver) -> None:
    for day in range(1, 8):
        await deliver(
            message(subject=f"M{day}", message_id=f"<m{day}@x>"), "alice@example.org", received_at=at(day)
        )
    page = await threads(client, alice, offset=2, limit=3)
    assert page["n_threads"] == 7
    assert [t["subject"] for t in page["threads"]] == ["M5", "M4", "M3"]
    last = await threads(client, alice, offset=5, limit=3)
    assert last["n_threads"] == 7
    assert [t["subject"] for t in last["threads"]] == ["M2", "M1"]
    end = await threads(client, alice, offset=7, limit=3)
    assert end == {"n_threads": 7, "threads": []}


async def test_a_mailbox_without_mail_lists_nothing(client: httpx.AsyncClient, alice: Actor) -> None:
    assert await threads(client, alice) == {"n_threads": 0, "threads": []}


async def test_bad_paging_is_422(client: httpx.AsyncClient, alice: Actor) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}):
        r = await client.get("/api/v1/threads", params=params, headers=alice.headers)
        problem(r, 422, "invalid_params")


async def test_needs_a_user(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.get("/api/v1/threads")
    assert r.status_code == 401
    r = await client.get("/api/v1/threads", headers=admin.headers)
    problem(r, 403, "forbidden")


async def test_get_thread_with_its_emails(client: httpx.AsyncClient, alice: Actor, deliver: Deliver) -> None:
    first = await deliver(
        message(subject="Plan", message_id="<p1@x>"), "alice@example.org", received_at=at(1)
    )
    second = await deliver(
        message(
            subject="Re: Plan", message_id="<p2@x>", in_reply_to="<p1@x>", sender="Carol <carol@example.net>"
        ),
        "alice@example.org",
        received_at=at(2),
    )
    listed = (await threads(client, alice))["threads"][0]
    r = await client.get(f"/api/v1/threads/{listed['thread_id']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in listed} == listed
    assert [e["email_id"] for e in body["emails"]] == [first, second]
    assert body["emails"][1]["from"] == [{"name": "Carol", "email": "carol@example.net"}]
    assert body["emails"][0]["labels"] == ["inbox"]
    assert "text_body" not in body["emails"][0]


async def test_other_users_threads_are_not_found(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    await deliver(message(subject="Secret"), "alice@example.org")
    thread_id = (await threads(client, alice))["threads"][0]["thread_id"]
    r = await client.get(f"/api/v1/threads/{thread_id}", headers=bob.headers)
    problem(r, 404, "not_found")
    r = await client.get("/api/v1/threads/999999", headers=alice.headers)
    problem(r, 404, "not_found")
    r = await client.get("/api/v1/threads/abc", headers=alice.headers)
    problem(r, 422, "invalid_params")
    assert await threads(client, bob) == {"n_threads": 0, "threads": []}
    alice_inbox = (await threads(client, alice))["threads"]
    # Bob naming Alice's label id finds nothing of hers.
    labels = await client.get("/api/v1/labels", headers=alice.headers)
    inbox_id = next(lb["id"] for lb in labels.json() if lb["name"] == "inbox")
    r = await client.get("/api/v1/threads", params={"label": str(inbox_id)}, headers=bob.headers)
    problem(r, 404, "not_found")
    assert alice_inbox


async def test_thread_list_query_walks_the_listing_index(mailroom: Mailroom) -> None:
    if mailroom.runtime.db.dialect != "sqlite":
        pytest.skip("SQLite query plan")
    from sqlalchemy.dialects import sqlite

    compiled = mailbox_queries.list_page_statement().compile(dialect=sqlite.dialect())
    args = [{"user_id": 1, "label_id": 1, "limit": 50, "offset": 0}[n] for n in compiled.positiontup]
    db = mailroom.runtime.db
    assert isinstance(db, SQLiteDatabase)
    with db.sync_connection() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, tuple(args))]
    joined = " | ".join(plan)
    assert "ix_thread_labels_listing" in joined, joined
    assert "TEMP B-TREE" not in joined, joined
    assert not any(p.startswith("SCAN") for p in plan), joined


def test_encryption_levels() -> None:
    assert encryption_level(3, 0, 0) == "unencrypted"
    assert encryption_level(3, 2, 0) == "weak"
    assert encryption_level(3, 0, 3) == "strong"
    assert encryption_level(3, 1, 2) == "medium"
    assert encryption_level(3, 0, 2) == "danger"
    assert encryption_level(3, 1, 1) == "danger"


def test_participant_snippets() -> None:
    def snippet(senders: list[str], to: list[str] = ()) -> str:  # type: ignore[assignment]
        participants = [{"name": n, "email": f"{n.lower()}@x"} for n in senders]
        return participants_snippet(
            participants, [{"name": n, "email": f"{n.lower()}@x"} for n in to], "me@x"
        )

    assert snippet(["Billy"]) == "Billy"
    assert snippet(["Billy", "Me"]) == "Billy and me"
    assert snippet(["A", "B", "C"]) == "A, B, and C"
    assert snippet(["A", "B", "C", "D"]) == "A, B, and 2 others"
    assert snippet(["Me"], ["John"]) == "To: John"
    assert snippet(["Me"], ["John", "Billy", "X", "Y"]) == "To: John, Billy, and 2 others"
    assert snippet(["Me"]) == "me"


async def test_page_label_names_are_read_by_thread_not_by_mailbox(mailroom: Mailroom) -> None:
    """The label names of a page's threads: looked up per thread id, never by walking every
    label row of the mailbox (the plan SQLite picked without statistics, 72% of a list)."""
    if mailroom.runtime.db.dialect != "sqlite":
        pytest.skip("SQLite query plan")
    from sqlalchemy.dialects import sqlite

    compiled = mailbox_queries._names_query(3).stmt.compile(dialect=sqlite.dialect())  # type: ignore[attr-defined]
    values = compiled.construct_params({"user_id": 1, "t0": 1, "t1": 2, "t2": 3})
    args = [values[n] for n in compiled.positiontup]
    db = mailroom.runtime.db
    assert isinstance(db, SQLiteDatabase)
    with db.sync_connection() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, tuple(args))]
    joined = " | ".join(plan)
    assert "ix_thread_labels_listing" not in joined, joined
    assert not any(p.startswith("SCAN") for p in plan), joined
