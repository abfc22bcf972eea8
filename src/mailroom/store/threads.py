"""Threads: their message-id map, merging, the denormalised summary, and listing by label.

A thread's summary (counts, latest message, participants) and its ``thread_labels`` rows are
derived data: :func:`refresh` (one thread) and :func:`refresh_labels` (many, set-based)
recompute them from the thread's emails, and every function here or in store/emails.py that
changes emails calls one of them (a flag change calls :func:`move_flag_counts`, which moves
the same counters by what changed; a test checks it agrees with a recomputation), so they
never drift. Both move each label's counts
(``labels.threads_total`` ...) by what its ``thread_labels`` rows gained or lost, so the
counts are exact without ever counting a label.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, case, delete, func, insert, literal, select, update

from mailroom.store._prepared import PerDialect, chunks, run
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.mail_schema import (
    email_labels,
    emails,
    labels,
    thread_labels,
    thread_message_ids,
    threads,
)
from mailroom.store.upsert import dialect_insert

if TYPE_CHECKING:  # store/emails.py imports this module
    from mailroom.store.emails import NewEmail

#: Distinct senders kept in a thread summary.
MAX_PARTICIPANTS = 20

SUMMARY_COLUMNS = [
    threads.c.id,
    threads.c.subject,
    threads.c.last_date,
    threads.c.n_emails,
    threads.c.n_unread,
    threads.c.n_starred,
    threads.c.n_attachments,
    threads.c.n_signed,
    threads.c.n_encrypted,
    threads.c.latest_email_id,
    threads.c.latest_subject,
    threads.c.latest_from,
    threads.c.snippet,
    threads.c.participants,
    threads.c.muted,
    threads.c.postponed_until,
]


#: A mail address as a thread summary keeps it (JSON: ``{"name": ..., "email": ...}``).
AddressJSON = dict[str, str]


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A thread's stored summary (:data:`SUMMARY_COLUMNS`) and the ids of its labels."""

    id: int
    subject: str
    last_date: datetime
    n_emails: int
    n_unread: int
    n_starred: int
    n_attachments: int
    n_signed: int
    n_encrypted: int
    latest_email_id: int | None
    latest_subject: str
    latest_from: list[AddressJSON]
    snippet: str
    participants: list[AddressJSON]
    muted: bool
    postponed_until: datetime | None
    label_ids: tuple[int, ...]


# -- the message-id map ------------------------------------------------------------------


_ID_LOOKUP = Query(
    select(thread_message_ids.c.thread_id).where(
        thread_message_ids.c.user_id == bindparam("user_id"),
        thread_message_ids.c.message_id == bindparam("mid"),
    )
)
_REGISTER_ID = PerDialect(
    lambda dialect: (
        dialect_insert(dialect, thread_message_ids)
        .values(user_id=bindparam("user_id"), message_id=bindparam("mid"), thread_id=bindparam("thread_id"))
        .on_conflict_do_nothing(index_elements=["user_id", "message_id"])
    )
)


async def thread_ids_for(tx: Tx, user_id: int, message_ids: Sequence[str]) -> dict[str, int]:
    """``{message id: thread id}`` for the ids this mailbox has seen (own or referenced)."""
    found: dict[str, int] = {}
    if len(message_ids) <= 20:  # the usual case: primary-key reads, prepared
        for mid in message_ids:
            thread_id = await tx.scalar(_ID_LOOKUP, {"user_id": user_id, "mid": mid})
            if thread_id is not None:
                found[mid] = int(thread_id)
        return found
    for chunk in chunks(message_ids):
        rows = await tx.all(
            select(thread_message_ids.c.message_id, thread_message_ids.c.thread_id).where(
                thread_message_ids.c.user_id == user_id, thread_message_ids.c.message_id.in_(chunk)
            )
        )
        found.update({r["message_id"]: int(r["thread_id"]) for r in rows})
    return found


async def register_ids(tx: Tx, user_id: int, message_ids: Sequence[str], thread_id: int) -> None:
    """Record that these ids belong to ``thread_id`` (ids already known keep their thread)."""
    query = _REGISTER_ID(tx)
    for message_id in message_ids:
        await run(tx, query, {"user_id": user_id, "mid": message_id, "thread_id": thread_id})


_BY_SUBJECT = Query(
    select(threads.c.id)
    .where(
        threads.c.user_id == bindparam("user_id"),
        threads.c.normalized_subject == bindparam("subject"),
        threads.c.last_date >= bindparam("since"),
    )
    .order_by(threads.c.last_date.desc())
    .limit(1)
)


async def recent_by_subject(tx: Tx, user_id: int, normalized_subject: str, since: datetime) -> int | None:
    """The newest thread with this normalised subject active since ``since``."""
    thread_id = await tx.scalar(
        _BY_SUBJECT, {"user_id": user_id, "subject": normalized_subject[:255], "since": since}
    )
    return int(thread_id) if thread_id is not None else None


# -- creating and merging ----------------------------------------------------------------


_CREATE = Query(
    insert(threads)
    .values(
        user_id=bindparam("user_id"),
        subject=bindparam("subject"),
        normalized_subject=bindparam("normalized_subject"),
        created_at=bindparam("now"),
        last_date=bindparam("now"),
        latest_from=bindparam("empty", type_=threads.c.latest_from.type),
        participants=bindparam("empty2", type_=threads.c.participants.type),
        # Prepared statements run without SQLAlchemy's Python-side defaults: say them all.
        latest_subject="",
        snippet="",
        n_emails=0,
        n_unread=0,
        n_starred=0,
        n_attachments=0,
        n_signed=0,
        n_encrypted=0,
        muted=False,
    )
    .returning(threads.c.id)
)


async def create(tx: Tx, user_id: int, subject: str, normalized_subject: str, now: datetime) -> int:
    params = {
        "user_id": user_id,
        "subject": subject,
        "normalized_subject": normalized_subject[:255],
        "now": now,
        "empty": [],
        "empty2": [],
    }
    return int(await tx.scalar(_CREATE, params))


async def merge(tx: Tx, target: int, others: Sequence[int]) -> None:
    """Move every email and message id of ``others`` into ``target`` and drop ``others``."""
    others = [t for t in others if t != target]
    if not others:
        return
    await tx.execute(update(emails).where(emails.c.thread_id.in_(others)).values(thread_id=target))
    await tx.execute(
        update(thread_message_ids).where(thread_message_ids.c.thread_id.in_(others)).values(thread_id=target)
    )
    first = await tx.scalar(select(func.min(threads.c.created_at)).where(threads.c.id.in_([target, *others])))
    await tx.execute(update(threads).where(threads.c.id == target).values(created_at=first))
    for other in others:  # now empty: refresh takes their label rows (and counts) and deletes them
        await refresh(tx, other)
    await refresh(tx, target)


# -- the summary -------------------------------------------------------------------------

_AGGREGATE = Query(
    select(
        func.count().label("n_emails"),
        func.coalesce(func.sum(case((emails.c.is_read.is_(False), 1), else_=0)), 0).label("n_unread"),
        func.coalesce(func.sum(case((emails.c.is_starred.is_(True), 1), else_=0)), 0).label("n_starred"),
        func.coalesce(func.sum(case((emails.c.has_attachments.is_(True), 1), else_=0)), 0).label(
            "n_attachments"
        ),
        func.coalesce(func.sum(case((emails.c.encryption == "signed", 1), else_=0)), 0).label("n_signed"),
        func.coalesce(func.sum(case((emails.c.encryption == "encrypted", 1), else_=0)), 0).label(
            "n_encrypted"
        ),
    ).where(emails.c.thread_id == bindparam("thread_id"))
)
_SENDERS = Query(
    select(emails.c.id, emails.c.subject, emails.c.from_addrs, emails.c.snippet, emails.c.received_at)
    .where(emails.c.thread_id == bindparam("thread_id"))
    .order_by(emails.c.received_at, emails.c.id)
)
_LABEL_COUNTS = Query(
    select(
        email_labels.c.label_id,
        func.count().label("n_emails"),
        func.coalesce(func.sum(case((emails.c.is_read.is_(False), 1), else_=0)), 0).label("n_unread"),
    )
    .select_from(email_labels.join(emails, emails.c.id == email_labels.c.email_id))
    .where(emails.c.thread_id == bindparam("thread_id"))
    .group_by(email_labels.c.label_id)
)


_THREAD_USER = Query(select(threads.c.user_id).where(threads.c.id == bindparam("thread_id")))
_DELETE_THREAD = Query(delete(threads).where(threads.c.id == bindparam("thread_id")))
_UPDATE_SUMMARY = Query(
    update(threads)
    .where(threads.c.id == bindparam("thread_id"))
    .values(
        last_date=bindparam("last_date"),
        latest_email_id=bindparam("latest_email_id"),
        latest_subject=bindparam("latest_subject"),
        latest_from=bindparam("latest_from", type_=threads.c.latest_from.type),
        snippet=bindparam("snippet"),
        participants=bindparam("participants", type_=threads.c.participants.type),
        n_emails=bindparam("n_emails"),
        n_unread=bindparam("n_unread"),
        n_starred=bindparam("n_starred"),
        n_attachments=bindparam("n_attachments"),
        n_signed=bindparam("n_signed"),
        n_encrypted=bindparam("n_encrypted"),
    )
)
_OLD_LABELS = Query(
    select(thread_labels.c.label_id, thread_labels.c.n_emails, thread_labels.c.n_unread).where(
        thread_labels.c.thread_id == bindparam("thread_id")
    )
)
_CLEAR_LABELS = Query(delete(thread_labels).where(thread_labels.c.thread_id == bindparam("thread_id")))
_ADD_LABEL = Query(
    insert(thread_labels).values(
        label_id=bindparam("label_id"),
        thread_id=bindparam("thread_id"),
        user_id=bindparam("user_id"),
        last_date=bindparam("last_date"),
        n_emails=bindparam("n_emails"),
        n_unread=bindparam("n_unread"),
    )
)


# -- label counts, kept in step with thread_labels ---------------------------------------

#: ``{label id: (threads, threads with unread mail, emails, unread emails)}``
Sums = dict[int, tuple[int, int, int, int]]

_BUMP_COUNTS = Query(
    update(labels)
    .where(labels.c.id == bindparam("label_id"))
    .values(
        threads_total=labels.c.threads_total + bindparam("d_threads"),
        threads_unread=labels.c.threads_unread + bindparam("d_threads_unread"),
        emails_total=labels.c.emails_total + bindparam("d_emails"),
        emails_unread=labels.c.emails_unread + bindparam("d_emails_unread"),
    )
)


def _sums_of_rows(rows: Iterable[Row]) -> Sums:
    """What ``thread_labels`` rows (``label_id``, ``n_emails``, ``n_unread``) add to the counts."""
    sums: Sums = {}
    for r in rows:
        t, tu, e, eu = sums.get(int(r["label_id"]), (0, 0, 0, 0))
        n_unread = int(r["n_unread"])
        sums[int(r["label_id"])] = (t + 1, tu + (n_unread > 0), e + int(r["n_emails"]), eu + n_unread)
    return sums


async def _bump_counts(tx: Tx, before: Sums, after: Sums) -> None:
    """Add ``after - before`` to the labels' counts (in label id order: no deadlock between
    two transactions on PostgreSQL)."""
    for label_id in sorted(before.keys() | after.keys()):
        old = before.get(label_id, (0, 0, 0, 0))
        new = after.get(label_id, (0, 0, 0, 0))
        delta = [n - o for n, o in zip(new, old, strict=True)]
        if any(delta):
            params = dict(
                zip(("d_threads", "d_threads_unread", "d_emails", "d_emails_unread"), delta, strict=True)
            )
            await run(tx, _BUMP_COUNTS, {"label_id": label_id, **params})


async def _set_labels(
    tx: Tx, thread_id: int, user_id: int, last_date: datetime | None, rows: list[Row]
) -> None:
    """Replace the thread's ``thread_labels`` rows by ``rows`` (``label_id``, ``n_emails``,
    ``n_unread``) and move the labels' counts by the difference."""
    before = _sums_of_rows(await tx.all(_OLD_LABELS, {"thread_id": thread_id}))
    await run(tx, _CLEAR_LABELS, {"thread_id": thread_id})
    for r in rows:
        values = {
            "label_id": r["label_id"],
            "thread_id": thread_id,
            "user_id": user_id,
            "last_date": last_date,
            "n_emails": int(r["n_emails"]),
            "n_unread": int(r["n_unread"]),
        }
        await run(tx, _ADD_LABEL, values)
    await _bump_counts(tx, before, _sums_of_rows(rows))


def _participants(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        for address in row["from_addrs"] or []:
            key = (address.get("email") or address.get("name") or "").lower()
            if key and key not in seen and len(seen) < MAX_PARTICIPANTS:
                seen[key] = {"name": address.get("name", ""), "email": address.get("email", "")}
    return list(seen.values())


async def refresh(tx: Tx, thread_id: int) -> bool:
    """Recompute a thread's summary and label rows (and its labels' counts) from its emails;
    False if it was empty (and is now deleted)."""
    counts = await tx.first(_AGGREGATE, {"thread_id": thread_id})
    user_id = await tx.scalar(_THREAD_USER, {"thread_id": thread_id})
    if user_id is None:
        return False
    if counts is None or not counts["n_emails"]:
        await _set_labels(tx, thread_id, int(user_id), None, [])
        await run(tx, _DELETE_THREAD, {"thread_id": thread_id})
        return False
    rows = await tx.all(_SENDERS, {"thread_id": thread_id})
    latest = rows[-1]
    last_date = latest["received_at"]
    summary = {
        "thread_id": thread_id,
        "last_date": last_date,
        "latest_email_id": latest["id"],
        "latest_subject": latest["subject"],
        "latest_from": latest["from_addrs"] or [],
        "snippet": latest["snippet"],
        "participants": _participants(rows),
        **{k: int(v) for k, v in counts.items()},
    }
    await run(tx, _UPDATE_SUMMARY, summary)
    label_rows = await tx.all(_LABEL_COUNTS, {"thread_id": thread_id})
    await _set_labels(tx, thread_id, int(user_id), last_date, label_rows)
    return True


async def begin_with(
    tx: Tx, thread_id: int, user_id: int, email_id: int, email: NewEmail, label_ids: Collection[int]
) -> None:
    """What :func:`refresh` makes of a thread just created (by :func:`create`) for this one
    email, from the email's own column values: nothing is read back (ingest's new threads).

    ``email`` holds the inserted row's ``received_at``, ``subject``, ``from_addrs``,
    ``snippet``, ``is_read``, ``is_starred``, ``has_attachments`` and ``encryption``.
    """
    unread = 0 if email["is_read"] else 1
    await run(
        tx,
        _UPDATE_SUMMARY,
        {
            "thread_id": thread_id,
            "last_date": email["received_at"],
            "latest_email_id": email_id,
            "latest_subject": email["subject"],
            "latest_from": email["from_addrs"] or [],
            "snippet": email["snippet"],
            "participants": _participants([email]),
            "n_emails": 1,
            "n_unread": unread,
            "n_starred": 1 if email["is_starred"] else 0,
            "n_attachments": 1 if email["has_attachments"] else 0,
            "n_signed": 1 if email["encryption"] == "signed" else 0,
            "n_encrypted": 1 if email["encryption"] == "encrypted" else 0,
        },
    )
    rows = [{"label_id": label_id, "n_emails": 1, "n_unread": unread} for label_id in sorted(set(label_ids))]
    for r in rows:
        values = {"thread_id": thread_id, "user_id": user_id, "last_date": email["received_at"], **r}
        await run(tx, _ADD_LABEL, values)
    await _bump_counts(tx, {}, _sums_of_rows(rows))


def _unread_in_thread() -> Any:
    return (
        select(func.count())
        .where(emails.c.thread_id == threads.c.id, emails.c.is_read.is_(False))
        .scalar_subquery()
    )


def _starred_in_thread() -> Any:
    return (
        select(func.count())
        .where(emails.c.thread_id == threads.c.id, emails.c.is_starred.is_(True))
        .scalar_subquery()
    )


def _add_sums(total: Sums, more: Sums) -> None:
    for label_id, values in more.items():
        old = total.get(label_id, (0, 0, 0, 0))
        total[label_id] = (old[0] + values[0], old[1] + values[1], old[2] + values[2], old[3] + values[3])


async def _label_sums(tx: Tx, thread_ids: Sequence[int]) -> Sums:
    rows = await tx.all(
        select(
            thread_labels.c.label_id,
            func.count().label("threads"),
            func.sum(case((thread_labels.c.n_unread > 0, 1), else_=0)).label("threads_unread"),
            func.sum(thread_labels.c.n_emails).label("emails"),
            func.sum(thread_labels.c.n_unread).label("emails_unread"),
        )
        .where(thread_labels.c.thread_id.in_(list(thread_ids)))
        .group_by(thread_labels.c.label_id)
    )
    return {
        int(r["label_id"]): (
            int(r["threads"]),
            int(r["threads_unread"]),
            int(r["emails"]),
            int(r["emails_unread"]),
        )
        for r in rows
    }


async def refresh_labels(tx: Tx, thread_ids: Collection[int], *, flags: bool = False) -> None:
    """Recompute the label rows (and their labels' counts) of many threads whose emails'
    labels or flags changed, and with ``flags`` their unread and starred counts: a few
    set-based statements per 500 threads, whatever their number.

    For changes that keep every email (and so each thread's latest email and date); when
    emails go, use :func:`refresh` per thread.
    """
    ordered = sorted(set(thread_ids))
    before: Sums = {}
    after: Sums = {}
    for ids in chunks(ordered):
        if flags:
            await tx.execute(
                update(threads)
                .where(threads.c.id.in_(ids))
                .values(n_unread=_unread_in_thread(), n_starred=_starred_in_thread())
            )
        _add_sums(before, await _label_sums(tx, ids))
        await tx.execute(delete(thread_labels).where(thread_labels.c.thread_id.in_(ids)))
        unread = func.sum(case((emails.c.is_read.is_(False), 1), else_=0))
        await tx.execute(
            insert(thread_labels).from_select(
                ["label_id", "thread_id", "user_id", "last_date", "n_emails", "n_unread"],
                select(
                    email_labels.c.label_id,
                    emails.c.thread_id,
                    threads.c.user_id,
                    threads.c.last_date,
                    func.count(),
                    unread,
                )
                .select_from(
                    emails.join(email_labels, email_labels.c.email_id == emails.c.id).join(
                        threads, threads.c.id == emails.c.thread_id
                    )
                )
                .where(emails.c.thread_id.in_(ids))
                .group_by(
                    email_labels.c.label_id, emails.c.thread_id, threads.c.user_id, threads.c.last_date
                ),
            )
        )
        _add_sums(after, await _label_sums(tx, ids))
    # Once for the whole batch, in label id order (see _bump_counts).
    await _bump_counts(tx, before, after)


#: ``{thread id: (change of n_unread, change of n_starred)}``
ThreadDeltas = dict[int, tuple[int, int]]
#: ``{(thread id, label id): (change of n_emails, change of n_unread)}`` of ``thread_labels``
PairDeltas = dict[tuple[int, int], tuple[int, int]]


_MOVE_THREAD = Query(
    update(threads)
    .where(threads.c.id == bindparam("thread_id"))
    .values(
        n_unread=threads.c.n_unread + bindparam("d_unread", type_=Integer),
        n_starred=threads.c.n_starred + bindparam("d_starred", type_=Integer),
    )
)
_PAIR = Query(
    select(thread_labels.c.n_emails, thread_labels.c.n_unread).where(
        thread_labels.c.thread_id == bindparam("thread_id"), thread_labels.c.label_id == bindparam("label_id")
    )
)
_MOVE_PAIR = Query(
    update(thread_labels)
    .where(
        thread_labels.c.label_id == bindparam("b_label"), thread_labels.c.thread_id == bindparam("b_thread")
    )
    .values(
        n_emails=thread_labels.c.n_emails + bindparam("d_emails", type_=Integer),
        n_unread=thread_labels.c.n_unread + bindparam("d_unread", type_=Integer),
    )
)
_DROP_PAIR = Query(
    delete(thread_labels).where(
        thread_labels.c.label_id == bindparam("b_label"), thread_labels.c.thread_id == bindparam("b_thread")
    )
)
_MAKE_PAIR = Query(
    insert(thread_labels).from_select(
        ["label_id", "thread_id", "user_id", "last_date", "n_emails", "n_unread"],
        select(
            bindparam("b_label", type_=Integer),
            threads.c.id,
            threads.c.user_id,
            threads.c.last_date,
            bindparam("b_emails", type_=Integer),
            bindparam("b_unread", type_=Integer),
        ).where(threads.c.id == bindparam("b_thread")),
    )
)
#: Up to this many threads or label rows a flag change moves by prepared statements, one each
#: (IMAP's STORE of one message: a few); more go set-based, by equal changes.
_ONE_BY_ONE = 4


async def move_flag_counts(tx: Tx, thread_deltas: ThreadDeltas, pair_deltas: PairDeltas) -> None:
    """Move the counters a flag change (read, starred; the Starred label row) affects by what
    it changed: the threads' ``n_unread``/``n_starred``, the affected ``thread_labels`` rows
    (a row made or dropped when a thread's first email enters a label or its last leaves) and
    their labels' counts. Incremental: nothing is recomputed from the thread's emails, and
    equal changes go in one set-based statement (``WHERE id IN (...)``), so a STORE of one
    message runs one statement per table and one of 1,000 messages about as many.

    Only for changes that keep every email in its thread (the thread's ``last_date`` stays);
    :func:`refresh_labels` recomputes the same from scratch (a test checks they agree).
    """
    by_thread_delta: dict[tuple[int, int], list[int]] = {}
    for thread_id, delta in sorted(thread_deltas.items()):
        if any(delta):
            by_thread_delta.setdefault(delta, []).append(thread_id)
    if sum(len(ids) for ids in by_thread_delta.values()) <= _ONE_BY_ONE:
        for (d_unread, d_starred), ids in by_thread_delta.items():
            for thread_id in ids:
                await run(
                    tx, _MOVE_THREAD, {"thread_id": thread_id, "d_unread": d_unread, "d_starred": d_starred}
                )
        by_thread_delta = {}
    for (d_unread, d_starred), ids in by_thread_delta.items():
        for chunk in chunks(ids):
            await tx.execute(
                update(threads)
                .where(threads.c.id.in_(chunk))
                .values(n_unread=threads.c.n_unread + d_unread, n_starred=threads.c.n_starred + d_starred)
            )
    pairs = {pair: delta for pair, delta in pair_deltas.items() if any(delta)}
    if not pairs:
        return
    if len(pairs) <= _ONE_BY_ONE:
        await _move_pairs_one_by_one(tx, pairs)
        return
    label_ids = sorted({label_id for _, label_id in pairs})
    old: dict[tuple[int, int], tuple[int, int]] = {}
    for chunk in chunks(sorted({thread_id for thread_id, _ in pairs})):
        for r in await tx.all(
            select(
                thread_labels.c.thread_id,
                thread_labels.c.label_id,
                thread_labels.c.n_emails,
                thread_labels.c.n_unread,
            ).where(thread_labels.c.thread_id.in_(chunk), thread_labels.c.label_id.in_(label_ids))
        ):
            old[(int(r["thread_id"]), int(r["label_id"]))] = (int(r["n_emails"]), int(r["n_unread"]))
    before: list[dict[str, int]] = []
    after: list[dict[str, int]] = []
    moved: dict[tuple[int, int, int], list[int]] = {}  # (label, d_emails, d_unread): threads
    made: dict[tuple[int, int, int], list[int]] = {}
    dropped: dict[int, list[int]] = {}
    for (thread_id, label_id), (d_emails, d_unread) in sorted(
        pairs.items(), key=lambda p: (p[0][1], p[0][0])
    ):
        n_emails, n_unread = old.get((thread_id, label_id), (0, 0))
        if (thread_id, label_id) in old:
            before.append({"label_id": label_id, "n_emails": n_emails, "n_unread": n_unread})
        new_emails, new_unread = n_emails + d_emails, n_unread + d_unread
        if new_emails > 0:
            after.append({"label_id": label_id, "n_emails": new_emails, "n_unread": new_unread})
        if (thread_id, label_id) not in old:
            if new_emails > 0:
                made.setdefault((label_id, new_emails, new_unread), []).append(thread_id)
        elif new_emails <= 0:
            dropped.setdefault(label_id, []).append(thread_id)
        else:
            moved.setdefault((label_id, d_emails, d_unread), []).append(thread_id)
    for (label_id, d_emails, d_unread), ids in moved.items():
        for chunk in chunks(ids):
            await tx.execute(
                update(thread_labels)
                .where(thread_labels.c.label_id == label_id, thread_labels.c.thread_id.in_(chunk))
                .values(
                    n_emails=thread_labels.c.n_emails + d_emails, n_unread=thread_labels.c.n_unread + d_unread
                )
            )
    for label_id, ids in dropped.items():
        for chunk in chunks(ids):
            await tx.execute(
                delete(thread_labels).where(
                    thread_labels.c.label_id == label_id, thread_labels.c.thread_id.in_(chunk)
                )
            )
    for (label_id, n_emails, n_unread), ids in made.items():
        for chunk in chunks(ids):
            await tx.execute(
                insert(thread_labels).from_select(
                    ["label_id", "thread_id", "user_id", "last_date", "n_emails", "n_unread"],
                    select(
                        literal(label_id, Integer),
                        threads.c.id,
                        threads.c.user_id,
                        threads.c.last_date,
                        literal(n_emails, Integer),
                        literal(n_unread, Integer),
                    ).where(threads.c.id.in_(chunk)),
                )
            )
    await _bump_counts(tx, _sums_of_rows(before), _sums_of_rows(after))


async def _move_pairs_one_by_one(tx: Tx, pairs: PairDeltas) -> None:
    """:func:`move_flag_counts` for a few ``thread_labels`` rows: prepared statements."""
    before: list[dict[str, int]] = []
    after: list[dict[str, int]] = []
    for (thread_id, label_id), (d_emails, d_unread) in sorted(
        pairs.items(), key=lambda p: (p[0][1], p[0][0])
    ):
        key = {"b_thread": thread_id, "b_label": label_id}
        row = await tx.first(_PAIR, {"thread_id": thread_id, "label_id": label_id})
        n_emails, n_unread = (int(row["n_emails"]), int(row["n_unread"])) if row else (0, 0)
        if row is not None:
            before.append({"label_id": label_id, "n_emails": n_emails, "n_unread": n_unread})
        new_emails, new_unread = n_emails + d_emails, n_unread + d_unread
        if new_emails > 0:
            after.append({"label_id": label_id, "n_emails": new_emails, "n_unread": new_unread})
            if row is None:
                await run(tx, _MAKE_PAIR, {**key, "b_emails": new_emails, "b_unread": new_unread})
            else:
                await run(tx, _MOVE_PAIR, {**key, "d_emails": d_emails, "d_unread": d_unread})
        elif row is not None:
            await run(tx, _DROP_PAIR, key)
    await _bump_counts(tx, _sums_of_rows(before), _sums_of_rows(after))


# -- reading -----------------------------------------------------------------------------

_LIST_BY_LABEL = Query(
    select(*SUMMARY_COLUMNS)
    .select_from(thread_labels.join(threads, threads.c.id == thread_labels.c.thread_id))
    .where(thread_labels.c.user_id == bindparam("user_id"), thread_labels.c.label_id == bindparam("label_id"))
    .order_by(thread_labels.c.last_date.desc(), thread_labels.c.thread_id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_GET = Query(
    select(*SUMMARY_COLUMNS).where(
        threads.c.id == bindparam("thread_id"), threads.c.user_id == bindparam("user_id")
    )
)


async def _with_labels(tx: Tx, rows: list[Row]) -> list[ThreadRecord]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    pairs = await tx.all(
        select(thread_labels.c.thread_id, thread_labels.c.label_id).where(thread_labels.c.thread_id.in_(ids))
    )
    by_thread: dict[int, list[int]] = {i: [] for i in ids}
    for pair in pairs:
        by_thread[pair["thread_id"]].append(int(pair["label_id"]))
    return [ThreadRecord(**row, label_ids=tuple(sorted(by_thread[row["id"]]))) for row in rows]


async def list_by_label(
    tx: Tx, user_id: int, label_id: int, *, offset: int = 0, limit: int = 50
) -> list[ThreadRecord]:
    """Summaries of the threads carrying ``label_id``, newest activity first (one index range
    scan of ``ix_thread_labels_listing``), each with its ``label_ids``."""
    rows = await tx.all(
        _LIST_BY_LABEL, {"user_id": user_id, "label_id": label_id, "limit": limit, "offset": offset}
    )
    return await _with_labels(tx, rows)


_MUTED = Query(select(threads.c.muted).where(threads.c.id == bindparam("thread_id")))


async def is_muted(tx: Tx, thread_id: int) -> bool:
    """Whether new mail in the thread skips the inbox."""
    return bool(await tx.scalar(_MUTED, {"thread_id": thread_id}))


async def get(tx: Tx, user_id: int, thread_id: int) -> ThreadRecord | None:
    """One thread's summary (with ``label_ids``) if it belongs to ``user_id``."""
    row = await tx.first(_GET, {"thread_id": thread_id, "user_id": user_id})
    if row is None:
        return None
    return (await _with_labels(tx, [row]))[0]
