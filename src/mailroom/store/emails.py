"""Emails of a mailbox: insert (deduplicated), read, flag, label, delete; quota kept in step.

Every function that changes emails refreshes the threads it touched (store/threads.py), so
thread summaries, ``thread_labels`` and the labels' counts stay consistent with
``emails``/``email_labels``. Label changes on many emails do it set-based
(``refresh_labels``), a few statements for a whole batch; flag changes (read, starred) move
the counters by what changed (``move_flag_counts``) instead of recomputing them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Integer, bindparam, delete, func, insert, literal, select, update

from mailroom.store import jmap_headers
from mailroom.store import labels as label_store
from mailroom.store import threads as thread_store
from mailroom.store._prepared import chunks, run
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.mail_schema import email_labels, emails, labels, trash_origins
from mailroom.store.schema import users

#: Columns a mail client shows for an email (everything but the dedup key).
EMAIL_COLUMNS = [c for c in emails.c if c.name != "dedup"]

#: A mail address as the email's JSON columns keep it (``{"name": ..., "email": ...}``).
AddressJSON = dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredEmail:
    """One email as stored (:data:`EMAIL_COLUMNS`; the message itself is its blob) and the
    names of its labels, sorted."""

    id: int
    user_id: int
    thread_id: int
    blob_sha: str
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_addrs: list[AddressJSON]
    to_addrs: list[AddressJSON]
    cc_addrs: list[AddressJSON]
    bcc_addrs: list[AddressJSON]
    reply_to_addrs: list[AddressJSON]
    date: datetime | None
    received_at: datetime
    size: int
    snippet: str
    has_attachments: bool
    #: The attachments' descriptions as ingest stored them (JSON objects).
    attachments: list[dict[str, Any]]
    encryption: str  # none | signed | encrypted
    is_read: bool
    is_starred: bool
    is_draft: bool
    spam_score: float | None
    source: str  # smtp | lmtp | api | import | submission
    mail_from: str | None
    delivered_to: str | None
    version: int
    trace: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OwnedEmail:
    """What changing or deleting an email needs of it."""

    id: int
    thread_id: int
    size: int
    blob_sha: str
    is_read: bool
    is_starred: bool


@dataclass(frozen=True, slots=True)
class Quota:
    """A mailbox's quota and what its emails take of it, in bytes."""

    quota_bytes: int
    quota_bytes_used: int


_BY_DEDUP = Query(
    select(emails.c.id).where(emails.c.user_id == bindparam("user_id"), emails.c.dedup == bindparam("dedup"))
)
_GET = Query(
    select(*EMAIL_COLUMNS).where(emails.c.id == bindparam("id"), emails.c.user_id == bindparam("user_id"))
)
_OF_THREAD = Query(
    select(*EMAIL_COLUMNS)
    .where(emails.c.thread_id == bindparam("thread_id"), emails.c.user_id == bindparam("user_id"))
    .order_by(emails.c.received_at, emails.c.id)
)
_ADD_QUOTA = Query(
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(quota_bytes_used=users.c.quota_bytes_used + bindparam("delta"))
)


async def find_by_dedup(tx: Tx, user_id: int, dedup: str) -> int | None:
    found = await tx.scalar(_BY_DEDUP, {"user_id": user_id, "dedup": dedup})
    return int(found) if found is not None else None


_INSERT = Query(
    insert(emails)
    .values({c.name: bindparam(c.name, type_=c.type) for c in emails.c if c.name != "id"})
    .returning(emails.c.id)
)
_ADD_LABEL = Query(
    insert(email_labels).values(email_id=bindparam("email_id"), label_id=bindparam("label_id"))
)


class MessageColumns(TypedDict):
    """The columns of an email row that come from the message itself (ingest's
    ``message_columns``; a replaced draft gets them anew)."""

    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_addrs: list[AddressJSON]
    to_addrs: list[AddressJSON]
    cc_addrs: list[AddressJSON]
    bcc_addrs: list[AddressJSON]
    reply_to_addrs: list[AddressJSON]
    date: datetime | None
    snippet: str
    has_attachments: bool
    attachments: list[dict[str, Any]]
    encryption: str
    spam_score: float | None


class NewEmail(MessageColumns):
    """The columns :func:`insert_email` writes: every one but the generated id."""

    user_id: int
    thread_id: int
    blob_sha: str
    message_id: str | None
    received_at: datetime
    size: int
    is_read: bool
    is_starred: bool
    is_draft: bool
    source: str
    mail_from: str | None
    delivered_to: str | None
    dedup: str
    version: int
    trace: str | None


class DraftColumns(MessageColumns):
    """The columns :func:`replace_draft` writes: the new message's (its version grows too)."""

    message_id: str | None
    blob_sha: str
    size: int
    dedup: str


async def insert_email(tx: Tx, values: NewEmail) -> int:
    """Insert one email row (every column but ``id``); returns its id. Thread refresh is the
    caller's (store/threads.py ``refresh``)."""
    return int(await tx.scalar(_INSERT, values))


async def add_labels(tx: Tx, email_id: int, label_ids: Collection[int]) -> None:
    for label_id in sorted(set(label_ids)):
        await run(tx, _ADD_LABEL, {"email_id": email_id, "label_id": label_id})


async def add_quota_used(tx: Tx, user_id: int, delta: int) -> None:
    """Change ``quota_bytes_used`` by ``delta`` bytes (never below zero)."""
    await run(tx, _ADD_QUOTA, {"uid": user_id, "delta": delta})
    if delta < 0:
        await tx.execute(
            update(users)
            .where(users.c.id == user_id, users.c.quota_bytes_used < 0)
            .values(quota_bytes_used=0)
        )


async def recount_quota(tx: Tx, user_id: int) -> int:
    """Set ``quota_bytes_used`` from the emails themselves (repair); returns the new value."""
    used = int(
        await tx.scalar(select(func.coalesce(func.sum(emails.c.size), 0)).where(emails.c.user_id == user_id))
        or 0
    )
    await tx.execute(update(users).where(users.c.id == user_id).values(quota_bytes_used=used))
    return used


async def quota(tx: Tx, user_id: int) -> Quota | None:
    """A mailbox's quota and its use (None: no such mailbox)."""
    row = await tx.first(select(users.c.quota_bytes, users.c.quota_bytes_used).where(users.c.id == user_id))
    return Quota(int(row["quota_bytes"]), int(row["quota_bytes_used"])) if row is not None else None


# -- reading -----------------------------------------------------------------------------


async def _with_labels(tx: Tx, rows: list[Row]) -> list[StoredEmail]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    pairs = await tx.all(
        select(email_labels.c.email_id, labels.c.name)
        .select_from(email_labels.join(labels, labels.c.id == email_labels.c.label_id))
        .where(email_labels.c.email_id.in_(ids))
    )
    names: dict[int, list[str]] = {i: [] for i in ids}
    for pair in pairs:
        names[pair["email_id"]].append(pair["name"])
    return [StoredEmail(**row, labels=tuple(sorted(names[row["id"]]))) for row in rows]


async def get(tx: Tx, user_id: int, email_id: int) -> StoredEmail | None:
    """One email of ``user_id`` with its label names, or None (absent or someone else's)."""
    row = await tx.first(_GET, {"id": email_id, "user_id": user_id})
    return (await _with_labels(tx, [row]))[0] if row is not None else None


async def of_thread(tx: Tx, user_id: int, thread_id: int) -> list[StoredEmail]:
    """The emails of a thread, oldest first, with their label names."""
    return await _with_labels(tx, await tx.all(_OF_THREAD, {"thread_id": thread_id, "user_id": user_id}))


async def owned(tx: Tx, user_id: int, email_ids: Sequence[int]) -> list[OwnedEmail]:
    """Those of ``email_ids`` that ``user_id`` owns."""
    if not email_ids:
        return []
    rows = await tx.all(
        select(
            emails.c.id,
            emails.c.thread_id,
            emails.c.size,
            emails.c.blob_sha,
            emails.c.is_read,
            emails.c.is_starred,
        ).where(
            # "+ 0": by id, not by walking the mailbox's emails through an index on user_id.
            emails.c.user_id + 0 == user_id,
            emails.c.id.in_(list(email_ids)),
        )
    )
    return [OwnedEmail(**row) for row in rows]


# -- changing ----------------------------------------------------------------------------


async def _refresh_threads(tx: Tx, thread_ids: Collection[int]) -> None:
    for thread_id in sorted(set(thread_ids)):
        await thread_store.refresh(tx, thread_id)


async def set_flags(
    tx: Tx,
    user_id: int,
    email_ids: Sequence[int],
    *,
    now: datetime,
    is_read: bool | None = None,
    is_starred: bool | None = None,
    owned_rows: Sequence[OwnedEmail] | None = None,
) -> list[int]:
    """Mark emails read/unread and starred/unstarred; returns the ids owned (changed or not).

    Starring also adds the ``starred`` label (and unstarring removes it), so the label list
    and the flag agree. ``owned_rows``: :func:`owned` of these emails, when the caller read
    it in this transaction already.

    Only the emails whose flag differs are written (an unchanged flag writes nothing: no
    change-log row, an already starred email keeps its Starred row and so its IMAP UID), and
    the counters follow by what changed (:func:`threads.move_flag_counts`), not recomputed.
    """
    rows = list(owned_rows) if owned_rows is not None else await owned(tx, user_id, email_ids)
    ids = [r.id for r in rows]
    if not ids or (is_read is None and is_starred is None):
        return ids
    # Those whose flags differ as read (the UPDATE's own condition decides under concurrency).
    differ = [
        r.id
        for r in rows
        if (is_read is not None and r.is_read != is_read)
        or (is_starred is not None and r.is_starred != is_starred)
    ]
    if not differ:
        return ids
    changed = await _write_flags(tx, differ, is_read, is_starred)
    if not changed:
        return ids
    starred_id = 0
    star_on = [c.id for c in changed if c.is_starred and not c.was_starred]
    star_off = [c.id for c in changed if c.was_starred and not c.is_starred]
    if star_on or star_off:
        starred_id = (await label_store.ensure(tx, user_id, ["starred"], now))["starred"]
        for chunk in chunks(star_off):
            await tx.execute(
                delete(email_labels).where(
                    email_labels.c.email_id.in_(chunk), email_labels.c.label_id == starred_id
                )
            )
        for chunk in chunks(star_on):
            await _add_label_to(tx, chunk, starred_id)
    # Each email's labels now; a read change moves every one of them, a star change only
    # Starred's (so a \Flagged STORE reads no labels).
    labels_now: dict[int, set[int]] = {c.id: set() for c in changed}
    read_changed = [c.id for c in changed if c.is_read != c.was_read]
    if len(read_changed) == 1:
        for r in await tx.all(_LABELS_OF_ONE, {"id": read_changed[0]}):
            labels_now[int(r["email_id"])].add(int(r["label_id"]))
    for chunk in chunks(read_changed) if len(read_changed) > 1 else ():
        for r in await tx.all(
            select(email_labels.c.email_id, email_labels.c.label_id).where(email_labels.c.email_id.in_(chunk))
        ):
            labels_now[int(r["email_id"])].add(int(r["label_id"]))
    thread_deltas: thread_store.ThreadDeltas = {}
    pair_deltas: thread_store.PairDeltas = {}
    for c in changed:
        now_labels = labels_now[c.id]
        if c.is_starred != c.was_starred:
            now_labels.add(starred_id)  # considered whether or not it is there now
        unread_was, unread_now = int(not c.was_read), int(not c.is_read)
        d_unread, d_starred = thread_deltas.get(c.thread_id, (0, 0))
        thread_deltas[c.thread_id] = (
            d_unread + unread_now - unread_was,
            d_starred + int(c.is_starred) - int(c.was_starred),
        )
        for label_id in now_labels:
            was_in = is_in = True
            if label_id == starred_id and starred_id:
                was_in, is_in = c.was_starred, c.is_starred
            d_emails = int(is_in) - int(was_in)
            d_label_unread = unread_now * int(is_in) - unread_was * int(was_in)
            old = pair_deltas.get((c.thread_id, label_id), (0, 0))
            pair_deltas[(c.thread_id, label_id)] = (old[0] + d_emails, old[1] + d_label_unread)
    await thread_store.move_flag_counts(tx, thread_deltas, pair_deltas)
    return ids


def _set_one(column: Any) -> Query:
    """``UPDATE`` one email's flag ``column`` when it differs, returning the row after."""
    return Query(
        update(emails)
        .where(emails.c.id == bindparam("email_id"), column != bindparam("differs"))
        .values({column: bindparam("value")})
        .returning(emails.c.id, emails.c.thread_id, emails.c.is_read, emails.c.is_starred)
    )


_SET_ONE = {"is_read": _set_one(emails.c.is_read), "is_starred": _set_one(emails.c.is_starred)}
_LABELS_OF_ONE = Query(
    select(email_labels.c.email_id, email_labels.c.label_id).where(email_labels.c.email_id == bindparam("id"))
)
_UNLABEL_ONE = Query(
    delete(email_labels).where(
        email_labels.c.email_id == bindparam("id"), email_labels.c.label_id == bindparam("label_id")
    )
)
_LABEL_ONE = Query(
    insert(email_labels).from_select(
        ["email_id", "label_id"],
        select(emails.c.id, bindparam("b_label", type_=Integer)).where(
            emails.c.id == bindparam("b_email"),
            ~select(email_labels.c.email_id)
            .where(email_labels.c.email_id == emails.c.id, email_labels.c.label_id == bindparam("b_label2"))
            .exists(),
        ),
    )
)


@dataclass(frozen=True, slots=True)
class _FlagChange:
    """An email whose read or starred flag a :func:`set_flags` changed: before and after."""

    id: int
    thread_id: int
    was_read: bool
    was_starred: bool
    is_read: bool
    is_starred: bool


async def _write_flags(
    tx: Tx, ids: Sequence[int], is_read: bool | None, is_starred: bool | None
) -> list[_FlagChange]:
    """Set the flags of those of ``ids`` where they differ; what changed. One ``UPDATE ...
    RETURNING`` per 500 emails for one flag (its condition also decides between two writers
    of the same email on PostgreSQL, which re-checks it after waiting for the row); for both
    flags the changed rows are read (locked) first."""
    out: list[_FlagChange] = []
    if is_read is not None and is_starred is not None:
        for chunk in chunks(list(ids)):
            rows = await tx.all(
                select(emails.c.id, emails.c.thread_id, emails.c.is_read, emails.c.is_starred)
                .where(
                    emails.c.id.in_(chunk),
                    (emails.c.is_read != is_read) | (emails.c.is_starred != is_starred),
                )
                .with_for_update()
            )
            if rows:
                await tx.execute(
                    update(emails)
                    .where(emails.c.id.in_([int(r["id"]) for r in rows]))
                    .values(is_read=is_read, is_starred=is_starred)
                )
            out += [
                _FlagChange(
                    int(r["id"]),
                    int(r["thread_id"]),
                    bool(r["is_read"]),
                    bool(r["is_starred"]),
                    is_read,
                    is_starred,
                )
                for r in rows
            ]
        return out
    column, value = (emails.c.is_read, is_read) if is_read is not None else (emails.c.is_starred, is_starred)
    assert value is not None
    if len(ids) == 1:
        one = _SET_ONE["is_read" if column is emails.c.is_read else "is_starred"]
        batches: list[list[Row]] = [await tx.all(one, {"email_id": ids[0], "differs": value, "value": value})]
    else:
        batches = [
            await tx.all(
                update(emails)
                .where(emails.c.id.in_(chunk), column != value)
                .values({column: value})
                .returning(emails.c.id, emails.c.thread_id, emails.c.is_read, emails.c.is_starred)
            )
            for chunk in chunks(list(ids))
        ]
    for rows in batches:
        for row in rows:
            now_read, now_starred = bool(row["is_read"]), bool(row["is_starred"])
            was_read = (not value) if column is emails.c.is_read else now_read
            was_starred = (not value) if column is emails.c.is_starred else now_starred
            out.append(
                _FlagChange(
                    int(row["id"]), int(row["thread_id"]), was_read, was_starred, now_read, now_starred
                )
            )
    return out


async def _add_label_to(tx: Tx, email_ids: Sequence[int], label_id: int) -> None:
    """Label the emails that lack ``label_id`` (one ``INSERT ... SELECT``)."""
    present = (
        select(email_labels.c.email_id)
        .where(email_labels.c.email_id == emails.c.id, email_labels.c.label_id == label_id)
        .exists()
    )
    await tx.execute(
        insert(email_labels).from_select(
            ["email_id", "label_id"],
            select(emails.c.id, literal(label_id, Integer)).where(emails.c.id.in_(list(email_ids)), ~present),
        )
    )


async def change_labels(
    tx: Tx,
    user_id: int,
    email_ids: Sequence[int],
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    now: datetime,
) -> list[int]:
    """Add and remove labels (by name; unknown user labels are created) on emails."""
    rows = await owned(tx, user_id, email_ids)
    ids = [r.id for r in rows]
    if not ids:
        return []
    wanted = await label_store.ensure(tx, user_id, [*add, *remove], now)
    if remove:
        await tx.execute(
            delete(email_labels).where(
                email_labels.c.email_id.in_(ids), email_labels.c.label_id.in_([wanted[n] for n in remove])
            )
        )
    for name in dict.fromkeys(add):
        await _add_label_to(tx, ids, wanted[name])
    starring = "starred" in add or "starred" in remove
    if starring:
        await tx.execute(update(emails).where(emails.c.id.in_(ids)).values(is_starred="starred" in add))
    # Labels (and the star) change; every email stays: the set-based refresh of label rows.
    await thread_store.refresh_labels(tx, [r.thread_id for r in rows], flags=starring)
    return ids


async def delete_emails(tx: Tx, user_id: int, email_ids: Sequence[int]) -> list[OwnedEmail]:
    """Delete emails for good: rows, labels, full-text entries (trigger/cascade), quota.

    Returns the deleted emails; their blobs become garbage once nothing else names them
    (store/blobs.py ``collect_garbage``).
    """
    rows = await owned(tx, user_id, email_ids)
    if not rows:
        return []
    ids = [r.id for r in rows]
    await tx.execute(delete(emails).where(emails.c.id.in_(ids)))
    await add_quota_used(tx, user_id, -sum(r.size for r in rows))
    await _refresh_threads(tx, [r.thread_id for r in rows])
    return rows


# -- drafts ------------------------------------------------------------------------------


async def replace_draft(tx: Tx, user_id: int, email_id: int, *, version: int, values: DraftColumns) -> bool:
    """Give draft ``email_id`` new message columns if it is still a draft at ``version``; its
    version grows by one. False when it is not (edited or sent meanwhile): nothing changed.
    The caller re-indexes it, moves the quota and refreshes its thread."""
    changed = await tx.rowcount(
        update(emails)
        .where(
            emails.c.id == email_id,
            emails.c.user_id == user_id,
            emails.c.is_draft.is_(True),
            emails.c.version == version,
        )
        .values(**values, version=emails.c.version + 1)
    )
    if changed == 1:  # a new message: the header filter checks the account again
        await jmap_headers.forget_mark(tx, user_id)
    return changed == 1


async def answered_by(tx: Tx, user_id: int, message_id: str) -> int | None:
    """The id of ``user_id``'s email (not a draft) with this Message-ID (the oldest), if any."""
    found = await tx.scalar(
        select(emails.c.id)
        .where(emails.c.user_id == user_id, emails.c.message_id == message_id, emails.c.is_draft.is_(False))
        .order_by(emails.c.id)
        .limit(1)
    )
    return int(found) if found is not None else None


# -- where trashed mail came from ----------------------------------------------------------


async def labels_among(
    tx: Tx, email_ids: Sequence[int], label_ids: Mapping[str, int]
) -> dict[int, list[str]]:
    """``{email id: names}`` of the labels of ``label_ids`` each email carries (every email of
    ``email_ids`` is a key, with ``[]`` when it carries none)."""
    found: dict[int, list[str]] = {e: [] for e in email_ids}
    if not email_ids or not label_ids:
        return found
    names = {i: n for n, i in label_ids.items()}
    for chunk in chunks(email_ids):
        rows = await tx.all(
            select(email_labels.c.email_id, email_labels.c.label_id).where(
                email_labels.c.email_id.in_(chunk), email_labels.c.label_id.in_(list(names))
            )
        )
        for r in rows:
            found[int(r["email_id"])].append(names[int(r["label_id"])])
    for value in found.values():
        value.sort()
    return found


async def remember_trash_origins(tx: Tx, origins: Mapping[int, Sequence[str]]) -> None:
    """Record where these emails were (label names) as they go to the trash."""
    if not origins:
        return
    await forget_trash_origins(tx, list(origins))
    await tx.execute(insert(trash_origins), [{"email_id": e, "labels": list(n)} for e, n in origins.items()])


async def get_trash_origins(tx: Tx, email_ids: Sequence[int]) -> dict[int, list[str]]:
    """Where those of ``email_ids`` that were trashed came from (absent: not known)."""
    found: dict[int, list[str]] = {}
    for chunk in chunks(email_ids):
        rows = await tx.all(
            select(trash_origins.c.email_id, trash_origins.c.labels).where(
                trash_origins.c.email_id.in_(chunk)
            )
        )
        found.update({int(r["email_id"]): [str(n) for n in r["labels"] or []] for r in rows})
    return found


async def forget_trash_origins(tx: Tx, email_ids: Sequence[int]) -> None:
    for chunk in chunks(email_ids):
        await tx.execute(delete(trash_origins).where(trash_origins.c.email_id.in_(chunk)))
