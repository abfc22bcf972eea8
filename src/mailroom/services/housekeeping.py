"""Housekeeping: what nobody else deletes, removed periodically by every worker.

:func:`sweep` is one pass; :class:`Housekeeping` runs it every
``housekeeping_interval_seconds`` in each worker process (started and stopped by the ASGI
lifespan, like the upload expiry and the outbound queue). A pass removes:

- **temporary blob files** (``.tmp-*``) over an hour old: a crash between writing one and
  renaming it into place leaves it behind; a live write renames its file within
  milliseconds, so an hour-old one belongs to nobody;
- **unreferenced blobs**, rows and files, unregistered for ``blob_gc_grace_seconds``
  (store/blobs.py ``collect_garbage`` says why a delivery that is about to use one is safe);
- **expired sessions** of every user (sign-in removes only the signing-in user's own);
- **expired invites**;
- **expired key confirmations** (the links mailed for keys uploaded to the key server);
- **the change log's old rows** (tombstones included), older than ``changes_retention_days``,
  per account, raising its oldest calculable state (store/changelog.py).

Expired idempotency keys are pruned by the accounting maintenance task (accounting/setup.py),
uploads by the upload expiry, finished queue entries by the queue worker: not repeated here.

Several workers may run a pass at the same moment: every delete is conditional and counts
only the rows its own statement removed, and a file is unlinked (and counted) only by the
collector whose delete found its row, so nothing is counted twice and nothing fails.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from mailroom.background import Periodic
from mailroom.runtime import Runtime
from mailroom.store import blobs as blob_store
from mailroom.store import changelog, pubkeys
from mailroom.store import sessions as session_store
from mailroom.store import signups as signup_store

log = logging.getLogger("mailroom.housekeeping")

#: Temporary blob files older than this are a crash's leftovers.
TEMP_FILE_AGE_SECONDS = 3600.0
#: Blobs collected per write transaction (a pass repeats until fewer are left).
BLOB_BATCH = 500


@dataclass(frozen=True, slots=True)
class Swept:
    """What one pass removed (by this process; another worker's removals are its own)."""

    temp_files: int = 0
    blobs: int = 0
    sessions: int = 0
    invites: int = 0
    changes: int = 0
    key_confirmations: int = 0

    @property
    def total(self) -> int:
        return (
            self.temp_files
            + self.blobs
            + self.sessions
            + self.invites
            + self.changes
            + self.key_confirmations
        )


async def collect_blobs(rt: Runtime, *, batch: int = BLOB_BATCH) -> int:
    """Delete unreferenced blobs older than the grace period; how many this call deleted."""
    before = rt.clock.now() - timedelta(seconds=rt.settings.blob_gc_grace_seconds)
    total = 0
    while True:
        async with rt.db.write() as tx:
            gone = await blob_store.collect_garbage(tx, rt.blobs, before=before, limit=batch)
        total += len(gone)
        if len(gone) < batch:
            return total


async def purge_changes(rt: Runtime) -> int:
    """Forget change-log rows older than ``changes_retention_days``; how many went.

    One short transaction per account (each locks its account's state row alone, so a pass
    never holds up delivery to many mailboxes at once).
    """
    before = rt.clock.now() - timedelta(days=rt.settings.changes_retention_days)
    async with rt.db.read() as tx:
        expired = await changelog.expired_accounts(tx, before)
    total = 0
    for user_id, upto in sorted(expired.items()):
        async with rt.db.write() as tx:
            total += await changelog.purge_account(tx, user_id, upto)
    return total


async def sweep(rt: Runtime) -> Swept:
    """One housekeeping pass (see the module docstring); safe in several processes at once."""
    temp_files = await asyncio.to_thread(rt.blobs.sweep_temporary, TEMP_FILE_AGE_SECONDS)
    blobs = await collect_blobs(rt)
    now = rt.clock.now()
    async with rt.db.write() as tx:
        sessions = await session_store.delete_all_expired(tx, now)
        invites = await signup_store.delete_expired_invites(tx, now)
        confirmations = await pubkeys.purge_confirmations(tx, now)
    changes = await purge_changes(rt)
    return Swept(
        temp_files=temp_files,
        blobs=blobs,
        sessions=sessions,
        invites=invites,
        changes=changes,
        key_confirmations=confirmations,
    )


class Housekeeping(Periodic):
    """Runs :func:`sweep` at start and then every ``housekeeping_interval_seconds``."""

    name = "mailroom-housekeeping"

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self.passes = 0

    async def step(self) -> None:
        try:
            swept = await sweep(self.rt)
            if swept.total:
                log.info(
                    "housekeeping removed %d temporary file(s), %d blob(s), %d session(s), %d invite(s), "
                    "%d change(s), %d key confirmation(s)",
                    swept.temp_files,
                    swept.blobs,
                    swept.sessions,
                    swept.invites,
                    swept.changes,
                    swept.key_confirmations,
                )
        finally:
            self.passes += 1

    async def delay(self) -> float:
        return self.rt.settings.housekeeping_interval_seconds
