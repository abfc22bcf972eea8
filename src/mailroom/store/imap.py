"""What the IMAP server reads of a mailbox: a label's messages with their UIDs, flags and
MODSEQs, the UIDs emails got in a label, label sizes, and the draft flag.

A mailbox is a label (store/changelog.py keeps its UIDVALIDITY, UIDNEXT and each email's
UID and MODSEQ there). Every read is one range of ``email_labels`` by ``(label_id, uid)``
joined to ``emails`` by primary key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, bindparam, delete, func, insert, literal, select, update

from mailroom.domain.search import TextTerm
from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import email_keywords, email_labels, emails, labels
from mailroom.store.mailbox_search import address_condition, fts5_expression, fulltext_ids, pg_expression

#: Flag bits of :attr:`MailboxMessage.flags`.
SEEN, FLAGGED, DRAFT = 1, 2, 4


@dataclass(frozen=True, slots=True)
class MailboxMessage:
    """One email in a label, as IMAP sees it."""

    uid: int
    email_id: int
    thread_id: int
    modseq: int
    flags: int  # SEEN | FLAGGED | DRAFT
    size: int
    received_at: datetime


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
_MESSAGES = Query(
    select(*_COLUMNS)
    .select_from(email_labels.join(emails, emails.c.id == email_labels.c.email_id))
    .where(
        email_labels.c.label_id == bindparam("label_id"),
        emails.c.user_id == bindparam("user_id"),
        email_labels.c.modseq > bindparam("since"),
    )
    .order_by(email_labels.c.uid)
)


async def messages(tx: Tx, user_id: int, label_id: int, *, changed_since: int = 0) -> list[MailboxMessage]:
    """The label's emails by UID (only those whose MODSEQ there is above ``changed_since``)."""
    rows = await tx.all(_MESSAGES, {"label_id": label_id, "user_id": user_id, "since": changed_since})
    return [
        MailboxMessage(
            uid=int(r["uid"]),
            email_id=int(r["email_id"]),
            thread_id=int(r["thread_id"]),
            modseq=int(r["modseq"]),
            flags=(SEEN if r["is_read"] else 0)
            | (FLAGGED if r["is_starred"] else 0)
            | (DRAFT if r["is_draft"] else 0),
            size=int(r["size"]),
            received_at=r["received_at"],
        )
        for r in rows
    ]


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


async def keywords(tx: Tx, label_id: int, *, changed_since: int = 0) -> list[tuple[int, str]]:
    """``(UID, keyword)`` of the label's emails (those whose MODSEQ is above ``changed_since``)."""
    rows = await tx.all(
        select(email_labels.c.uid, email_keywords.c.keyword)
        .select_from(email_labels.join(email_keywords, email_keywords.c.email_id == email_labels.c.email_id))
        .where(email_labels.c.label_id == label_id, email_labels.c.modseq > changed_since)
        .order_by(email_labels.c.uid)
    )
    return [(int(r["uid"]), str(r["keyword"])) for r in rows]


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
