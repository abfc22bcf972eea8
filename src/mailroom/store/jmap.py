"""What JMAP's Mailbox and Thread methods read beyond the mail client's queries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.orm import aliased

from mailroom.store._prepared import chunks
from mailroom.store.engine import Row, Tx
from mailroom.store.jmap_emails import VISIBLE
from mailroom.store.jmap_schema import jmap_identities, jmap_mailboxes
from mailroom.store.jmap_schema import push_subscriptions as subs
from mailroom.store.mail_schema import (
    email_labels,
    emails,
    mail_changes,
    mail_states,
    threads,
)
from mailroom.store.schema import send_as, users
from mailroom.store.uploads_schema import uploads
from mailroom.store.upsert import upsert


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
        .where(emails.c.thread_id.in_(sorted(known)), VISIBLE)
        .order_by(emails.c.thread_id, emails.c.received_at, emails.c.id)
    )
    by_thread: dict[int, list[int]] = {t: [] for t in known}
    for row in rows:
        by_thread[int(row["thread_id"])].append(int(row["id"]))
    # A thread whose emails are all hidden ($deleted) is not there for JMAP.
    return [ThreadEmails(t, tuple(by_thread[t])) for t in thread_ids if by_thread.get(t)]


async def threads_with_hidden_email(tx: Tx, user_id: int, thread_ids: Sequence[int]) -> set[int]:
    """Which of ``thread_ids`` hold an email hidden (``$deleted``) now (by thread: a
    primary-key probe of ``email_keywords`` per email of those threads)."""
    found: set[int] = set()
    for chunk in chunks(sorted(set(thread_ids)), 500):
        found.update(
            int(t)
            for t in await tx.scalars(
                select(emails.c.thread_id)
                .where(emails.c.thread_id.in_(chunk), emails.c.user_id == user_id, ~VISIBLE)
                .distinct()
            )
        )
    return found


async def threads_without_visible_email(tx: Tx, thread_ids: Sequence[int]) -> set[int]:
    """Which of ``thread_ids`` have no email JMAP shows (all hidden, or none at all)."""
    ids = sorted(set(thread_ids))
    seen: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        seen.update(
            int(t)
            for t in await tx.scalars(
                select(emails.c.thread_id).where(emails.c.thread_id.in_(chunk), VISIBLE).distinct()
            )
        )
    return set(ids) - seen


async def threads_of(tx: Tx, user_id: int, email_ids: Sequence[int]) -> set[int]:
    """The threads the account's emails among ``email_ids`` are in."""
    found: set[int] = set()
    ids = sorted(set(email_ids))
    for start in range(0, len(ids), 500):
        found.update(
            int(t)
            for t in await tx.scalars(
                select(emails.c.thread_id).where(
                    emails.c.id.in_(ids[start : start + 500]), emails.c.user_id == user_id
                )
            )
        )
    return found


async def email_blobs(tx: Tx, user_id: int) -> list[tuple[int, str]]:
    """``(email id, blob sha)`` of every email of the account (the header filter reads them)."""
    rows = await tx.all(select(emails.c.id, emails.c.blob_sha).where(emails.c.user_id == user_id))
    return [(int(r["id"]), str(r["blob_sha"])) for r in rows]


async def sort_orders(tx: Tx, user_id: int) -> dict[int, int]:
    """``{label id: sortOrder}`` of the mailboxes whose order the user set."""
    rows = await tx.all(
        select(jmap_mailboxes.c.label_id, jmap_mailboxes.c.sort_order).where(
            jmap_mailboxes.c.user_id == user_id
        )
    )
    return {int(r["label_id"]): int(r["sort_order"]) for r in rows}


async def set_sort_order(tx: Tx, user_id: int, label_id: int, sort_order: int) -> None:
    """Keep a mailbox's sortOrder (the caller checked the label is the user's) and log the
    label as changed at the account's next modseq, as the label triggers do for a rename
    (migration 0005_changelog): Mailbox/changes and push see it."""
    values = {"user_id": user_id, "sort_order": sort_order}
    await upsert(tx, jmap_mailboxes, {"label_id": label_id, **values}, ["label_id"], values)
    modseq = await tx.scalar(
        update(mail_states)
        .where(mail_states.c.user_id == user_id)
        .values(modseq=mail_states.c.modseq + 1)
        .returning(mail_states.c.modseq)
    )
    if modseq is None:
        return
    await tx.execute(
        insert(mail_changes).values(
            user_id=user_id, kind=3, modseq=int(modseq), object_id=label_id, op=2, changed_at=int(time.time())
        )
    )


async def email_ids(tx: Tx, user_id: int, limit: int) -> list[int]:
    """The ids of the account's visible emails, lowest first, at most ``limit``."""
    found = await tx.scalars(
        select(emails.c.id).where(emails.c.user_id == user_id, VISIBLE).order_by(emails.c.id).limit(limit)
    )
    return [int(e) for e in found]


async def thread_ids(tx: Tx, user_id: int, limit: int) -> list[int]:
    """The ids of the account's threads, lowest first, at most ``limit``."""
    found = await tx.scalars(
        select(threads.c.id).where(threads.c.user_id == user_id).order_by(threads.c.id).limit(limit)
    )
    return [int(t) for t in found]


async def rename_identity(tx: Tx, user_id: int, address: str, display_name: str) -> bool:
    """Change the display name of one of the user's send-as identities."""
    stmt = (
        update(send_as)
        .where(send_as.c.user_id == user_id, send_as.c.address == address)
        .values(display_name=display_name)
    )
    return await tx.rowcount(stmt) > 0


async def rename_user(tx: Tx, user_id: int, display_name: str) -> None:
    await tx.execute(update(users).where(users.c.id == user_id).values(display_name=display_name))


@dataclass(frozen=True, slots=True)
class SendAs:
    """An address the user may send as: their own (``own``) or a granted identity."""

    address: str
    display_name: str
    own: bool


@dataclass(frozen=True, slots=True)
class IdentityExtras:
    """What JMAP keeps of an identity beyond address and name (RFC 8621 §6); addresses as
    ``{"name": ..., "email": ...}`` objects."""

    reply_to: tuple[dict[str, str | None], ...] | None = None
    bcc: tuple[dict[str, str | None], ...] | None = None
    text_signature: str = ""
    html_signature: str = ""


async def identity_extras(tx: Tx, user_id: int) -> dict[str, IdentityExtras]:
    """``{address in lower case: extras}`` of the user's identities that have any."""
    rows = await tx.all(select(jmap_identities).where(jmap_identities.c.user_id == user_id))
    return {
        str(r["address"]): IdentityExtras(
            reply_to=tuple(r["reply_to"]) if r["reply_to"] is not None else None,
            bcc=tuple(r["bcc"]) if r["bcc"] is not None else None,
            text_signature=str(r["text_signature"]),
            html_signature=str(r["html_signature"]),
        )
        for r in rows
    }


async def set_identity_extras(tx: Tx, user_id: int, address: str, extras: IdentityExtras) -> None:
    """Keep ``extras`` for the user's identity ``address`` (the caller checked it is theirs)."""
    values = {
        "reply_to": list(extras.reply_to) if extras.reply_to is not None else None,
        "bcc": list(extras.bcc) if extras.bcc is not None else None,
        "text_signature": extras.text_signature,
        "html_signature": extras.html_signature,
    }
    key = {"user_id": user_id, "address": address.lower()}
    await upsert(tx, jmap_identities, {**key, **values}, ["user_id", "address"], values)


async def send_as_addresses(tx: Tx, user_id: int) -> list[SendAs]:
    """The user's own address first, then their send-as identities by address."""
    me = await tx.first(select(users.c.email, users.c.display_name).where(users.c.id == user_id))
    if me is None:
        return []
    rows = await tx.all(
        select(send_as.c.address, send_as.c.display_name)
        .where(send_as.c.user_id == user_id)
        .order_by(send_as.c.address)
    )
    out = [SendAs(str(me["email"]), str(me["display_name"]), True)]
    out += [SendAs(str(r["address"]), str(r["display_name"]), False) for r in rows]
    return out


@dataclass(frozen=True, slots=True)
class AutoReply:
    """The user's auto-reply (JMAP's VacationResponse)."""

    enabled: bool
    subject: str
    body: str
    start: date | None
    end: date | None


_REPLY = [
    users.c.reply_enabled,
    users.c.reply_subject,
    users.c.reply_body,
    users.c.reply_start,
    users.c.reply_end,
]


async def auto_reply(tx: Tx, user_id: int) -> AutoReply | None:
    row = await tx.first(select(*_REPLY).where(users.c.id == user_id))
    if row is None:
        return None
    return AutoReply(
        bool(row["reply_enabled"]),
        str(row["reply_subject"]),
        str(row["reply_body"]),
        row["reply_start"],
        row["reply_end"],
    )


async def set_auto_reply(tx: Tx, user_id: int, reply: AutoReply, now: datetime) -> None:
    await tx.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            reply_enabled=reply.enabled,
            reply_subject=reply.subject,
            reply_body=reply.body,
            reply_start=reply.start,
            reply_end=reply.end,
            updated_at=now,
        )
    )


async def holds_blob(tx: Tx, user_id: int, sha: str) -> bool:
    """Whether the user has an email or an upload made of blob ``sha`` (who may read it)."""
    upload = await tx.first(
        select(uploads.c.id).where(uploads.c.blob_sha == sha, uploads.c.user_id == user_id).limit(1)
    )
    if upload is not None:
        return True
    email = await tx.first(
        select(emails.c.id).where(emails.c.blob_sha == sha, emails.c.user_id == user_id).limit(1)
    )
    return email is not None


async def upload_of_blob(tx: Tx, user_id: int, sha: str) -> tuple[str, str | None] | None:
    """``(media type, file name)`` of the user's newest upload of blob ``sha``, if any."""
    row = await tx.first(
        select(uploads.c.content_type, uploads.c.filename)
        .where(uploads.c.blob_sha == sha, uploads.c.user_id == user_id)
        .order_by(uploads.c.created_at.desc())
        .limit(1)
    )
    return None if row is None else (str(row["content_type"]), row["filename"])


async def upload_sha(tx: Tx, upload_id: str) -> str:
    return str(await tx.scalar(select(uploads.c.blob_sha).where(uploads.c.id == upload_id)))


# -- push subscriptions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: str
    user_id: int
    device_client_id: str
    url: str
    verification_code: str
    verified: bool
    expires: datetime
    types: tuple[str, ...] | None


def _push(row: Row) -> PushSubscription:
    types = row["types"]
    return PushSubscription(
        id=str(row["id"]),
        user_id=int(row["user_id"]),
        device_client_id=str(row["device_client_id"]),
        url=str(row["url"]),
        verification_code=str(row["verification_code"]),
        verified=bool(row["verified"]),
        expires=row["expires"],
        types=None if types is None else tuple(str(t) for t in types),
    )


async def push_subscriptions(tx: Tx, user_id: int) -> list[PushSubscription]:
    rows = await tx.all(select(subs).where(subs.c.user_id == user_id).order_by(subs.c.id))
    return [_push(r) for r in rows]


async def add_push_subscription(tx: Tx, sub: PushSubscription, now: datetime) -> None:
    await tx.execute(
        insert(subs).values(
            id=sub.id,
            user_id=sub.user_id,
            device_client_id=sub.device_client_id,
            url=sub.url,
            verification_code=sub.verification_code,
            verified=sub.verified,
            expires=sub.expires,
            types=None if sub.types is None else list(sub.types),
            created_at=now,
        )
    )


async def update_push_subscription(tx: Tx, sub: PushSubscription) -> None:
    await tx.execute(
        update(subs)
        .where(subs.c.id == sub.id, subs.c.user_id == sub.user_id)
        .values(
            verified=sub.verified,
            expires=sub.expires,
            types=None if sub.types is None else list(sub.types),
        )
    )


async def delete_push_subscription(tx: Tx, user_id: int, sub_id: str) -> bool:
    stmt = delete(subs).where(subs.c.id == sub_id, subs.c.user_id == user_id)
    return await tx.rowcount(stmt) > 0


async def delete_expired_push_subscriptions(tx: Tx, user_id: int, now: datetime) -> int:
    return await tx.rowcount(delete(subs).where(subs.c.user_id == user_id, subs.c.expires < now))


async def users_with_push_subscriptions(tx: Tx, now: datetime) -> frozenset[int]:
    """The users with at least one verified, unexpired push subscription (one query, so a
    delivery need not ask about its own mailbox)."""
    stmt = select(subs.c.user_id).where(subs.c.verified.is_(True), subs.c.expires >= now).distinct()
    return frozenset(int(r["user_id"]) for r in await tx.all(stmt))
