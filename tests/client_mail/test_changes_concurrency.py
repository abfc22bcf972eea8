"""The change log under concurrency: two workers (two mailrooms on one database) deliver and
change flags and labels at once while a client syncs incrementally through mail.changes.

States strictly increase (the log's modseqs are exactly 1..state, no gap, no repeat), no
change is lost (the client's incremental view ends equal to the mailbox), and changes since
any state the client saw are exactly the difference to the end.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.ingest import ingest
from mailroom.delivery.resolve import resolve
from mailroom.settings import Settings
from mailroom.store import changelog
from mailroom.store.mail_schema import email_labels, emails, labels, mail_changes
from tests.conftest import Actor, started
from tests.mailhelpers import message

pytestmark = pytest.mark.anyio
A = "alice@example.org"
N_MESSAGES = 60
N_FLAG_CHANGES = 40


async def _deliver(app: Mailroom, i: int) -> int:
    async with app.runtime.db.read() as tx:
        resolved = await resolve(tx, A)
    raw = message(message_id=f"<c{i}@x>", subject=f"concurrent {i}")
    [result] = await ingest(
        app.runtime, raw, mail_from="bob@example.net", recipients=[resolved], source="lmtp"
    )
    assert result.ok, result.reply
    return result.email_ids[0]


async def test_two_workers_deliver_and_change_flags_while_a_client_syncs(
    mailroom: Mailroom, settings: Settings, clock: FakeClock, alice: Actor
) -> None:
    rng = random.Random(12)
    user_id = alice.principal.user_id
    assert user_id is not None
    async with started(settings, clock) as other:
        workers = [mailroom, other]

        async def call(worker: Mailroom, name: str, params: dict[str, Any]) -> Any:
            return await worker.registry.call(name, params, principal=alice.principal)

        delivered: list[int] = []
        mine: dict[int, list[int]] = {0: [], 1: []}  # what each worker delivered
        flagged: list[tuple[int, int]] = []  # (state before the change, email id)
        snapshots: dict[int, frozenset[int]] = {}
        known: set[int] = set()
        done = asyncio.Event()

        async def deliveries(n: int, numbers: list[int]) -> None:
            for i in numbers:
                email_id = await _deliver(workers[n], i)
                delivered.append(email_id)
                mine[n].append(email_id)

        # Each worker flips flags of its own emails only, so that every action changes
        # something (an action that changes nothing takes no modseq).
        flags: dict[tuple[int, str], bool] = {}
        deleted: set[int] = set()
        toggles = {
            "read": ("read", "unread"),
            "star": ("star", "unstar"),
            "archive": ("archive", "unarchive"),
        }

        async def flag_changes(n: int) -> None:
            worker, count, deleted_at = workers[n], 0, -1
            while count < N_FLAG_CHANGES // 2:
                if not mine[n]:
                    await asyncio.sleep(0.005)
                    continue
                if count % 5 == 4 and deleted_at != count:  # now and then one goes for good
                    deleted_at = count
                    # Never the newest email: SQLite would hand its id out again.
                    newest = max(delivered)
                    candidates = [e for e in mine[n] if e != newest]
                    if candidates:
                        gone = rng.choice(candidates)
                        mine[n].remove(gone)
                        deleted.add(gone)
                        for action in ("trash", "delete"):  # for good: trash first
                            result = await call(
                                worker, "mail.emails.batch", {"ids": [gone], "action": action}
                            )
                            assert result["n_ok"] == 1
                    if not mine[n]:
                        continue
                email_id = rng.choice(mine[n])
                flag = rng.choice(sorted(toggles))
                on = flags.get((email_id, flag), False)
                flags[email_id, flag] = not on
                action = toggles[flag][1 if on else 0]
                before = (await call(worker, "mail.state", {}))["state"]
                result = await call(worker, "mail.emails.batch", {"ids": [email_id], "action": action})
                count += 1
                assert result["n_ok"] == 1
                flagged.append((before, email_id))

        async def sync_once(since: int) -> int:
            while True:
                body = await call(other, "mail.changes", {"since": since, "max_changes": 7})
                known.update(body["created"])
                known.difference_update(body["destroyed"])
                assert not set(body["updated"]) - known, "updated ids the client never saw created"
                since = body["new_state"]
                snapshots[since] = frozenset(known)
                if not body["has_more_changes"]:
                    return since

        start = (await call(mailroom, "mail.state", {}))["state"]
        snapshots[start] = frozenset()

        async def client() -> None:
            since = start
            while not done.is_set():
                since = await sync_once(since)
                await asyncio.sleep(0)
            await sync_once(since)

        numbers = list(range(N_MESSAGES))
        syncing = asyncio.ensure_future(client())
        await asyncio.gather(
            deliveries(0, numbers[0::2]),
            deliveries(1, numbers[1::2]),
            flag_changes(0),
            flag_changes(1),
        )
        done.set()
        await syncing

        async with mailroom.runtime.db.read() as tx:
            stored = {
                int(i) for i in await tx.scalars(select(emails.c.id).where(emails.c.user_id == user_id))
            }
            current = await changelog.state(tx, user_id)
            modseqs = [
                int(m)
                for m in await tx.scalars(
                    select(mail_changes.c.modseq)
                    .where(mail_changes.c.user_id == user_id)
                    .order_by(mail_changes.c.modseq)
                )
            ]
            uid_rows = await tx.all(
                select(email_labels.c.label_id, email_labels.c.uid, labels.c.uidnext)
                .select_from(email_labels.join(labels, labels.c.id == email_labels.c.label_id))
                .where(labels.c.user_id == user_id)
            )

    # Every delivery stored, and the client's incremental view is exactly the mailbox.
    assert len(delivered) == N_MESSAGES
    assert deleted
    assert stored == set(delivered) - deleted
    assert known == stored
    # States strictly increase with no change lost: the log holds every modseq once.
    assert modseqs == list(range(current.floor + 1, current.modseq + 1))
    # From any state the client saw, one call gives exactly the difference to the end.
    async with mailroom.runtime.db.read() as tx:
        for since, seen in snapshots.items():
            query = changelog.ChangesQuery(changelog.Kind.EMAIL, since, 5000)
            found = await changelog.changes(tx, user_id, query)
            assert not found.has_more_changes
            assert found.new_state == current.modseq
            assert not set(found.created) & seen
            assert (seen - set(found.destroyed)) | set(found.created) == stored
            for before, email_id in flagged:
                if before >= since and email_id not in deleted:
                    assert email_id in set(found.updated) | set(found.created)
    # UIDs: unique per label and below the label's UIDNEXT.
    per_label: dict[int, list[int]] = {}
    for row in uid_rows:
        assert 0 < int(row["uid"]) < int(row["uidnext"])
        per_label.setdefault(int(row["label_id"]), []).append(int(row["uid"]))
    for uids in per_label.values():
        assert len(uids) == len(set(uids))
    assert len(flagged) == N_FLAG_CHANGES
