"""What the IMAP server reads of a mailbox: a label's messages with their UIDs, flags and
MODSEQs, the UIDs emails got in a label, label sizes, and the draft flag.

A mailbox is a label (store/changelog.py keeps its UIDVALIDITY, UIDNEXT and each email's
UID and MODSEQ there). Every read is one range of ``email_labels`` by ``(label_id, uid)``
joined to ``emails`` by primary key.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement

from mailroom.store import changelog
from mailroom.store.engine import Query, Tx
from mailroom.store.imap_schema import imap_recent, imap_subscriptions, keyword_names, label_subscriptions
from mailroom.store.mail_schema import email_keywords, email_labels, emails, labels
from mailroom.store.upsert import insert_ignore, upsert

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


class _EpochSeconds(ColumnElement[int]):
    """A timestamp column as whole Unix seconds, computed by the database: 10,000 arrival
    times of a SELECT are not each parsed into a ``datetime`` and back."""

    type = BigInteger()
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column


@compiles(_EpochSeconds, "sqlite")
def _epoch_sqlite(element: _EpochSeconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.column, **kw)}) AS INTEGER)"


@compiles(_EpochSeconds, "postgresql")
def _epoch_postgresql(element: _EpochSeconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.column, **kw)}) AS BIGINT)"


# Every column comes back as the driver's integer (flags as one bit set, arrival as seconds):
# no per-value converter, so the driver's tuples are used as they are.
_COLUMNS = (
    email_labels.c.uid,
    email_labels.c.email_id,
    email_labels.c.modseq,
    emails.c.thread_id,
    (
        cast(emails.c.is_read, Integer) * SEEN
        + cast(emails.c.is_starred, Integer) * FLAGGED
        + cast(emails.c.is_draft, Integer) * DRAFT
    ).label("flags"),
    emails.c.size,
    _EpochSeconds(emails.c.received_at).label("received"),
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
    uid, email_id, modseq, thread_id, flags, size, received = zip(*rows, strict=True)
    return MailboxColumns(
        uids=list(uid),
        email_ids=list(email_id),
        thread_ids=list(thread_id),
        modseqs=list(modseq),
        flags=list(flags),
        sizes=list(size),
        received=list(received),
    )


@dataclass(frozen=True, slots=True)
class LabelView:
    """A whole label as IMAP's SELECT reads it: its messages and their keywords."""

    columns: MailboxColumns
    keywords: list[tuple[int, str]]


#: Whole-label views kept per database, by ``(user id, label id)``, with the account state
#: (UIDVALIDITY, MODSEQ) they were read at: every change to a label's messages, their flags
#: or keywords takes the account's next MODSEQ (store/changelog.py), so a view read at the
#: MODSEQ the caller just read is the label as it stands. A client reconnecting to an
#: unchanged 10,000-message INBOX gets it without the 10,000-row join (Dovecot keeps its
#: index files for the same reason). Per process, bounded, oldest first out.
_VIEWS: weakref.WeakKeyDictionary[object, OrderedDict[tuple[int, int], tuple[tuple[int, int], LabelView]]] = (
    weakref.WeakKeyDictionary()
)
MAX_CACHED_VIEWS = 32


async def label_view(
    tx: Tx, user_id: int, label_id: int, *, state: tuple[int, int], cache: object
) -> LabelView:
    """The whole label: :func:`messages` and :func:`keywords`, from the per-process cache
    when it holds the label at ``state`` (``(UIDVALIDITY, account MODSEQ)`` read in this
    transaction before), else read and kept. ``cache`` is the database the views belong to.
    The lists are shared: callers must not change them."""
    views = _VIEWS.get(cache)
    if views is None:
        views = _VIEWS[cache] = OrderedDict()
    key = (user_id, label_id)
    held = views.get(key)
    if held is not None and held[0] == state:
        views.move_to_end(key)
        return held[1]
    view = LabelView(await messages(tx, user_id, label_id), await keywords(tx, label_id))
    views[key] = (state, view)
    views.move_to_end(key)
    while len(views) > MAX_CACHED_VIEWS:
        views.popitem(last=False)
    return view


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


async def flag_counts(tx: Tx, user_id: int, label_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """``{label id: (recent, deleted)}`` for STATUS: how many of the label's messages no session
    has been told of yet (IMAP4rev1's \\Recent, UIDs from ``imap_recent.first_uid`` on) and
    how many carry ``\\Deleted`` (RFC 9051 STATUS DELETED). Labels of other users count 0."""
    ids = sorted(set(label_ids))
    if not ids:
        return {}
    owned = select(labels.c.id).where(labels.c.user_id == user_id, labels.c.id.in_(ids))
    first = func.coalesce(
        select(imap_recent.c.first_uid)
        .where(imap_recent.c.label_id == email_labels.c.label_id)
        .scalar_subquery(),
        1,
    )
    recent_rows = await tx.all(
        select(email_labels.c.label_id, func.count().label("n"))
        .where(email_labels.c.label_id.in_(owned), email_labels.c.uid >= first)
        .group_by(email_labels.c.label_id)
    )
    deleted_rows = await tx.all(
        select(email_labels.c.label_id, func.count().label("n"))
        .select_from(email_labels.join(email_keywords, email_keywords.c.email_id == email_labels.c.email_id))
        .where(email_labels.c.label_id.in_(owned), email_keywords.c.keyword == "$deleted")
        .group_by(email_labels.c.label_id)
    )
    recent = {int(r["label_id"]): int(r["n"]) for r in recent_rows}
    deleted = {int(r["label_id"]): int(r["n"]) for r in deleted_rows}
    return {label_id: (recent.get(label_id, 0), deleted.get(label_id, 0)) for label_id in ids}


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
    names subscribed explicitly (labels by their current name, and names with no label), and
    the labels unsubscribed."""

    subscribed: frozenset[str]
    unsubscribed: frozenset[str]


async def subscriptions(tx: Tx, user_id: int) -> Subscriptions:
    rows = await tx.all(
        select(imap_subscriptions.c.name).where(
            imap_subscriptions.c.user_id == user_id, imap_subscriptions.c.subscribed.is_(True)
        )
    )
    chosen = await tx.all(
        select(labels.c.name, label_subscriptions.c.subscribed)
        .select_from(label_subscriptions.join(labels, labels.c.id == label_subscriptions.c.label_id))
        .where(label_subscriptions.c.user_id == user_id)
    )
    return Subscriptions(
        subscribed=frozenset(str(r["name"]) for r in [*rows, *(c for c in chosen if c["subscribed"])]),
        unsubscribed=frozenset(str(c["name"]) for c in chosen if not c["subscribed"]),
    )


async def unsubscribed_label_ids(tx: Tx, user_id: int) -> frozenset[int]:
    """The user's labels they unsubscribed from (JMAP ``isSubscribed: false``)."""
    found = await tx.scalars(
        select(label_subscriptions.c.label_id).where(
            label_subscriptions.c.user_id == user_id, label_subscriptions.c.subscribed.is_(False)
        )
    )
    return frozenset(int(i) for i in found)


async def set_label_subscribed(tx: Tx, user_id: int, label_id: int, subscribed: bool) -> bool:
    """Subscribe to (or unsubscribe from) the user's label ``label_id`` (the caller checked it
    is theirs), explicitly; a change of whether it is subscribed is logged as an update of
    the label (Mailbox/changes, push). Whether it changed."""
    where = label_subscriptions.c.label_id == label_id
    before = await tx.scalar(select(label_subscriptions.c.subscribed).where(where))
    # A subscription to this name from before the label was made: the label's row says it now.
    name = select(labels.c.name).where(labels.c.id == label_id).scalar_subquery()
    names = imap_subscriptions.c
    await tx.execute(delete(imap_subscriptions).where(names.user_id == user_id, names.name == name))
    values = {"user_id": user_id, "subscribed": subscribed}
    await upsert(tx, label_subscriptions, {"label_id": label_id, **values}, ["label_id"], values)
    changed = (before is None or bool(before)) != subscribed
    if changed:
        await changelog.log_label_updated(tx, user_id, label_id)
    return changed


async def set_subscribed(tx: Tx, user_id: int, name: str, subscribed: bool) -> bool:
    """Record the choice for ``name``: by label id when a label has that name, else as a
    name; False (nothing stored) when the user already has :data:`MAX_SUBSCRIPTION_ROWS`
    names and this name is not one of them."""
    where = (imap_subscriptions.c.user_id == user_id) & (imap_subscriptions.c.name == name)
    label_id = await tx.scalar(select(labels.c.id).where(labels.c.user_id == user_id, labels.c.name == name))
    if label_id is not None:
        await set_label_subscribed(tx, user_id, int(label_id), subscribed)
        return True
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
    """Back to the default for ``name``, a name with no label."""
    await tx.execute(
        delete(imap_subscriptions).where(
            (imap_subscriptions.c.user_id == user_id) & (imap_subscriptions.c.name == name)
        )
    )


# -- \\Recent (store/imap_schema.py) -------------------------------------------------------------


async def first_recent(tx: Tx, label_id: int) -> int:
    """The first UID of the label no session has been told of (1 when none has)."""
    found = await tx.scalar(select(imap_recent.c.first_uid).where(imap_recent.c.label_id == label_id))
    return int(found) if found is not None else 1


async def claim_recent(tx: Tx, label_id: int, below: int) -> int:
    """Tell the caller's session of every UID below ``below``: the mark before (UIDs from it
    up to ``below`` - 1 are recent in that session alone). In a write transaction: the row is
    locked (PostgreSQL) or the writer is alone (SQLite), so two sessions never both get one."""
    await insert_ignore(tx, imap_recent, {"label_id": label_id, "first_uid": 1}, ("label_id",))
    found = await tx.scalar(
        select(imap_recent.c.first_uid).where(imap_recent.c.label_id == label_id).with_for_update()
    )
    before = int(found) if found is not None else 1
    if below > before:
        await tx.execute(
            update(imap_recent).where(imap_recent.c.label_id == label_id).values(first_uid=below)
        )
    return before


# -- THREAD=REFERENCES (RFC 5256) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadingFields:
    """An email's Message-ID, In-Reply-To and References as ingest parsed them (ids without
    angle brackets, in header order)."""

    message_id: str | None
    in_reply_to: list[str]
    references: list[str]


async def threading_fields(tx: Tx, user_id: int, email_ids: Sequence[int]) -> dict[int, ThreadingFields]:
    rows = await tx.all(
        select(emails.c.id, emails.c.message_id, emails.c.in_reply_to, emails.c.references).where(
            emails.c.user_id == user_id, emails.c.id.in_(list(email_ids))
        )
    )
    return {
        int(r["id"]): ThreadingFields(
            message_id=r["message_id"],
            in_reply_to=[str(i) for i in r["in_reply_to"] or ()],
            references=[str(i) for i in r["references"] or ()],
        )
        for r in rows
    }


#: The most keyword spellings an account keeps (``keyword_names``); more are shown lower case.
MAX_KEYWORD_NAMES = 1000


async def keyword_spellings(tx: Tx, user_id: int) -> dict[str, str]:
    """``{keyword as stored: as first written}`` of the account's mixed-case keywords."""
    rows = await tx.all(
        select(keyword_names.c.keyword, keyword_names.c.shown).where(keyword_names.c.user_id == user_id)
    )
    return {str(r["keyword"]): str(r["shown"]) for r in rows}


async def keep_spellings(tx: Tx, user_id: int, shown: Collection[str]) -> None:
    """Remember the case of keywords not yet known (the first spelling stays)."""
    wanted = {k.lower(): k for k in sorted(shown) if k != k.lower()}
    if not wanted:
        return
    known = await keyword_spellings(tx, user_id)
    room = MAX_KEYWORD_NAMES - len(known)
    for keyword, spelled in sorted(wanted.items()):
        if keyword in known or room <= 0:
            continue
        values = {"user_id": user_id, "keyword": keyword, "shown": spelled}
        await insert_ignore(tx, keyword_names, values, ("user_id", "keyword"))
        room -= 1
