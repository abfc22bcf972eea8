"""The account change log over the wire: states, changes since a state, paging, tombstone
expiry, IMAP UIDs, and push events carrying the state (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import CannotCalculateChanges
from mailroom.services.housekeeping import sweep
from mailroom.store import changelog
from mailroom.store import labels as label_store
from tests.client_mail.conftest import Deliver
from tests.conftest import Actor, problem
from tests.mailhelpers import message

pytestmark = pytest.mark.anyio
A = "alice@example.org"


async def state(client: httpx.AsyncClient, who: Actor) -> int:
    r = await client.get("/api/v1/state", headers=who.headers)
    assert r.status_code == 200, r.text
    value: int = r.json()["state"]
    return value


async def changes(
    client: httpx.AsyncClient, who: Actor, since: int, type: str = "email", **params: Any
) -> dict[str, Any]:
    r = await client.get(
        "/api/v1/changes", params={"since": since, "type": type, **params}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def batch(client: httpx.AsyncClient, who: Actor, ids: list[int], action: str, **extra: Any) -> None:
    r = await client.post(
        "/api/v1/emails/batch", json={"ids": ids, "action": action, **extra}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["n_ok"] == len(ids), r.text


async def destroy(client: httpx.AsyncClient, who: Actor, ids: list[int]) -> None:
    """Delete for good (mail goes to the trash first)."""
    await batch(client, who, ids, "trash")
    await batch(client, who, ids, "delete")


def ids(body: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    return sorted(body["created"]), sorted(body["updated"]), sorted(body["destroyed"])


async def test_every_change_takes_the_next_state_and_changes_return_the_difference(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    s0 = await state(client, alice)
    e1 = await deliver(message(message_id="<1@x>"), A)
    s1 = await state(client, alice)
    assert s1 > s0
    created, updated, destroyed = ids(await changes(client, alice, s0))
    assert (created, updated, destroyed) == ([e1], [], [])
    threads = await changes(client, alice, s0, "thread")
    assert len(threads["created"]) == 1
    assert threads["updated"] == []
    assert threads["destroyed"] == []
    t1 = threads["created"][0]
    labels = await changes(client, alice, s0, "label")
    async with mailroom.runtime.db.read() as tx:
        all_labels = await label_store.ids_by_name(tx, alice.principal.user_id or 0)
    # The system labels were created by the first delivery.
    assert sorted(labels["created"]) == sorted(all_labels.values())
    assert labels["new_state"] == s1

    # A reply joins the thread: the thread is updated, the email created.
    e2 = await deliver(message(message_id="<2@x>", in_reply_to="<1@x>", references="<1@x>"), A)
    s2 = await state(client, alice)
    assert ids(await changes(client, alice, s1)) == ([e2], [], [])
    assert ids(await changes(client, alice, s1, "thread")) == ([], [t1], [])
    assert ids(await changes(client, alice, s1, "label")) == ([], [all_labels["inbox"]], [])

    # Read: the email is updated, the inbox's unread counts move; the thread's emails do not.
    await batch(client, alice, [e1], "read")
    s3 = await state(client, alice)
    assert s3 > s2
    assert ids(await changes(client, alice, s2)) == ([], [e1], [])
    assert ids(await changes(client, alice, s2, "thread")) == ([], [], [])
    assert ids(await changes(client, alice, s2, "label")) == ([], [all_labels["inbox"]], [])

    # A new label, given to an email.
    r = await client.post("/api/v1/labels", json={"name": "Work"}, headers=alice.headers)
    work = r.json()["id"]
    await batch(client, alice, [e2], "add_label", label="Work")
    s4 = await state(client, alice)
    assert ids(await changes(client, alice, s3)) == ([], [e2], [])
    assert ids(await changes(client, alice, s3, "label")) == ([work], [], [])

    # Deleted for good: email and thread destroyed, labels' counts updated.
    await destroy(client, alice, [e1, e2])
    s5 = await state(client, alice)
    assert ids(await changes(client, alice, s4)) == ([], [], [e1, e2])
    assert ids(await changes(client, alice, s4, "thread")) == ([], [], [t1])
    # Created and destroyed in between: not there at all.
    assert ids(await changes(client, alice, s0)) == ([], [], [])
    assert ids(await changes(client, alice, s0, "thread")) == ([], [], [])
    # From the current state: nothing, the same state.
    body = await changes(client, alice, s5)
    assert body == {
        "type": "email",
        "old_state": s5,
        "new_state": s5,
        "has_more_changes": False,
        "created": [],
        "updated": [],
        "destroyed": [],
    }
    # A state the account never had.
    r = await client.get("/api/v1/changes", params={"since": s5 + 1}, headers=alice.headers)
    problem(r, 400, "bad_request")


async def test_max_changes_pages_through_intermediate_states(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    s0 = await state(client, alice)
    delivered = [await deliver(message(message_id=f"<{i}@x>", subject=f"s{i}"), A) for i in range(7)]
    await batch(client, alice, delivered[:3], "read")  # more rows for the same ids
    created: list[int] = []
    updated: set[int] = set()
    since, calls = s0, 0
    while True:
        body = await changes(client, alice, since, max_changes=2)
        calls += 1
        assert len(body["created"]) + len(body["updated"]) + len(body["destroyed"]) <= 2
        assert body["new_state"] > since or not body["has_more_changes"]
        created += body["created"]
        updated |= set(body["updated"])
        since = body["new_state"]
        if not body["has_more_changes"]:
            break
    # Each id created once; the ones read later come again as updated in a later page.
    assert sorted(created) == sorted(delivered)
    assert updated == set(delivered[:3])
    assert calls >= 4
    assert since == await state(client, alice)


async def test_changes_of_another_account_are_not_visible(
    client: httpx.AsyncClient, alice: Actor, make_user: Any, deliver: Deliver
) -> None:
    bob: Actor = await make_user("bob@example.org")
    s0 = await state(client, bob)
    await deliver(message(message_id="<a@x>"), A)
    assert await state(client, bob) == s0
    assert ids(await changes(client, bob, s0)) == ([], [], [])


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"changes_retention_days": 2}


async def test_tombstones_expire_and_older_states_cannot_be_calculated(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver, clock: FakeClock
) -> None:
    clock.set(datetime.now(UTC))  # the log's times are the database's
    s0 = await state(client, alice)
    e1 = await deliver(message(message_id="<1@x>"), A)
    await destroy(client, alice, [e1])
    s1 = await state(client, alice)
    # Within the window: the tombstone is there.
    assert (await sweep(mailroom.runtime)).changes == 0
    assert ids(await changes(client, alice, s0)) == ([], [], [])  # created and destroyed
    e2 = await deliver(message(message_id="<2@x>"), A)
    assert ids(await changes(client, alice, s1)) == ([e2], [], [])

    clock.advance(timedelta(days=2, seconds=5).total_seconds())
    swept = await sweep(mailroom.runtime)
    assert swept.changes > 0
    body = problem(
        await client.get("/api/v1/changes", params={"since": s0}, headers=alice.headers),
        410,
        "cannot_calculate_changes",
    )
    assert body["data"]["since"] == s0
    # The current state still works, and so does everything after it.
    s2 = await state(client, alice)
    assert ids(await changes(client, alice, s2)) == ([], [], [])
    await batch(client, alice, [e2], "read")
    assert ids(await changes(client, alice, s2)) == ([], [e2], [])
    async with mailroom.runtime.db.read() as tx:
        with pytest.raises(CannotCalculateChanges):
            await changelog.vanished(tx, alice.principal.user_id or 0, 1, s0)


async def test_uids_strictly_increase_per_label_and_are_never_reused(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    user_id = alice.principal.user_id or 0
    db = mailroom.runtime.db
    first = [await deliver(message(message_id=f"<{i}@x>", subject=f"s{i}"), A) for i in range(3)]
    async with db.read() as tx:
        names = await label_store.ids_by_name(tx, user_id)
        inbox = names["inbox"]
        status = await changelog.label_status(tx, user_id, inbox)
        assert [(m.uid, m.email_id) for m in await changelog.uids(tx, user_id, inbox)] == [
            (1, first[0]),
            (2, first[1]),
            (3, first[2]),
        ]
    assert status is not None
    assert status.uidnext == 4
    assert status.uidvalidity > 0
    # Every label its own UIDVALIDITY (the state when it was created).
    async with db.read() as tx:
        validities = [await changelog.label_status(tx, user_id, i) for i in names.values()]
    assert len({v.uidvalidity for v in validities if v}) == len(names)

    before_archive = await state(client, alice)
    await batch(client, alice, [first[1]], "archive")  # leaves the inbox
    await destroy(client, alice, [first[2]])  # the inbox's highest UID goes
    await batch(client, alice, [first[1]], "unarchive")  # back: a new UID
    newest = await deliver(message(message_id="<new@x>"), A)
    async with db.read() as tx:
        now_in = [(m.uid, m.email_id) for m in await changelog.uids(tx, user_id, inbox)]
        vanished = await changelog.vanished(tx, user_id, inbox, before_archive)
        status = await changelog.label_status(tx, user_id, inbox)
        after_2 = await changelog.uids(tx, user_id, inbox, after_uid=2)
    assert now_in == [(1, first[0]), (4, first[1]), (5, newest)]
    assert vanished == [2, 3]
    assert status is not None
    assert status.uidnext == 6
    assert status.highest_modseq == await state(client, alice)
    assert [m.uid for m in after_2] == [4, 5]
    # Each email's modseq is that of its last change.
    assert max(m.modseq for m in after_2) <= status.highest_modseq
    assert after_2[0].modseq > before_archive

    # A label deleted and made again: a new UIDVALIDITY, UIDs from 1.
    r = await client.post("/api/v1/labels", json={"name": "Work"}, headers=alice.headers)
    work = r.json()["id"]
    await batch(client, alice, [first[0]], "add_label", label="Work")
    async with db.read() as tx:
        old = await changelog.label_status(tx, user_id, work)
    with_work = await state(client, alice)
    assert (await client.delete(f"/api/v1/labels/{work}", headers=alice.headers)).status_code == 204
    r = await client.post("/api/v1/labels", json={"name": "Work"}, headers=alice.headers)
    again = r.json()["id"]
    await batch(client, alice, [first[0]], "add_label", label="Work")
    async with db.read() as tx:
        new = await changelog.label_status(tx, user_id, again)
        uids_again = await changelog.uids(tx, user_id, again)
    assert old is not None
    assert new is not None
    assert new.uidvalidity > old.uidvalidity
    assert [m.uid for m in uids_again] == [1]
    created, updated, destroyed = ids(await changes(client, alice, with_work, "label"))
    if again == work:  # SQLite hands the highest id out again: the same id, another label
        assert (created, destroyed) == ([], [])
        assert work in updated
    else:
        assert (created, destroyed) == ([again], [work])


async def test_push_events_carry_the_state(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    user_id = alice.principal.user_id or 0
    sub = await mailroom.runtime.events.subscribe(user_id)
    try:
        s0 = await state(client, alice)
        e1 = await deliver(message(message_id="<1@x>"), A)
        received = await asyncio.wait_for(sub.__anext__(), 5)
        assert received.type == "email.received"
        s1 = await state(client, alice)
        assert received.data["state"] == s1 > s0
        assert ids(await changes(client, alice, s0)) == ([e1], [], [])
        await batch(client, alice, [e1], "read")
        got = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(2)]
        assert [e.type for e in got] == ["thread.updated", "label.counts"]
        s2 = await state(client, alice)
        assert all(e.data["state"] == s2 for e in got)
        assert ids(await changes(client, alice, s1)) == ([], [e1], [])
    finally:
        await sub.aclose()


async def test_user_deletion_leaves_no_log_and_a_reused_id_starts_clean(
    mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver, admin: Actor
) -> None:
    from sqlalchemy import func, select

    from mailroom.store.mail_schema import mail_changes, mail_states

    await deliver(message(message_id="<1@x>"), A)
    user_id = alice.principal.user_id
    r = await client.delete(f"/api/v1/users/{A}", headers=admin.headers)
    assert r.status_code == 204, r.text
    async with mailroom.runtime.db.read() as tx:
        left = await tx.scalar(
            select(func.count()).select_from(mail_changes).where(mail_changes.c.user_id == user_id)
        )
        states = await tx.scalar(
            select(func.count()).select_from(mail_states).where(mail_states.c.user_id == user_id)
        )
    assert (left, states) == (0, 0)


async def test_the_auto_reply_is_a_vacation_change(
    client: httpx.AsyncClient, alice: Actor, admin: Actor
) -> None:
    s0 = await state(client, alice)
    r = await client.patch(
        "/api/v1/me/settings", json={"reply": {"enabled": True, "subject": "Away"}}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    s1 = await state(client, alice)
    assert s1 > s0
    assert ids(await changes(client, alice, s0, "vacation")) == ([], [alice.principal.user_id], [])
    assert ids(await changes(client, alice, s0)) == ([], [], [])
    # Another field of the user (through the admin API) is no mail state: no change.
    r = await client.patch(
        "/api/v1/users/alice@example.org", json={"spam_threshold": 9.0}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert await state(client, alice) == s1


async def test_changes_read_one_range_of_the_primary_key(mailroom: Mailroom) -> None:
    """However large the mailbox: a range scan of (user_id, kind, modseq), no sort, no scan."""
    if mailroom.runtime.db.dialect != "sqlite":
        pytest.skip("SQLite query plan")
    from sqlalchemy.dialects import sqlite

    from mailroom.store.engine import SQLiteDatabase

    compiled = changelog._CHANGES.stmt.compile(dialect=sqlite.dialect())
    values = {"user_id": 1, "kind": 1, "after": 5, "upto": 50, "limit": 100}
    args = [values.get(n, 0) for n in compiled.positiontup or ()]  # the offset: 0
    db = mailroom.runtime.db
    assert isinstance(db, SQLiteDatabase)
    with db.sync_connection() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, tuple(args))]
    joined = " | ".join(plan)
    assert plan == [
        "SEARCH mail_changes USING PRIMARY KEY (user_id=? AND kind=? AND modseq>? AND modseq<?)"
    ], joined
