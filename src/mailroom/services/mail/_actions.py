"""Batch actions on a mailbox's emails, and postponed threads coming back.

Every action works on emails (the thread batch acts on all the emails of each thread) through
store/emails.py, which keeps thread summaries and ``thread_labels`` in step. Locations are
labels: ``inbox``, ``archive``, ``spam``, ``trash`` and ``postponed``; an action that moves
mail somewhere else also ends a postponement.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailroom.background import Periodic
from mailroom.runtime import Runtime
from mailroom.services.mail._mailbox import POSTPONED
from mailroom.services.mail._push import announce_threads
from mailroom.store import emails as email_store
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx

log = logging.getLogger("mailroom.mail")

Action = Literal[
    "archive",
    "unarchive",
    "read",
    "unread",
    "star",
    "unstar",
    "spam",
    "not_spam",
    "trash",
    "untrash",
    "delete",
    "move",
    "add_label",
    "remove_label",
    "postpone",
    "mute",
    "unmute",
]
#: Actions that need ``label`` / ``until``.
NEEDS_LABEL = frozenset({"move", "add_label", "remove_label"})
NEEDS_UNTIL = frozenset({"postpone"})
#: Labels that say where mail is; ``move`` takes mail out of all of them but its target.
LOCATIONS = ("inbox", "archive", "spam", "trash", POSTPONED)
#: ``untrash`` puts mail back where it was when it went to the trash (these labels, the
#: ones trash or a move to it takes away; a postponed email comes back to the inbox, its
#: postponement over). Where that is not known (mail that arrived in the trash, or trashed
#: before this was recorded), it brings mail back to the inbox unless it is the owner's own
#: (sent, drafts).
_TRASH_ORIGINS = ("inbox", "archive", "spam", POSTPONED)
_OWN = ("sent", "drafts")
TRASH = "trash"


@dataclass(frozen=True, slots=True)
class Target:
    """One id of the request: the emails it stands for and their threads."""

    email_ids: tuple[int, ...]
    thread_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A target the action does not apply to (``code`` as in errors.py)."""

    code: str
    message: str


async def _relabel(
    tx: Tx,
    user_id: int,
    email_ids: Sequence[int],
    now: datetime,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> None:
    if email_ids:
        await email_store.change_labels(tx, user_id, email_ids, add=add, remove=remove, now=now)
        if TRASH in remove:  # out of the trash: where it came from no longer matters
            await email_store.forget_trash_origins(tx, email_ids)


async def _remember_origins(tx: Tx, user_id: int, email_ids: Sequence[int], now: datetime) -> None:
    """Before mail goes to the trash: record where each email not yet there is."""
    ids = await label_store.ensure(tx, user_id, [TRASH, *_TRASH_ORIGINS], now)
    trashed = await queries.emails_with_labels(tx, email_ids, [ids[TRASH]])
    fresh = [e for e in email_ids if e not in trashed]
    where = await email_store.labels_among(tx, fresh, {n: ids[n] for n in _TRASH_ORIGINS})
    origins = {e: sorted({"inbox" if n == POSTPONED else n for n in names}) for e, names in where.items()}
    await email_store.remember_trash_origins(tx, origins)


async def _untrash(tx: Tx, user_id: int, email_ids: Sequence[int], now: datetime) -> None:
    """Out of the trash, back where each email was (see ``_TRASH_ORIGINS``)."""
    ids = await label_store.ensure(tx, user_id, [TRASH, *_OWN], now)
    trashed = sorted(await queries.emails_with_labels(tx, email_ids, [ids[TRASH]]))
    origins = await email_store.get_trash_origins(tx, trashed)
    unknown = [e for e in trashed if e not in origins]
    own = await queries.emails_with_labels(tx, unknown, [ids[n] for n in _OWN])
    back: dict[tuple[str, ...], list[int]] = {}
    for e in trashed:
        names = tuple(origins[e]) if e in origins else () if e in own else ("inbox",)
        back.setdefault(names, []).append(e)
    await _relabel(tx, user_id, trashed, now, remove=[TRASH])
    for names, group in back.items():
        if names:
            await _relabel(tx, user_id, group, now, add=list(names))


async def end_postponement(tx: Tx, user_id: int, thread_ids: Collection[int], now: datetime) -> None:
    """Forget postponements of these threads (their mail went somewhere on purpose)."""
    label = await queries.label_by_name(tx, user_id, POSTPONED) if thread_ids else None
    if label is None:
        return
    emails = await queries.emails_of_threads(tx, user_id, thread_ids)
    ids = [e for found in emails.values() for e in found]
    postponed = await queries.emails_with_labels(tx, ids, [label.id])
    if postponed:  # relabelling recomputes every thread touched: only when there is work
        await _relabel(tx, user_id, sorted(postponed), now, remove=[POSTPONED])
    await queries.set_thread_state(tx, user_id, thread_ids, postponed_until=None)


async def unpostpone(tx: Tx, user_id: int, thread_ids: Collection[int], now: datetime) -> None:
    """Postponed threads come back: out of ``postponed``, into the inbox."""
    if not thread_ids:
        return
    emails = await queries.emails_of_threads(tx, user_id, thread_ids)
    ids = [e for found in emails.values() for e in found]
    await _relabel(tx, user_id, ids, now, add=["inbox"], remove=[POSTPONED])
    await queries.set_thread_state(tx, user_id, thread_ids, postponed_until=None)


async def _wake(rt: Runtime, user_id: int, thread_ids: Collection[int], now: datetime) -> int:
    """Bring back those of ``thread_ids`` still due (claimed: each comes back once, whichever
    worker gets there first), then push ``thread.updated`` and ``label.counts``."""
    async with rt.db.write() as tx:
        woken = await queries.claim_postponed(tx, user_id, thread_ids, now)
        await unpostpone(tx, user_id, woken, now)
    await announce_threads(rt, user_id, woken, "unpostpone")
    return len(woken)


async def wake_postponed(rt: Runtime, user_id: int) -> int:
    """Bring back the mailbox's postponed threads whose time has come; how many came back.

    Called before reading lists (so a list is right to the second even between two runs of
    :class:`PostponedWakeUp`): one index range on the ``postponed`` label when none is due.
    """
    now = rt.clock.now()
    async with rt.db.read() as tx:
        due = await queries.due_postponed(tx, user_id, POSTPONED, now)
    return await _wake(rt, user_id, due, now) if due else 0


async def wake_due_postponed(rt: Runtime, *, limit: int = 500) -> int:
    """Bring back every mailbox's postponed threads whose time has come; how many came back.

    Safe in several processes at once (see ``claim_postponed``); one transaction per
    mailbox and ``limit`` threads.
    """
    now = rt.clock.now()
    total = 0
    while True:
        async with rt.db.read() as tx:
            due = await queries.due_postponed_anywhere(tx, now, limit)
        by_user: dict[int, list[int]] = {}
        for row in due:
            by_user.setdefault(row.user_id, []).append(row.id)
        woken = 0
        for user_id, thread_ids in by_user.items():
            woken += await _wake(rt, user_id, thread_ids, now)
        total += woken
        if len(due) < limit or not woken:
            return total


class PostponedWakeUp(Periodic):
    """Brings postponed threads back at their time, in every worker: it sleeps until the
    next one is due (at most ``interval`` seconds, so that postponements made meanwhile, by
    any worker, are seen), then runs :func:`wake_due_postponed`."""

    name = "mailroom-postponed-wake-up"
    #: At least a little: a thread due now that another worker is waking is not ours to
    #: spin on.
    min_delay = 0.05

    def __init__(self, rt: Runtime, *, interval: float = 15.0) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval

    async def step(self) -> None:
        woken = await wake_due_postponed(self.rt)
        if woken:
            log.info("%d postponed thread(s) back in the inbox", woken)

    async def delay(self) -> float:
        async with self.rt.db.read() as tx:
            due = await queries.next_postponed(tx)
        if due is None:
            return self.interval
        wait = (due - self.rt.clock.now()).total_seconds()
        return min(self.interval, max(wait, 0.0))


async def apply(
    tx: Tx,
    rt: Runtime,
    user_id: int,
    action: Action,
    targets: dict[int, Target],
    *,
    label: str | None,
    until: datetime | None,
) -> dict[int, Refusal]:
    """Carry out ``action`` on the targets (all the caller's); returns those refused."""
    now = rt.clock.now()
    email_ids = sorted({e for t in targets.values() for e in t.email_ids})
    thread_ids = sorted({th for t in targets.values() for th in t.thread_ids})
    refused: dict[int, Refusal] = {}
    if action in ("read", "unread"):
        await email_store.set_flags(tx, user_id, email_ids, now=now, is_read=action == "read")
    elif action in ("star", "unstar"):
        await email_store.set_flags(tx, user_id, email_ids, now=now, is_starred=action == "star")
    elif action == "archive":
        await end_postponement(tx, user_id, thread_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=["archive"], remove=["inbox"])
    elif action == "unarchive":
        await end_postponement(tx, user_id, thread_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=["inbox"], remove=["archive"])
    elif action == "spam":
        await end_postponement(tx, user_id, thread_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=["spam"], remove=["inbox", "archive"])
    elif action == "not_spam":
        await _relabel(tx, user_id, email_ids, now, add=["inbox"], remove=["spam"])
    elif action == "trash":
        await _remember_origins(tx, user_id, email_ids, now)
        await end_postponement(tx, user_id, thread_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=[TRASH], remove=["inbox", "archive"])
    elif action == "untrash":
        await _untrash(tx, user_id, email_ids, now)
    elif action == "delete":
        refused = await _delete(tx, rt, user_id, targets, now)
    elif action == "move":
        assert label is not None
        if label == TRASH:
            await _remember_origins(tx, user_id, email_ids, now)
        await end_postponement(tx, user_id, thread_ids, now)
        others = [name for name in LOCATIONS if name != label]
        await _relabel(tx, user_id, email_ids, now, add=[label], remove=others)
    elif action == "add_label":
        assert label is not None
        if label == TRASH:
            await _remember_origins(tx, user_id, email_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=[label])
    elif action == "remove_label":
        assert label is not None
        await _relabel(tx, user_id, email_ids, now, remove=[label])
    elif action == "postpone":
        assert until is not None
        await _relabel(tx, user_id, email_ids, now, add=[POSTPONED], remove=["inbox"])
        await queries.set_thread_state(tx, user_id, thread_ids, postponed_until=until)
    elif action == "mute":
        await queries.set_thread_state(tx, user_id, thread_ids, muted=True)
        await _relabel(tx, user_id, email_ids, now, add=["archive"], remove=["inbox"])
    elif action == "unmute":
        await queries.set_thread_state(tx, user_id, thread_ids, muted=False)
    else:  # pragma: no cover - Action lists every case
        raise AssertionError(action)
    return refused


async def _delete(
    tx: Tx, rt: Runtime, user_id: int, targets: dict[int, Target], now: datetime
) -> dict[int, Refusal]:
    """Delete for good the targets' emails that are in trash or spam; refuse targets with none."""
    ids = await label_store.ensure(tx, user_id, ["trash", "spam"], now)
    all_ids = sorted({e for t in targets.values() for e in t.email_ids})
    deletable = await queries.emails_with_labels(tx, all_ids, ids.values())
    refused: dict[int, Refusal] = {}
    chosen: set[int] = set()
    for key, target in targets.items():
        mine = [e for e in target.email_ids if e in deletable]
        if not mine:
            refused[key] = Refusal("conflict", "only mail in trash or spam can be deleted for good")
        chosen.update(mine)
    if chosen:
        rows = await email_store.delete_emails(tx, user_id, sorted(chosen))
        await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in rows])
    return refused
