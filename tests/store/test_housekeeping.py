"""Housekeeping: crash leftovers, unreferenced blobs, expired sessions and invites go away."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from mailroom import bootstrap
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.ingest import ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.runtime import Runtime
from mailroom.services.housekeeping import Housekeeping, Swept, sweep
from mailroom.settings import Settings
from mailroom.store import blobs as blob_store
from mailroom.store import emails as email_store
from mailroom.store import intents
from mailroom.store.client_schema import invites, sessions
from mailroom.store.mail_schema import blobs
from tests.conftest import PG_URL
from tests.lifespan import started_worker
from tests.mailhelpers import create_user, message

pytestmark = pytest.mark.anyio

GRACE = 3600.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "blob_gc_grace_seconds": GRACE,
        "smtp_port": 0,
        "lmtp_port": 0,
        "submission_port": 0,
        "pop3_port": 0,
        "pop3s_port": 0,
        "imap_port": 0,
        "imaps_port": 0,
    }


async def count(rt: Runtime, table: Any) -> int:
    async with rt.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(table)))


async def add_session(rt: Runtime, session_id: str, user_id: int, expires_in: timedelta) -> None:
    now = rt.clock.now()
    async with rt.db.write() as tx:
        await tx.execute(
            insert(sessions).values(
                id=session_id,
                digest="0" * 64,
                user_id=user_id,
                password_stamp="x",
                mobile=False,
                user_agent="",
                created_at=now,
                expires_at=now + expires_in,
                last_used_at=now,
            )
        )


async def add_invite(rt: Runtime, invite_id: str, expires_in: timedelta | None) -> None:
    now = rt.clock.now()
    async with rt.db.write() as tx:
        await tx.execute(
            insert(invites).values(
                id=invite_id,
                digest="0" * 64,
                domain="example.org",
                max_uses=1,
                uses=0,
                expires_at=None if expires_in is None else now + expires_in,
                comment="",
                created_by="admin",
                created_at=now,
            )
        )


async def orphan_blobs(rt: Runtime, n: int) -> list[str]:
    """Blobs registered but referred to by nothing (what deleted mail leaves)."""
    shas = []
    for i in range(n):
        raw = f"orphan {i}\r\n".encode()
        sha = await rt.blobs.put(raw)
        async with rt.db.write() as tx:
            await blob_store.record(tx, sha, len(raw), rt.clock.now())
        shas.append(sha)
    return shas


async def test_a_pass_removes_leftovers_and_keeps_what_is_in_use(
    mailroom: Mailroom, clock: FakeClock
) -> None:
    rt = mailroom.runtime
    alice = await create_user(mailroom, "alice@example.org")
    bob = await create_user(mailroom, "bob@example.org")
    target = Resolution("alice@example.org", "accepted", [LocalTarget(alice, "alice@example.org")])
    [kept] = await ingest(rt, message(message_id="<k@x>"), mail_from="", recipients=[target], source="lmtp")
    [gone] = await ingest(rt, message(message_id="<g@x>"), mail_from="", recipients=[target], source="lmtp")
    async with rt.db.write() as tx:
        [deleted] = await email_store.delete_emails(tx, alice, list(gone.email_ids))
    gone_sha = deleted.blob_sha
    # Crash leftovers: a temporary file two hours old, and one being written right now.
    folder = rt.blobs.path(gone_sha).parent
    stale, fresh = folder / ".tmp-0123456789abcdef", folder / ".tmp-fedcba9876543210"
    stale.write_bytes(b"half a message")
    fresh.write_bytes(b"a message being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    await add_session(rt, "s-alice-old", alice, timedelta(seconds=-1))
    await add_session(rt, "s-bob-old", bob, timedelta(days=-3))
    await add_session(rt, "s-bob-live", bob, timedelta(days=3))
    await add_invite(rt, "i-old", timedelta(seconds=-1))
    await add_invite(rt, "i-live", timedelta(days=1))
    await add_invite(rt, "i-forever", None)

    first = await sweep(rt)
    # The blob nothing refers to is within its grace period: it stays for now.
    assert first == Swept(temp_files=1, blobs=0, sessions=2, invites=1)
    assert not stale.exists()
    assert fresh.exists()
    assert rt.blobs.path(gone_sha).exists()
    async with rt.db.read() as tx:
        assert set(await tx.scalars(select(sessions.c.id))) == {"s-bob-live"}
        assert set(await tx.scalars(select(invites.c.id))) == {"i-live", "i-forever"}

    clock.advance(seconds=GRACE + 1)
    assert await sweep(rt) == Swept(blobs=1)
    assert not rt.blobs.path(gone_sha).exists()
    async with rt.db.read() as tx:
        kept_row = await email_store.get(tx, alice, kept.email_ids[0])
    assert kept_row is not None
    assert rt.blobs.path(kept_row.blob_sha).exists()
    assert await count(rt, blobs) == 1
    assert await sweep(rt) == Swept()  # nothing left: a pass changes nothing


async def test_a_blob_registered_again_within_the_grace_period_is_kept(
    mailroom: Mailroom, clock: FakeClock
) -> None:
    # An old unreferenced blob that a delivery is about to use again: the delivery registers
    # it (record) before its rows commit, which restarts the grace period.
    rt = mailroom.runtime
    [sha] = await orphan_blobs(rt, 1)
    clock.advance(seconds=GRACE + 1)
    async with rt.db.write() as tx:
        await blob_store.record(tx, sha, 10, clock.now())
    assert (await sweep(rt)).blobs == 0
    assert rt.blobs.path(sha).exists()
    clock.advance(seconds=GRACE + 1)
    assert (await sweep(rt)).blobs == 1
    assert not rt.blobs.path(sha).exists()


async def test_workers_sweeping_at_once_remove_and_count_everything_once(
    mailroom: Mailroom, settings: Settings, clock: FakeClock
) -> None:
    rt = mailroom.runtime
    alice = await create_user(mailroom, "alice@example.org")
    shas = await orphan_blobs(rt, 30)
    for i in range(20):
        await add_session(rt, f"s{i}", alice, timedelta(seconds=-1))
    clock.advance(seconds=GRACE + 1)
    others = [await bootstrap.start(settings, clock=clock, run_migrations=False) for _ in range(2)]
    try:
        results = await asyncio.gather(sweep(rt), *(sweep(o.runtime) for o in others))
    finally:
        for other in others:
            await other.close()
    assert sum(r.blobs for r in results) == 30
    assert sum(r.sessions for r in results) == 20
    assert await count(rt, blobs) == 0
    assert await count(rt, sessions) == 0
    assert not any(rt.blobs.path(sha).exists() for sha in shas)


async def test_the_task_runs_every_interval_until_stopped(mailroom: Mailroom, settings: Settings) -> None:
    rt = mailroom.runtime
    rt.settings = settings.model_copy(update={"housekeeping_interval_seconds": 0.02})
    alice = await create_user(mailroom, "alice@example.org")
    task = Housekeeping(rt)
    task.start()
    try:
        await add_session(rt, "expired-later", alice, timedelta(seconds=-1))
        for _ in range(250):
            if task.passes >= 3 and await count(rt, sessions) == 0:
                break
            await asyncio.sleep(0.02)
        assert task.passes >= 3
        assert await count(rt, sessions) == 0
        assert task.running
    finally:
        await task.stop()
    assert not task.running


async def test_every_worker_starts_housekeeping_in_its_lifespan(settings: Settings) -> None:
    async with started_worker(settings) as app:
        assert app.app is not None
        task = app.app.state.mailroom.runtime.housekeeping
        assert isinstance(task, Housekeeping)
        assert task.running
    assert not task.running


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL: row locks")
async def test_a_collector_waiting_on_a_delivery_that_reuses_a_blob_keeps_it(
    mailroom: Mailroom, settings: Settings, clock: FakeClock
) -> None:
    rt = mailroom.runtime
    [sha] = await orphan_blobs(rt, 1)
    clock.advance(seconds=GRACE + 1)  # unreferenced and old: garbage, until someone reuses it
    collector = await bootstrap.start(settings, clock=clock, run_migrations=False)
    try:
        async with rt.db.write() as tx:
            # A delivery that uses the blob again: registered, then referred to, not committed.
            await blob_store.record(tx, sha, 10, clock.now())
            await intents.record(
                tx, kind="forward", dedup="d1", now=clock.now(), recipients=["x@remote.example"], blob_sha=sha
            )
            collecting = asyncio.create_task(sweep(collector.runtime))
            await asyncio.sleep(0.5)  # the collector's delete now waits on the row lock
            assert not collecting.done()
        swept = await collecting
    finally:
        await collector.close()
    assert swept.blobs == 0
    assert await count(rt, blobs) == 1
    assert rt.blobs.path(sha).exists()
