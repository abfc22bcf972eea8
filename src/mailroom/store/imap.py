"""What the IMAP server reads of a mailbox: a label's messages with their UIDs, flags and
MODSEQs, the UIDs emails got in a label, label sizes, and the draft flag.

A mailbox is a label (store/changelog.py keeps its UIDVALIDITY, UIDNEXT and each email's
UID and MODSEQ there). Every read is one range of ``email_labels`` by ``(label_id, uid)``
joined to ``emails`` by primary key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import String, bindparam, delete, func, insert, literal, select, update

from mailroom.domain.search import TextTerm
from mailroom.store.engine import Query, Tx
from mailroom.store.imap_schema import imap_subscriptions
from mailroom.store.mail_schema import email_keywords, email_labels, emails, labels
from mailroom.store.mailbox_search import address_condition, fts5_expression, fulltext_ids, pg_expression
from mailroom.store.upsert import upsert

#: Flag bits of :attr:`MailboxMessage.flags`.
SEEN, FLAGGED, DRAFT = 1, 2, 4


@dataclass(frozen=True, slots=True)
class MailboxColumns:
    """A label's emails as IMAP sees them, in UID order, as parallel lists (a 10,000-message
    mailbox is seven lists of numbers, not 10,000 objects)."""

    uids: list[int]
    email_ids: list[int]
    thread_ids: list[int]
    modseqs: list[int]
    flags: list[int]  # SEEN | FLAGGED | DRAFT
    sizes: list[int]
    received: list[int]  # arrival, Unix seconds


_COLUMNS = (
    email_labels.c.uid,
    email_labels.c.email_id,
    email_labels.c.modseq,
    emails.c.thread_id,
    emails.c.is_read,
    emails.c.is_starred,
    emails.c.is_draft,
    emails.c.size,
    emails.c.received_at,
)
_IN_LABEL = (
    select(*_COLUMNS)
    .select_from(email_labels.join(emails, emails.c.id == email_labels.c.email_id))
    .where(email_labels.c.label_id == bindparam("label_id"), emails.c.user_id == bindparam("user_id"))
    .order_by(email_labels.c.uid)
)
#: The whole label, along (label_id, uid); only those changed since a MODSEQ, along
#: (label_id, modseq): the question every IMAP command ends with, answered without reading
#: the rest of the label.
_MESSAGES = Query(_IN_LABEL)
_CHANGED = Query(_IN_LABEL.where(email_labels.c.modseq > bindparam("since")))


async def messages(tx: Tx, user_id: int, label_id: int, *, changed_since: int = 0) -> MailboxColumns:
    """The label's emails by UID (only those whose MODSEQ there is above ``changed_since``):
    one query, its tuples transposed into columns."""
    if changed_since:
        rows = await tx.tuples(_CHANGED, {"label_id": label_id, "user_id": user_id, "since": changed_since})
    else:
        rows = await tx.tuples(_MESSAGES, {"label_id": label_id, "user_id": user_id})
    if not rows:
        return MailboxColumns([], [], [], [], [], [], [])
    uid, email_id, modseq, thread_id, read, starred, draft, size, received = zip(*rows, strict=True)
    return MailboxColumns(
        uids=list(uid),
        email_ids=list(email_id),
        thread_ids=list(thread_id),
        modseqs=list(modseq),
        flags=[
            (SEEN if r else 0) | (FLAGGED if s else 0) | (DRAFT if d else 0)
            for r, s, d in zip(read, starred, draft, strict=True)
        ],
        sizes=list(size),
        received=[int(at.timestamp()) for at in received],
    )


async def uids_in(tx: Tx, label_id: int, email_ids: Sequence[int]) -> dict[int, int]:
    """``{email id: UID}`` of those of ``email_ids`` in the label."""
    if not email_ids:
        return {}
    rows = await tx.all(
        select(email_labels.c.email_id, email_labels.c.uid).where(
            email_labels.c.label_id == label_id, email_labels.c.email_id.in_(list(email_ids))
        )
    )
    return {int(r["email_id"]): int(r["uid"]) for r in rows}


async def label_sizes(tx: Tx, user_id: int) -> dict[int, int]:
    """``{label id: total bytes of its emails}`` of the account's labels that hold mail."""
    rows = await tx.all(
        select(email_labels.c.label_id, func.sum(emails.c.size).label("size"))
        .select_from(
            email_labels.join(emails, emails.c.id == email_labels.c.email_id).join(
                labels, labels.c.id == email_labels.c.label_id
            )
        )
        .where(labels.c.user_id == user_id)
        .group_by(email_labels.c.label_id)
    )
    return {int(r["label_id"]): int(r["size"] or 0) for r in rows}


async def label_numbers(tx: Tx, user_id: int) -> dict[int, tuple[int, int]]:
    """``{label id: (UIDVALIDITY, UIDNEXT)}`` of the account's labels."""
    rows = await tx.all(
        select(labels.c.id, labels.c.uidvalidity, labels.c.uidnext).where(labels.c.user_id == user_id)
    )
    return {int(r["id"]): (int(r["uidvalidity"]), int(r["uidnext"])) for r in rows}


async def set_draft(tx: Tx, user_id: int, email_ids: Collection[int], is_draft: bool) -> None:
    """Mark emails as drafts or not (IMAP's ``\\Draft``)."""
    if email_ids:
        await tx.execute(
            update(emails)
            .where(emails.c.user_id == user_id, emails.c.id.in_(sorted(email_ids)))
            .values(is_draft=is_draft)
        )


async def labels_of(tx: Tx, email_ids: Sequence[int]) -> dict[int, set[int]]:
    """``{email id: its label ids}``."""
    if not email_ids:
        return {}
    rows = await tx.all(
        select(email_labels.c.email_id, email_labels.c.label_id).where(
            email_labels.c.email_id.in_(list(email_ids))
        )
    )
    out: dict[int, set[int]] = {int(e): set() for e in email_ids}
    for r in rows:
        out[int(r["email_id"])].add(int(r["label_id"]))
    return out


async def matching_emails(tx: Tx, user_id: int, terms: Sequence[TextTerm]) -> set[int]:
    """Ids of the account's emails every one of ``terms`` matches, through the full-text index
    (addresses then checked in the named header, as the thread search does)."""
    expression = (fts5_expression if tx.dialect != "postgresql" else pg_expression)(user_id, list(terms))
    conditions = [
        (emails.c.user_id + 0) == user_id,
        emails.c.id.in_(fulltext_ids(tx.dialect, user_id, expression)),
    ]
    conditions += [address_condition(t) for t in terms if t.field in ("from", "to", "cc")]
    return {int(i) for i in await tx.scalars(select(emails.c.id).where(*conditions))}


# -- keywords ------------------------------------------------------------------------------


_KEYWORDS_IN_LABEL = (
    select(email_labels.c.uid, email_keywords.c.keyword)
    .select_from(email_labels.join(email_keywords, email_keywords.c.email_id == email_labels.c.email_id))
    .where(email_labels.c.label_id == bindparam("label_id"))
)  # no ORDER BY uid: it would lead SQLite to the (label_id, uid) index past the MODSEQ one
_KEYWORDS = Query(_KEYWORDS_IN_LABEL)
_KEYWORDS_CHANGED = Query(_KEYWORDS_IN_LABEL.where(email_labels.c.modseq > bindparam("since")))


async def keywords(tx: Tx, label_id: int, *, changed_since: int = 0) -> list[tuple[int, str]]:
    """``(UID, keyword)`` of the label's emails (those whose MODSEQ is above ``changed_since``),
    in no particular order."""
    if changed_since:
        rows = await tx.tuples(_KEYWORDS_CHANGED, {"label_id": label_id, "since": changed_since})
    else:
        rows = await tx.tuples(_KEYWORDS, {"label_id": label_id})
    return [(int(uid), str(keyword)) for uid, keyword in rows]


async def keywords_of(tx: Tx, email_ids: Sequence[int]) -> dict[int, list[str]]:
    """``{email id: its stored keywords, sorted}`` (emails without any left out)."""
    if not email_ids:
        return {}
    rows = await tx.all(
        select(email_keywords.c.email_id, email_keywords.c.keyword)
        .where(email_keywords.c.email_id.in_(sorted(set(email_ids))))
        .order_by(email_keywords.c.email_id, email_keywords.c.keyword)
    )
    out: dict[int, list[str]] = {}
    for r in rows:
        out.setdefault(int(r["email_id"]), []).append(str(r["keyword"]))
    return out


async def change_keywords(
    tx: Tx,
    email_ids: Sequence[int],
    *,
    add: Collection[str] = (),
    remove: Collection[str] = (),
    replace: Collection[str] | None = None,
) -> None:
    """Add and remove keywords of emails (the caller checked they are the user's); with
    ``replace``, the emails end with exactly those keywords. Rows that would not change are
    not touched, so an email's MODSEQ moves only when its keywords do."""
    if not email_ids:
        return
    ids = sorted(set(email_ids))
    if replace is not None:
        add, remove = set(replace), set()
        await tx.execute(
            delete(email_keywords).where(
                email_keywords.c.email_id.in_(ids), email_keywords.c.keyword.not_in(sorted(add) or [""])
            )
        )
    if remove:
        await tx.execute(
            delete(email_keywords).where(
                email_keywords.c.email_id.in_(ids), email_keywords.c.keyword.in_(sorted(remove))
            )
        )
    for keyword in sorted(add):
        present = (
            select(email_keywords.c.email_id)
            .where(email_keywords.c.email_id == emails.c.id, email_keywords.c.keyword == keyword)
            .exists()
        )
        await tx.execute(
            insert(email_keywords).from_select(
                ["email_id", "keyword"],
                select(emails.c.id, literal(keyword, String)).where(emails.c.id.in_(ids), ~present),
            )
        )


async def blobs_of(tx: Tx, user_id: int, email_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """``{email id: (blob sha, bytes of its trace lines)}`` of the user's emails among these."""
    if not email_ids:
        return {}
    rows = await tx.all(
        select(emails.c.id, emails.c.blob_sha, emails.c.trace).where(
            (emails.c.user_id + 0) == user_id, emails.c.id.in_(sorted(set(email_ids)))
        )
    )
    return {
        int(r["id"]): (str(r["blob_sha"]), len(str(r["trace"]).encode("utf-8")) if r["trace"] else 0)
        for r in rows
    }


# -- subscriptions (store/imap_schema.py) ------------------------------------------------------

#: Most subscription rows a user keeps (each is a choice against the default, or a name with
#: no mailbox): bounds what a client can make the server store and list.
MAX_SUBSCRIPTION_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """A user's choices against the default (a mailbox is subscribed unless unsubscribed):
    label or mailbox names explicitly subscribed, and those unsubscribed."""

    subscribed: frozenset[str]
    unsubscribed: frozenset[str]


async def subscriptions(tx: Tx, user_id: int) -> Subscriptions:
    rows = await tx.all(
        select(imap_subscriptions.c.name, imap_subscriptions.c.subscribed).where(
            imap_subscriptions.c.user_id == user_id
        )
    )
    return Subscriptions(
        subscribed=frozenset(str(r["name"]) for r in rows if r["subscribed"]),
        unsubscribed=frozenset(str(r["name"]) for r in rows if not r["subscribed"]),
    )


async def set_subscribed(tx: Tx, user_id: int, name: str, subscribed: bool) -> bool:
    """Record the choice for ``name``; False (nothing stored) when the user already has
    :data:`MAX_SUBSCRIPTION_ROWS` rows and this name is not one of them."""
    where = (imap_subscriptions.c.user_id == user_id) & (imap_subscriptions.c.name == name)
    if await tx.rowcount(update(imap_subscriptions).where(where).values(subscribed=subscribed)):
        return True
    count = await tx.scalar(
        select(func.count()).select_from(imap_subscriptions).where(imap_subscriptions.c.user_id == user_id)
    )
    if int(count or 0) >= MAX_SUBSCRIPTION_ROWS:
        return False
    await upsert(
        tx,
        imap_subscriptions,
        {"user_id": user_id, "name": name, "subscribed": subscribed},
        ("user_id", "name"),
        {"subscribed": subscribed},
    )
    return True


async def forget_subscription(tx: Tx, user_id: int, name: str) -> None:
    """Back to the default for ``name`` (a renamed or deleted label's old name)."""
    await tx.execute(
        delete(imap_subscriptions).where(
            (imap_subscriptions.c.user_id == user_id) & (imap_subscriptions.c.name == name)
        )
    )
