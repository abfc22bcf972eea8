"""What JMAP's Email methods read: email records with their labels, and Email/query as SQL.

Keywords (domain/keywords.py): ``$seen`` (``is_read``), ``$flagged`` (``is_starred``) and
``$draft`` (``is_draft``) are columns; every other one is a row of ``email_keywords``, the
table IMAP writes too (its changes are logged by triggers, migration 0011_imap).

An email with ``$deleted`` (IMAP's ``\\Deleted``) is not visible over JMAP (RFC 8621 §4.1.1):
every read here leaves it out (:data:`VISIBLE`), and :func:`hidden_counts` says what it
takes off the Mailbox counts. IMAP sees it until EXPUNGE.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)

from mailroom.domain.search import TextTerm
from mailroom.store import jmap_headers
from mailroom.store._prepared import chunks
from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import email_keywords, email_labels, emails, labels, thread_labels, threads
from mailroom.store.mailbox_search import _fulltext_ids, fts5_expression, pg_expression
from mailroom.store.outbound_schema import outbound_queue, outbound_recipients
from mailroom.store.schema import users

KEYWORD_COLUMNS = {"$seen": emails.c.is_read, "$flagged": emails.c.is_starred, "$draft": emails.c.is_draft}
#: The keyword that hides an email from JMAP (IMAP's ``\\Deleted``).
HIDING_KEYWORD = "$deleted"
#: The condition every JMAP read of ``emails`` shares: not hidden (one primary-key probe).
VISIBLE = ~exists().where(
    email_keywords.c.email_id == emails.c.id, email_keywords.c.keyword == HIDING_KEYWORD
)


@dataclass(frozen=True, slots=True)
class EmailRecord:
    """One email as JMAP's Email/get reads it from the database (the rest is in its blob)."""

    id: int
    thread_id: int
    blob_sha: str
    trace: str | None
    size: int
    received_at: datetime
    date: datetime | None
    subject: str
    from_: tuple[dict[str, str], ...]
    to: tuple[dict[str, str], ...]
    cc: tuple[dict[str, str], ...]
    bcc: tuple[dict[str, str], ...]
    reply_to: tuple[dict[str, str], ...]
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    snippet: str
    has_attachments: bool
    is_read: bool
    is_starred: bool
    is_draft: bool
    label_ids: tuple[int, ...]
    #: Its keywords beyond the three columns (``email_keywords``), lower case, sorted.
    keywords: tuple[str, ...] = ()


_LIGHT = (
    emails.c.id,
    emails.c.thread_id,
    emails.c.blob_sha,
    emails.c.trace,
    emails.c.size,
    emails.c.received_at,
    emails.c.subject,
    emails.c.from_addrs,
    emails.c.message_id,
    emails.c.snippet,
    emails.c.has_attachments,
    emails.c.is_read,
    emails.c.is_starred,
    emails.c.is_draft,
)
_FULL = (
    *_LIGHT,
    emails.c.date,
    emails.c.to_addrs,
    emails.c.cc_addrs,
    emails.c.bcc_addrs,
    emails.c.reply_to_addrs,
    emails.c.in_reply_to,
    emails.c.references,
)


def _addresses(value: Any) -> tuple[dict[str, str], ...]:
    return tuple(value or ())


#: Prepared per number of ids (a page is usually 50): on SQLite a prepared query runs on the
#: driver without SQLAlchemy's per-call statement building, about half of this read's cost.
_RECORDS_CHUNK = 100
_RECORDS: dict[tuple[int, bool, str], Query] = {}


def _joined(dialect: str, column: Any, separator: str) -> Any:
    """The values of ``column`` over a subquery's rows as one string (NULL: none)."""
    if dialect == "postgresql":
        return func.string_agg(cast(column, String), separator)
    return func.group_concat(column, separator)


def _records_query(n: int, full: bool, dialect: str) -> Query:
    """The records of ``n`` emails with their labels and stored keywords in one statement
    (one round trip; labels joined by ``,``, keywords by a space, which no keyword holds)."""
    query = _RECORDS.get((n, full, dialect))
    if query is None:
        ids: list[Any] = [bindparam(f"i{k}") for k in range(n)]
        labels_of = (
            select(_joined(dialect, email_labels.c.label_id, ","))
            .where(email_labels.c.email_id == emails.c.id)
            .scalar_subquery()
        )
        keywords_of = (
            select(_joined(dialect, email_keywords.c.keyword, " "))
            .where(email_keywords.c.email_id == emails.c.id)
            .scalar_subquery()
        )
        stmt = select(
            *(_FULL if full else _LIGHT), labels_of.label("label_ids"), keywords_of.label("keywords")
        ).where(emails.c.id.in_(ids), emails.c.user_id + 0 == bindparam("user_id"), VISIBLE)
        query = _RECORDS[(n, full, dialect)] = Query(stmt)
    return query


async def records(tx: Tx, user_id: int, email_ids: Sequence[int], *, full: bool = True) -> list[EmailRecord]:
    """The account's emails among ``email_ids`` (others', missing and hidden ones left out).

    Without ``full`` the columns a mail list shows only: ``date``, ``to``, ``cc``, ``bcc``,
    ``reply_to``, ``in_reply_to`` and ``references`` are left empty (JSON columns cost a
    parse each per row)."""
    out: list[EmailRecord] = []
    light = len(_LIGHT)
    for chunk in chunks(sorted(set(email_ids)), _RECORDS_CHUNK):
        params = {f"i{k}": v for k, v in enumerate(chunk)}
        params["user_id"] = user_id
        rows: list[Any] = await tx.tuples(_records_query(len(chunk), full, tx.dialect), params)
        for r in rows:
            extra = r[light:-2] if full else (None, (), (), (), (), (), ())
            labels_text, keywords_text = r[-2], r[-1]
            out.append(
                EmailRecord(
                    id=int(r[0]),
                    thread_id=int(r[1]),
                    blob_sha=str(r[2]),
                    trace=r[3],
                    size=int(r[4]),
                    received_at=r[5],
                    subject=str(r[6] or ""),
                    from_=_addresses(r[7]),
                    message_id=r[8],
                    snippet=str(r[9] or ""),
                    has_attachments=bool(r[10]),
                    is_read=bool(r[11]),
                    is_starred=bool(r[12]),
                    is_draft=bool(r[13]),
                    date=extra[0],
                    to=_addresses(extra[1]),
                    cc=_addresses(extra[2]),
                    bcc=_addresses(extra[3]),
                    reply_to=_addresses(extra[4]),
                    in_reply_to=tuple(extra[5] or ()),
                    references=tuple(extra[6] or ()),
                    label_ids=tuple(sorted(map(int, labels_text.split(",")))) if labels_text else (),
                    keywords=tuple(sorted(keywords_text.split(" "))) if keywords_text else (),
                )
            )
    return out


# -- Email/query -------------------------------------------------------------------------

TextField = Literal["text", "from", "to", "cc", "bcc", "subject", "body"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One FilterCondition of RFC 8621 §4.4.1 (every given field must hold); mailboxes are
    label ids, keywords as the client wrote them. ``email_ids``: only these emails."""

    in_mailbox: int | None = None
    in_mailbox_other_than: tuple[int, ...] | None = None
    before: datetime | None = None
    after: datetime | None = None
    min_size: int | None = None
    max_size: int | None = None
    all_in_thread_have_keyword: str | None = None
    some_in_thread_have_keyword: str | None = None
    none_in_thread_have_keyword: str | None = None
    has_keyword: str | None = None
    not_keyword: str | None = None
    has_attachment: bool | None = None
    text: tuple[tuple[TextField, str], ...] = ()
    email_ids: tuple[int, ...] | None = None
    #: ``header`` conditions: ``(field name in lower case, text case-folded or None)``, each
    #: present (containing the text) in the message (store/jmap_headers.py: read first).
    headers: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Operator:
    operator: Literal["AND", "OR", "NOT"]
    conditions: tuple[Condition | Operator, ...]


Filter = Condition | Operator


@dataclass(frozen=True, slots=True)
class Sort:
    """A comparator: ``receivedAt``, ``sentAt``, ``size``, ``subject``, ``from``, ``to``,
    ``hasKeyword`` (with ``keyword``)."""

    property: str
    ascending: bool = False
    keyword: str | None = None


_INDEX_FIELD = {"text": "any", "body": "any", "subject": "subject", "from": "from", "to": "to", "cc": "cc"}
_ADDRESS = {
    "from": emails.c.from_addrs,
    "to": emails.c.to_addrs,
    "cc": emails.c.cc_addrs,
    "bcc": emails.c.bcc_addrs,
}


def _stored(email_id: Any, keyword: str) -> ColumnElement[bool]:
    """Whether the email ``email_id`` (a column) has ``keyword``, one of ``email_keywords``."""
    return exists().where(email_keywords.c.email_id == email_id, email_keywords.c.keyword == keyword)


def _keyword(keyword: str) -> ColumnElement[bool]:
    column = KEYWORD_COLUMNS.get(keyword.lower())
    return column.is_(True) if column is not None else _stored(emails.c.id, keyword.lower())


def _thread_keyword(keyword: str, mode: Literal["all", "some", "none"]) -> ColumnElement[bool]:
    """Over the email's whole thread, from the thread's counts where there is one."""
    key = keyword.lower()
    thread = threads.c
    same = thread.id == emails.c.thread_id
    if key == "$seen":
        counted = {"all": thread.n_unread == 0, "some": thread.n_unread < thread.n_emails}
        counted["none"] = thread.n_unread == thread.n_emails
    elif key == "$flagged":
        counted = {"all": thread.n_starred == thread.n_emails, "some": thread.n_starred > 0}
        counted["none"] = thread.n_starred == 0
    elif key == "$draft":
        other = emails.alias("other")
        some = exists().where(other.c.thread_id == emails.c.thread_id, other.c.is_draft.is_(True))
        lacking = exists().where(other.c.thread_id == emails.c.thread_id, other.c.is_draft.is_(False))
        return {"all": not_(lacking), "some": some, "none": not_(some)}[mode]
    else:
        other = emails.alias("other")
        some = exists().where(other.c.thread_id == emails.c.thread_id, _stored(other.c.id, key))
        lacking = exists().where(other.c.thread_id == emails.c.thread_id, not_(_stored(other.c.id, key)))
        return {"all": not_(lacking), "some": some, "none": not_(some)}[mode]
    return exists().where(same, counted[mode])


_HAS_WORD = re.compile(r"\w", re.UNICODE)


def _like(value: str) -> str:
    return "%" + value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _text(tx: Tx, user_id: int, field: TextField, value: str) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if field in _ADDRESS:
        conditions.append(func.lower(cast(_ADDRESS[field], String)).like(_like(value), escape="\\"))
    if field != "bcc" and _HAS_WORD.search(value):
        term = TextTerm(value, _INDEX_FIELD[field])  # type: ignore[arg-type]
        expression = (pg_expression if tx.dialect == "postgresql" else fts5_expression)(user_id, [term])
        conditions.append(emails.c.id.in_(_fulltext_ids(tx.dialect, user_id, expression, None)))
    return and_(*conditions) if conditions else true()


def _condition(tx: Tx, user_id: int, c: Condition) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if c.in_mailbox is not None:
        parts.append(
            exists().where(email_labels.c.email_id == emails.c.id, email_labels.c.label_id == c.in_mailbox)
        )
    if c.in_mailbox_other_than is not None:
        parts.append(
            exists().where(
                email_labels.c.email_id == emails.c.id,
                email_labels.c.label_id.not_in(list(c.in_mailbox_other_than)),
            )
        )
    if c.before is not None:
        parts.append(emails.c.received_at < c.before)
    if c.after is not None:
        parts.append(emails.c.received_at >= c.after)
    if c.min_size is not None:
        parts.append(emails.c.size >= c.min_size)
    if c.max_size is not None:
        parts.append(emails.c.size < c.max_size)
    if c.all_in_thread_have_keyword is not None:
        parts.append(_thread_keyword(c.all_in_thread_have_keyword, "all"))
    if c.some_in_thread_have_keyword is not None:
        parts.append(_thread_keyword(c.some_in_thread_have_keyword, "some"))
    if c.none_in_thread_have_keyword is not None:
        parts.append(_thread_keyword(c.none_in_thread_have_keyword, "none"))
    if c.has_keyword is not None:
        parts.append(_keyword(c.has_keyword))
    if c.not_keyword is not None:
        parts.append(not_(_keyword(c.not_keyword)))
    if c.has_attachment is not None:
        parts.append(emails.c.has_attachments.is_(c.has_attachment))
    for field, value in c.text:
        parts.append(_text(tx, user_id, field, value))
    for name, contained in c.headers:
        parts.append(jmap_headers.has_field(name, contained))
    if c.email_ids is not None:
        # Inline numbers: a list of any length, never SQLite's limit of bound parameters.
        parts.append(
            emails.c.id.in_(
                bindparam("email_ids", list(c.email_ids), expanding=True, literal_execute=True, unique=True)
            )
        )
    return and_(true(), *parts)


def _filter(tx: Tx, user_id: int, f: Filter) -> ColumnElement[bool]:
    if isinstance(f, Condition):
        return _condition(tx, user_id, f)
    inner = [_filter(tx, user_id, c) for c in f.conditions]
    if f.operator == "AND":
        return and_(true(), *inner)
    if f.operator == "OR":
        return or_(false(), *inner)
    return not_(or_(false(), *inner))


def _order(sort: Sort) -> list[Any]:
    column: Any
    if sort.property == "receivedAt":
        column = emails.c.received_at
    elif sort.property == "sentAt":
        column = func.coalesce(emails.c.date, emails.c.received_at)
    elif sort.property == "size":
        column = emails.c.size
    elif sort.property == "subject":
        column = func.lower(emails.c.subject)
    elif sort.property in ("from", "to"):
        column = func.lower(cast(_ADDRESS[sort.property], String))
    elif sort.property == "hasKeyword":
        column = _keyword(sort.keyword or "")
    else:  # the caller checks the names
        raise ValueError(sort.property)
    return [column.asc() if sort.ascending else column.desc()]


def _received(ascending: bool, in_label: bool) -> Query:
    """A page of the account's emails by ``receivedAt`` (all, or those in a label), prepared:
    the same statement :func:`query` builds for it, without building it per call."""
    stmt = select(emails.c.id, emails.c.thread_id).where(emails.c.user_id == bindparam("user_id"), VISIBLE)
    if in_label:
        stmt = stmt.where(
            exists().where(
                email_labels.c.email_id == emails.c.id, email_labels.c.label_id == bindparam("label_id")
            )
        )
    received = emails.c.received_at.asc() if ascending else emails.c.received_at.desc()
    stmt = stmt.order_by(received, emails.c.id.desc())
    return Query(stmt.limit(bindparam("limit")).offset(bindparam("offset")))


#: ``(ascending, in a label)`` → the prepared page (a mail list: a mailbox, newest first).
_RECEIVED = {(up, labelled): _received(up, labelled) for up in (False, True) for labelled in (False, True)}


async def query(
    tx: Tx,
    user_id: int,
    where: Filter | None,
    sort: Sequence[Sort],
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[tuple[int, int]]:
    """``(email id, thread id)`` of the matching emails of the account in ``sort`` order
    (ties: newest id first, so the order is total and stable), from ``offset``, at most
    ``limit``. Sorted by ``receivedAt`` the account's index is walked newest first and the
    walk stops after the page (the filter is checked per row on the way)."""
    if (
        limit is not None
        and len(sort) == 1
        and sort[0].property == "receivedAt"
        and (where is None or where == Condition(in_mailbox=getattr(where, "in_mailbox", None)))
    ):
        # A mailbox's (or the account's) page by date, what clients ask most: prepared.
        label = where.in_mailbox if where is not None else None
        params = {"user_id": user_id, "label_id": label, "limit": limit, "offset": offset}
        return [
            (int(e), int(t))
            for e, t in await tx.tuples(_RECEIVED[sort[0].ascending, label is not None], params)
        ]
    condition = _filter(tx, user_id, where) if where is not None else true()
    order: list[Any] = [o for s in sort for o in _order(s)]
    stmt = (
        select(emails.c.id, emails.c.thread_id)
        .where(emails.c.user_id == user_id, condition, VISIBLE)
        .order_by(*order, emails.c.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    rows: list[Any] = list(await tx.execute(stmt))
    return [(int(row[0]), int(row[1])) for row in rows]


async def count(tx: Tx, user_id: int, where: Filter | None, *, threads: bool) -> int:
    """How many emails (or threads, with ``threads``) of the account match."""
    condition = _filter(tx, user_id, where) if where is not None else true()
    counted = func.count(emails.c.thread_id.distinct()) if threads else func.count()
    return int(await tx.scalar(select(counted).where(emails.c.user_id == user_id, condition, VISIBLE)) or 0)


async def label_totals(tx: Tx, user_id: int, label_id: int) -> tuple[int, int] | None:
    """``(emails, threads)`` in label ``label_id`` of the account, from its kept counts
    (less its hidden emails)."""
    row = await tx.first(
        select(labels.c.emails_total, labels.c.threads_total).where(
            labels.c.id == label_id, labels.c.user_id == user_id
        )
    )
    if row is None:
        return None
    hidden = (await hidden_counts(tx, user_id)).get(label_id, NOTHING_HIDDEN)
    return (int(row["emails_total"]) - hidden.emails, int(row["threads_total"]) - hidden.threads)


@dataclass(frozen=True, slots=True)
class HiddenCounts:
    """What an account's hidden emails take off a label's counts."""

    emails: int = 0
    unread_emails: int = 0
    threads: int = 0  # threads of the label with no visible email left in it
    unread_threads: int = 0  # unread threads of the label with no visible unread email


NOTHING_HIDDEN = HiddenCounts()


_HIDDEN = Query(
    select(email_labels.c.label_id, emails.c.thread_id, emails.c.is_read)
    .select_from(
        email_keywords.join(emails, emails.c.id == email_keywords.c.email_id).join(
            email_labels, email_labels.c.email_id == emails.c.id
        )
    )
    .where(email_keywords.c.keyword == HIDING_KEYWORD, emails.c.user_id == bindparam("user_id"))
)


async def hidden_counts(tx: Tx, user_id: int) -> dict[int, HiddenCounts]:
    """``{label id: counts}`` of the labels holding hidden emails of the account.

    The labels' counts are kept on write over every email (IMAP shows them); a hidden email
    is rare and short-lived (until EXPUNGE), so JMAP takes them off on read: one range of
    ``ix_email_keywords_keyword``, then the ``thread_labels`` rows of their threads."""
    rows = await tx.tuples(_HIDDEN, {"user_id": user_id})
    if not rows:
        return {}
    per_label: dict[int, list[int]] = {}
    per_thread: dict[tuple[int, int], list[int]] = {}
    for label_id, thread_id, is_read in rows:
        counts = per_label.setdefault(int(label_id), [0, 0])
        pair = per_thread.setdefault((int(label_id), int(thread_id)), [0, 0])
        counts[0] += 1
        pair[0] += 1
        if not is_read:
            counts[1] += 1
            pair[1] += 1
    thread_ids = sorted({t for _, t in per_thread})
    gone: dict[int, list[int]] = {}
    for chunk in chunks(thread_ids, 500):
        tl = thread_labels.c
        found = await tx.all(
            select(tl.label_id, tl.thread_id, tl.n_emails, tl.n_unread).where(tl.thread_id.in_(chunk))
        )
        for row in found:
            key = (int(row["label_id"]), int(row["thread_id"]))
            hidden = per_thread.get(key)
            if hidden is None:
                continue
            out = gone.setdefault(key[0], [0, 0])
            if int(row["n_emails"]) <= hidden[0]:
                out[0] += 1
            if 0 < int(row["n_unread"]) <= hidden[1]:
                out[1] += 1
    return {
        label_id: HiddenCounts(c[0], c[1], *gone.get(label_id, [0, 0])) for label_id, c in per_label.items()
    }


async def hidden_among(tx: Tx, user_id: int, email_ids: Sequence[int]) -> set[int]:
    """Which of ``email_ids`` are hidden (``$deleted``) now."""
    found: set[int] = set()
    for chunk in chunks(sorted(set(email_ids)), 500):
        found.update(
            int(e)
            for e in await tx.scalars(
                select(email_keywords.c.email_id).where(
                    email_keywords.c.email_id.in_(chunk), email_keywords.c.keyword == HIDING_KEYWORD
                )
            )
        )
    return found


async def owner_address(tx: Tx, user_id: int) -> str:
    """The account's own address."""
    return str(await tx.scalar(select(users.c.email).where(users.c.id == user_id)))


async def set_draft(tx: Tx, user_id: int, email_ids: Sequence[int], is_draft: bool) -> None:
    """Set or clear the ``$draft`` keyword (JMAP clients clear it once a draft is sent)."""
    await tx.execute(
        update(emails)
        .where(emails.c.id.in_(list(email_ids)), emails.c.user_id == user_id)
        .values(is_draft=is_draft)
    )


# -- EmailSubmission ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    address: str
    status: str  # queued | delivered | failed (store/outbound.py)
    code: int | None
    reply: str | None


@dataclass(frozen=True, slots=True)
class Submission:
    """A message the account sent (an ``outbound_queue`` entry) and its recipients."""

    id: int
    email_id: int | None
    thread_id: int | None
    mail_from: str
    created_at: datetime
    recipients: tuple[RecipientStatus, ...]
    #: A delayed send's time (store/outbound.py), else None.
    hold_until: datetime | None = None


async def submissions(tx: Tx, user_id: int, ids: Sequence[int] | None = None) -> list[Submission]:
    """The account's submissions (all, or those of ``ids``), oldest first."""
    q = outbound_queue.c
    stmt = (
        select(q.id, q.email_id, q.mail_from, q.created_at, q.hold_until, emails.c.thread_id)
        .select_from(outbound_queue.outerjoin(emails, emails.c.id == q.email_id))
        .where(q.user_id == user_id)
        .order_by(q.id)
    )
    if ids is not None:
        stmt = stmt.where(q.id.in_(list(ids)))
    rows = await tx.all(stmt)
    if not rows:
        return []
    r = outbound_recipients.c
    recipients = await tx.all(
        select(r.queue_id, r.address, r.status, r.last_code, r.last_reply)
        .where(r.queue_id.in_([row["id"] for row in rows]))
        .order_by(r.id)
    )
    by_queue: dict[int, list[RecipientStatus]] = {}
    for rec in recipients:
        by_queue.setdefault(int(rec["queue_id"]), []).append(
            RecipientStatus(str(rec["address"]), str(rec["status"]), rec["last_code"], rec["last_reply"])
        )
    return [
        Submission(
            id=int(row["id"]),
            email_id=row["email_id"],
            thread_id=row["thread_id"],
            mail_from=str(row["mail_from"]),
            created_at=row["created_at"],
            recipients=tuple(by_queue.get(int(row["id"]), [])),
            hold_until=row["hold_until"],
        )
        for row in rows
    ]
