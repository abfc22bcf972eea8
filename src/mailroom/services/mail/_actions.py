"""Batch actions on a mailbox's emails, and postponed threads coming back.

Every action works on emails (the thread batch acts on all the emails of each thread) through
store/emails.py, which keeps thread summaries and ``thread_labels`` in step. Locations are
labels: ``inbox``, ``archive``, ``spam``, ``trash`` and ``postponed``; an action that moves
mail somewhere else also ends a postponement.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailroom.runtime import Runtime
from mailroom.services.mail._mailbox import POSTPONED
from mailroom.services.mail._push import announce_threads
from mailroom.store import emails as email_store
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx

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
#: ``untrash`` brings mail back to the inbox unless it is the owner's own (sent, drafts).
_OWN = ("sent", "drafts")


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


async def end_postponement(tx: Tx, user_id: int, thread_ids: Collection[int], now: datetime) -> None:
    """Forget postponements of these threads (their mail went somewhere on purpose)."""
    label = await queries.label_by_name(tx, user_id, POSTPONED) if thread_ids else None
    if label is None:
        return
    emails = await queries.emails_of_threads(tx, user_id, thread_ids)
    ids = [e for found in emails.values() for e in found]
    postponed = await queries.emails_with_labels(tx, ids, [int(label["id"])])
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


async def wake_postponed(rt: Runtime, user_id: int) -> int:
    """Bring back the mailbox's postponed threads whose time has come; how many came back.

    Called before reading lists: one index range on the ``postponed`` label when none is due.
    """
    now = rt.clock.now()
    async with rt.db.read() as tx:
        if not await queries.due_postponed(tx, user_id, POSTPONED, now):
            return 0
    async with rt.db.write() as tx:
        due = await queries.due_postponed(tx, user_id, POSTPONED, now)
        await unpostpone(tx, user_id, due, now)
    await announce_threads(rt, user_id, due, "unpostpone")
    return len(due)


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
        await end_postponement(tx, user_id, thread_ids, now)
        await _relabel(tx, user_id, email_ids, now, add=["trash"], remove=["inbox", "archive"])
    elif action == "untrash":
        ids = await label_store.ensure(tx, user_id, list(_OWN), now)
        own = await queries.emails_with_labels(tx, email_ids, ids.values())
        await _relabel(tx, user_id, email_ids, now, remove=["trash"])
        await _relabel(tx, user_id, [e for e in email_ids if e not in own], now, add=["inbox"])
    elif action == "delete":
        refused = await _delete(tx, rt, user_id, targets, now)
    elif action == "move":
        assert label is not None
        await end_postponement(tx, user_id, thread_ids, now)
        others = [name for name in LOCATIONS if name != label]
        await _relabel(tx, user_id, email_ids, now, add=[label], remove=others)
    elif action == "add_label":
        assert label is not None
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
        await queries.release_blobs(tx, rt.blobs, [str(r["blob_sha"]) for r in rows])
    return refused
