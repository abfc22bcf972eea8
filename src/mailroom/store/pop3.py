"""What a POP3 session reads and holds: the INBOX as a maildrop, and the maildrop lock.

Typed records only (no rows leave this module). The maildrop is the user's ``inbox`` label
in the order mail entered it (its IMAP UIDs there, which only grow), so message numbers
follow arrival as RFC 1939 clients expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, select, update

from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import email_labels, emails, labels
from mailroom.store.pop3_schema import pop3_locks
from mailroom.store.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class MaildropEntry:
    """One message of the maildrop: its email id (also its UIDL) and its stored size."""

    email_id: int
    size: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """Where one message's octets are: its blob and the trace lines stored before it."""

    email_id: int
    blob_sha: str
    trace: str | None


_INBOX = Query(
    select(emails.c.id, emails.c.size)
    .select_from(
        labels.join(email_labels, email_labels.c.label_id == labels.c.id).join(
            emails, emails.c.id == email_labels.c.email_id
        )
    )
    .where(labels.c.user_id == bindparam("user_id"), labels.c.name == "inbox")
    .order_by(email_labels.c.uid, emails.c.id)
)

_STORED = Query(
    select(emails.c.id, emails.c.blob_sha, emails.c.trace).where(
        emails.c.id == bindparam("id"), emails.c.user_id == bindparam("user_id")
    )
)


async def maildrop(tx: Tx, user_id: int) -> list[MaildropEntry]:
    """The user's INBOX, oldest arrival first."""
    rows = await tx.all(_INBOX, {"user_id": user_id})
    return [MaildropEntry(int(r["id"]), int(r["size"])) for r in rows]


async def stored_message(tx: Tx, user_id: int, email_id: int) -> StoredMessage | None:
    """Where the octets of one of ``user_id``'s emails are; None if gone or someone else's."""
    row = await tx.first(_STORED, {"id": email_id, "user_id": user_id})
    if row is None:
        return None
    trace = row["trace"]
    return StoredMessage(int(row["id"]), str(row["blob_sha"]), str(trace) if trace else None)


async def lock(tx: Tx, user_id: int, session: str, now: datetime, expires_at: datetime) -> bool:
    """Take the user's maildrop lock for ``session`` (a lock past its time is taken over);
    False while another session holds it."""
    await tx.execute(
        delete(pop3_locks).where(and_(pop3_locks.c.user_id == user_id, pop3_locks.c.expires_at <= now))
    )
    values = {"user_id": user_id, "session": session, "expires_at": expires_at}
    return await insert_ignore(tx, pop3_locks, values, ["user_id"])


async def renew(tx: Tx, user_id: int, session: str, expires_at: datetime) -> bool:
    """Push the lock's expiry on; False when ``session`` no longer holds it."""
    stmt = (
        update(pop3_locks)
        .where(and_(pop3_locks.c.user_id == user_id, pop3_locks.c.session == session))
        .values(expires_at=expires_at)
    )
    return await tx.rowcount(stmt) > 0


async def unlock(tx: Tx, user_id: int, session: str) -> None:
    """Release the lock if ``session`` holds it."""
    await tx.execute(
        delete(pop3_locks).where(and_(pop3_locks.c.user_id == user_id, pop3_locks.c.session == session))
    )
