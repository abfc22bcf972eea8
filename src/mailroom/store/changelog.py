"""The account change log: states, what changed since a state, IMAP UIDs, tombstone expiry.

Every change to an account's mail state takes the account's next modification sequence
(modseq) and leaves one ``mail_changes`` row. The database writes them, by triggers in the
transaction of the change (migration ``0005_changelog``), so ingest, batch actions, compose,
imports, purges and a hand-made UPDATE all leave the same trail. An account's *state* is its
current modseq: JMAP's state strings, IMAP's HIGHESTMODSEQ and the ``state`` of push events.

What a row records (``kind`` / ``op``):

- an email created, updated (read, starred, draft, moved to another thread), destroyed; added
  to a label as UID ``uid``, or removed from it (with the UID it had there: IMAP's VANISHED);
- a thread created, updated (an email joined or left it), destroyed;
- a label created, updated (renamed, or its counts moved), destroyed;
- the auto-reply (JMAP's VacationResponse, one per account, its id the user's) updated;
- an email hidden from JMAP (it got the ``$deleted`` keyword, IMAP's ``\\Deleted``: RFC 8621
  §4.1.1) or shown again (migration 0022_jmap3): an update for everyone else, a destruction
  and a creation for JMAP (``ChangesQuery.hidden_as_destroyed``).

:func:`changes` answers "what changed since state S" for one kind with one range scan of
the primary key ``(user_id, kind, modseq)``: the cost follows the number of changes since S,
never the size of the mailbox. The log is kept for ``changes_retention_days``
(:func:`purge`); a state older than that gets :class:`mailroom.errors.CannotCalculateChanges`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.errors import BadRequest, CannotCalculateChanges
from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import email_labels, emails, labels, mail_changes, mail_states


class Kind(IntEnum):
    """The object types with their own changes (JMAP's Email, Thread, Mailbox,
    VacationResponse)."""

    EMAIL = 1
    THREAD = 2
    LABEL = 3
    VACATION = 4


class Op(IntEnum):
    CREATED = 1
    UPDATED = 2
    DESTROYED = 3
    ADDED = 4  # an email entered label ``label_id`` as UID ``uid``
    REMOVED = 5  # an email left label ``label_id`` (where it was UID ``uid``)
    HIDDEN = 6  # an email got ``$deleted`` (JMAP: destroyed; others: updated)
    SHOWN = 7  # an email lost ``$deleted`` (JMAP: created again; others: updated)


@dataclass(frozen=True, slots=True)
class MailState:
    """An account's current modseq, and the oldest state changes can be calculated from."""

    modseq: int
    floor: int


@dataclass(frozen=True, slots=True)
class ChangesQuery:
    """Changes of ``kind`` since state ``since``, at most ``max_changes`` ids in all."""

    kind: Kind
    since: int
    max_changes: int
    #: JMAP's view: an email hidden (``$deleted``) is destroyed, one shown again created.
    hidden_as_destroyed: bool = False


@dataclass(frozen=True, slots=True)
class Changes:
    """JMAP's ``/changes`` answer. With ``has_more_changes``, ``new_state`` is an
    intermediate state: ask again from it for the rest."""

    kind: Kind
    old_state: int
    new_state: int
    has_more_changes: bool
    created: tuple[int, ...]
    updated: tuple[int, ...]
    destroyed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LabelStatus:
    """What IMAP's SELECT/STATUS needs of a label (``highest_modseq`` is the account's)."""

    label_id: int
    uidvalidity: int
    uidnext: int
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MessageUid:
    """An email in a label: its UID there and its modseq (IMAP CONDSTORE's MODSEQ)."""

    uid: int
    email_id: int
    modseq: int


_STATE = Query(
    select(mail_states.c.modseq, mail_states.c.floor).where(mail_states.c.user_id == bindparam("user_id"))
)
_CHANGES = Query(
    select(mail_changes.c.modseq, mail_changes.c.object_id, mail_changes.c.op)
    .where(
        mail_changes.c.user_id == bindparam("user_id"),
        mail_changes.c.kind == bindparam("kind"),
        mail_changes.c.modseq > bindparam("after"),
        mail_changes.c.modseq <= bindparam("upto"),
    )
    .order_by(mail_changes.c.modseq)
    .limit(bindparam("limit"))
)


async def state(tx: Tx, user_id: int) -> MailState:
    """The account's state (``0, 0`` for an account that has none: no user by that id)."""
    row = await tx.first(_STATE, {"user_id": user_id})
    if row is None:
        return MailState(0, 0)
    return MailState(int(row["modseq"]), int(row["floor"]))


async def states(tx: Tx, user_ids: Collection[int]) -> dict[int, int]:
    """``{user id: modseq}`` for the accounts of ``user_ids`` that exist."""
    found: dict[int, int] = {}
    for user_id in sorted(user_ids):  # prepared primary-key reads: a few microseconds each
        row = await tx.first(_STATE, {"user_id": user_id})
        if row is not None:
            found[user_id] = int(row["modseq"])
    return found


_CREATED = int(Op.CREATED)
_DESTROYED = int(Op.DESTROYED)
_UPDATED = int(Op.UPDATED)
_HIDDEN = int(Op.HIDDEN)
_SHOWN = int(Op.SHOWN)


def _lifecycle(first: int | None, last: int | None) -> tuple[bool, bool]:
    """(existed before, exists after) from an object's first and last create/destroy op."""
    before = first is None or first == _DESTROYED
    after = last is None or last == _CREATED
    return before, after


async def changes(tx: Tx, user_id: int, query: ChangesQuery) -> Changes:
    """The ids of ``query.kind`` created, updated and destroyed since ``query.since``.

    Reads the log in modseq order from ``since`` (pages of a range scan; usually one) and
    stops before the first change of an object that would make more than ``max_changes``
    ids: ``new_state`` is then the modseq just before it. An object created and destroyed
    in between is left out; one destroyed and created again (an id SQLite handed out anew)
    is updated. Raises :class:`CannotCalculateChanges` for a state older than the log, and
    ``BadRequest`` for a state the account never had.
    """
    if query.max_changes < 1:
        raise BadRequest("max_changes must be at least 1")
    # The state first, and the log only up to it: every change up to a state that has
    # committed has committed too (an account's changes commit in modseq order), so the
    # answer is complete up to ``top`` even while other writers go on.
    top = await state(tx, user_id)
    if query.since > top.modseq:
        raise BadRequest(f"state {query.since} is newer than the account's ({top.modseq})")
    if query.since < top.floor:
        raise CannotCalculateChanges(query.since, top.floor)
    first_life: dict[int, int | None] = {}  # insertion order: first seen first
    last_life: dict[int, int | None] = {}
    after = query.since
    page = max(2 * query.max_changes, 256)
    cut: int | None = None
    max_changes = query.max_changes
    hidden = query.hidden_as_destroyed
    # JMAP's threads: one hidden (all its emails $deleted) that an email then joins is
    # visible again with no "shown" op (the email insert logs an update): read that update
    # as a creation; the caller drops it if the thread is hidden now (the update was a
    # hidden email's).
    rejoin = hidden and query.kind == Kind.THREAD
    hidden_threads: set[int] = set()
    while cut is None:
        # Tuples of plain ints (no row dict, no enum compared per row): a /changes after
        # 100 new messages reads a few hundred rows.
        rows = await tx.tuples(
            _CHANGES,
            {"user_id": user_id, "kind": int(query.kind), "after": after, "upto": top.modseq, "limit": page},
        )
        for modseq, object_id, op in rows:
            if rejoin:
                if op == _HIDDEN:
                    hidden_threads.add(object_id)
                elif op == _UPDATED and object_id in hidden_threads:
                    op = _CREATED
                if op != _HIDDEN:
                    hidden_threads.discard(object_id)
            if hidden and op in (_HIDDEN, _SHOWN):
                op = _DESTROYED if op == _HIDDEN else _CREATED
            if object_id not in first_life:
                if len(first_life) == max_changes:
                    cut = modseq - 1
                    break
                first_life[object_id] = None
                last_life[object_id] = None
            if op in (_CREATED, _DESTROYED):
                if first_life[object_id] is None:
                    first_life[object_id] = op
                last_life[object_id] = op
            after = modseq
        if len(rows) < page:
            break
    # Again after the log: a purge that removed rows in between has raised the floor by now.
    floor = (await state(tx, user_id)).floor
    if query.since < floor:
        raise CannotCalculateChanges(query.since, floor)
    created: list[int] = []
    updated: list[int] = []
    destroyed: list[int] = []
    for object_id, first in first_life.items():
        before, exists = _lifecycle(first, last_life[object_id])
        if before and exists:
            updated.append(object_id)
        elif exists:
            created.append(object_id)
        elif before:
            destroyed.append(object_id)
    return Changes(
        kind=query.kind,
        old_state=query.since,
        new_state=cut if cut is not None else top.modseq,
        has_more_changes=cut is not None,
        created=tuple(created),
        updated=tuple(updated),
        destroyed=tuple(destroyed),
    )


async def hidden_at(tx: Tx, user_id: int, thread_ids: Collection[int], modseq: int) -> set[int]:
    """Which of ``thread_ids`` were hidden from JMAP at state ``modseq``: their last hidden or
    shown op up to it (logged since migration 0022_jmap3) is hidden. One reverse range read
    of the log per thread (call it for few: threads with a hidden email now)."""
    found: set[int] = set()
    for thread_id in sorted(set(thread_ids)):
        last = await tx.scalar(
            select(mail_changes.c.op)
            .where(
                mail_changes.c.user_id == user_id,
                mail_changes.c.kind == int(Kind.THREAD),
                mail_changes.c.modseq <= modseq,
                mail_changes.c.object_id == thread_id,
                mail_changes.c.op.in_((_HIDDEN, _SHOWN)),
            )
            .order_by(mail_changes.c.modseq.desc())
            .limit(1)
        )
        if last == _HIDDEN:
            found.add(thread_id)
    return found


async def log_label_updated(tx: Tx, user_id: int, label_id: int) -> None:
    """Log label ``label_id`` as updated at the account's next modseq, as the label triggers
    do for a rename (migration 0005_changelog), for a change no trigger sees (a subscription)."""
    modseq = await tx.scalar(
        update(mail_states)
        .where(mail_states.c.user_id == user_id)
        .values(modseq=mail_states.c.modseq + 1)
        .returning(mail_states.c.modseq)
    )
    if modseq is not None:
        await tx.execute(
            insert(mail_changes).values(
                user_id=user_id,
                kind=int(Kind.LABEL),
                modseq=int(modseq),
                object_id=label_id,
                op=int(Op.UPDATED),
                changed_at=int(time.time()),
            )
        )


# -- IMAP ----------------------------------------------------------------------------------

_LABEL_STATUS = Query(
    select(labels.c.uidvalidity, labels.c.uidnext, mail_states.c.modseq)
    .select_from(labels.join(mail_states, mail_states.c.user_id == labels.c.user_id))
    .where(labels.c.id == bindparam("label_id"), labels.c.user_id == bindparam("user_id"))
)


async def label_status(tx: Tx, user_id: int, label_id: int) -> LabelStatus | None:
    """UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ of one of the account's labels (None: not its)."""
    row = await tx.first(_LABEL_STATUS, {"user_id": user_id, "label_id": label_id})
    if row is None:
        return None
    return LabelStatus(label_id, int(row["uidvalidity"]), int(row["uidnext"]), int(row["modseq"]))


async def uids(tx: Tx, user_id: int, label_id: int, *, after_uid: int = 0) -> list[MessageUid]:
    """The emails in a label by UID (those above ``after_uid``), with their modseqs."""
    rows = await tx.all(
        select(email_labels.c.uid, email_labels.c.email_id, email_labels.c.modseq)
        .select_from(email_labels.join(emails, emails.c.id == email_labels.c.email_id))
        .where(
            email_labels.c.label_id == label_id,
            email_labels.c.uid > after_uid,
            emails.c.user_id == user_id,
        )
        .order_by(email_labels.c.uid)
    )
    return [MessageUid(int(r["uid"]), int(r["email_id"]), int(r["modseq"])) for r in rows]


async def vanished(tx: Tx, user_id: int, label_id: int, since: int) -> list[int]:
    """UIDs that left a label after state ``since`` (QRESYNC's VANISHED (EARLIER)), in order.

    Raises :class:`CannotCalculateChanges` when the log no longer reaches back to ``since``.
    """
    rows = await tx.all(
        select(mail_changes.c.uid)
        .where(
            mail_changes.c.user_id == user_id,
            mail_changes.c.kind == int(Kind.EMAIL),
            mail_changes.c.modseq > since,
            mail_changes.c.op == int(Op.REMOVED),
            mail_changes.c.label_id == label_id,
        )
        .order_by(mail_changes.c.uid)
    )
    current = await state(tx, user_id)
    if since < current.floor:
        raise CannotCalculateChanges(since, current.floor)
    return sorted({int(r["uid"]) for r in rows})


# -- expiry ------------------------------------------------------------------------------


async def expired_accounts(tx: Tx, before: datetime) -> dict[int, int]:
    """``{user id: highest modseq}`` of the log rows older than ``before``, per account."""
    rows = await tx.all(
        select(mail_changes.c.user_id, func.max(mail_changes.c.modseq).label("modseq"))
        .where(mail_changes.c.changed_at < int(before.timestamp()))
        .group_by(mail_changes.c.user_id)
    )
    return {int(r["user_id"]): int(r["modseq"]) for r in rows}


async def purge_account(tx: Tx, user_id: int, upto: int) -> int:
    """Forget an account's changes up to modseq ``upto`` (raising its floor there); how many
    rows went. Per account and by primary key: each account's state row is locked alone."""
    await tx.execute(
        update(mail_states)
        .where(mail_states.c.user_id == user_id, mail_states.c.floor < upto)
        .values(floor=upto)
    )
    return await tx.rowcount(
        delete(mail_changes).where(
            mail_changes.c.user_id == user_id,
            mail_changes.c.kind.in_([int(k) for k in Kind]),
            mail_changes.c.modseq <= upto,
        )
    )
