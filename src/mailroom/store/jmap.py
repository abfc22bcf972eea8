"""What JMAP's Mailbox and Thread methods read beyond the mail client's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from mailroom.store.engine import Tx
from mailroom.store.mail_schema import email_labels, emails, threads


async def emails_only_in(tx: Tx, user_id: int, label_id: int) -> list[int]:
    """The account's emails in label ``label_id`` and in no other label."""
    other = aliased(email_labels)
    rows = await tx.scalars(
        select(email_labels.c.email_id)
        .join(emails, emails.c.id == email_labels.c.email_id)
        .where(
            email_labels.c.label_id == label_id,
            emails.c.user_id == user_id,
            ~exists().where(and_(other.c.email_id == email_labels.c.email_id, other.c.label_id != label_id)),
        )
    )
    return sorted(int(r) for r in rows)


@dataclass(frozen=True, slots=True)
class ThreadEmails:
    """A thread and its emails' ids, oldest first (JMAP's Thread object)."""

    thread_id: int
    email_ids: tuple[int, ...]


async def thread_emails(tx: Tx, user_id: int, thread_ids: Sequence[int]) -> list[ThreadEmails]:
    """The account's threads among ``thread_ids`` with their emails by date (then id)."""
    if not thread_ids:
        return []
    found = await tx.scalars(
        select(threads.c.id).where(threads.c.id.in_(list(thread_ids)), threads.c.user_id + 0 == user_id)
    )
    known = {int(t) for t in found}
    if not known:
        return []
    rows = await tx.all(
        select(emails.c.id, emails.c.thread_id)
        .where(emails.c.thread_id.in_(sorted(known)))
        .order_by(emails.c.thread_id, emails.c.received_at, emails.c.id)
    )
    by_thread: dict[int, list[int]] = {t: [] for t in known}
    for row in rows:
        by_thread[int(row["thread_id"])].append(int(row["id"]))
    return [ThreadEmails(t, tuple(by_thread[t])) for t in thread_ids if t in known]
