"""The header fields of message blobs, for JMAP Email/query's ``header`` filter.

Header fields are not columns of ``emails``: the filter used to read every message of the
account (linear in the mailbox, a file read and a parse each). Now each blob's fields are
read once into ``jmap_blob_headers`` (name in lower case, decoded value case-folded; a row
named "" marks a blob as read) and the filter is an ``EXISTS`` on that table's primary key
per email the query walks, like any other condition: a page walks only as far as it needs.
Blobs are content-addressed, so a blob's rows never go stale; they go with the blob.

Which emails to check: those created since the account's mark (``jmap_header_marks``, a
change-log state up to which every email created was checked), one range of the change log's
primary key; the whole account only without a mark (never checked, the log purged past the
mark, or a draft's message replaced, which sets it to :data:`FORGOTTEN`). A state, not an email id: an
account's changes commit in modseq order, while ids (sequences) may commit out of order.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, exists, select, update

from mailroom.store import changelog
from mailroom.store.engine import Query, Tx
from mailroom.store.jmap_schema import jmap_blob_headers as headers
from mailroom.store.jmap_schema import jmap_header_marks as marks
from mailroom.store.mail_schema import emails, mail_changes
from mailroom.store.upsert import dialect_insert

#: The name of the row that marks a blob as read.
READ = ""

_UNREAD = Query(
    select(emails.c.blob_sha)
    .distinct()
    .where(
        emails.c.user_id == bindparam("user_id"),
        ~exists().where(headers.c.sha == emails.c.blob_sha, headers.c.name == READ),
    )
)


_UNREAD_SINCE = Query(
    select(emails.c.blob_sha)
    .distinct()
    .select_from(mail_changes.join(emails, emails.c.id == mail_changes.c.object_id))
    .where(
        mail_changes.c.user_id == bindparam("user_id"),
        mail_changes.c.kind == int(changelog.Kind.EMAIL),
        mail_changes.c.modseq > bindparam("after"),
        mail_changes.c.modseq <= bindparam("upto"),
        mail_changes.c.op == int(changelog.Op.CREATED),
        ~exists().where(headers.c.sha == emails.c.blob_sha, headers.c.name == READ),
    )
)
_MARK = Query(select(marks.c.modseq).where(marks.c.user_id == bindparam("user_id")))


async def unread(tx: Tx, user_id: int) -> list[str]:
    """The blobs of the account's emails whose header fields were never read."""
    return [str(sha) for (sha,) in await tx.tuples(_UNREAD, {"user_id": user_id})]


#: A mark dropped (a draft replaced): check the whole account, and let no reader that
#: started before move the mark forward.
FORGOTTEN = -1


async def unread_since_mark(tx: Tx, user_id: int) -> tuple[list[str], int, int | None]:
    """``(blobs never read, the state they are complete up to, the mark as read)``: with a
    mark, only the emails created since it (one range read of the change log)."""
    top = await changelog.state(tx, user_id)
    found = await tx.scalar(_MARK, {"user_id": user_id})
    mark = None if found is None else int(found)
    if mark is None or mark < max(top.floor, 0) or mark > top.modseq:
        return await unread(tx, user_id), top.modseq, mark
    if mark == top.modseq:
        return [], top.modseq, mark
    rows = await tx.tuples(_UNREAD_SINCE, {"user_id": user_id, "after": mark, "upto": top.modseq})
    return [str(sha) for (sha,) in rows], top.modseq, mark


async def set_mark(tx: Tx, user_id: int, modseq: int, seen: int | None) -> None:
    """Every email of the account created up to ``modseq`` has its header fields read; only
    if the mark is still ``seen`` (what :func:`unread_since_mark` read): a draft replaced
    meanwhile keeps it forgotten (PostgreSQL waits for that writer's row lock and checks again)."""
    if seen is None:
        stmt = dialect_insert(tx.dialect, marks).values(user_id=user_id, modseq=modseq)
        await tx.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))
    elif seen < modseq:
        await tx.execute(
            update(marks).where(marks.c.user_id == user_id, marks.c.modseq == seen).values(modseq=modseq)
        )


async def forget_mark(tx: Tx, user_id: int) -> None:
    """An email of the account got another message (a draft replaced): check them all again."""
    stmt = dialect_insert(tx.dialect, marks).values(user_id=user_id, modseq=FORGOTTEN)
    await tx.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_={"modseq": FORGOTTEN}))


async def record(tx: Tx, sha: str, fields: Sequence[tuple[str, str]]) -> None:
    """Keep blob ``sha``'s header fields (``(name in lower case, value case-folded)``, in
    order) and mark it read; a blob another reader recorded meanwhile is left as it is."""
    rows = [{"sha": sha, "name": READ, "position": 0, "value": ""}]
    rows += [{"sha": sha, "name": n, "position": i, "value": v} for i, (n, v) in enumerate(fields, 1)]
    stmt = dialect_insert(tx.dialect, headers).on_conflict_do_nothing(
        index_elements=["sha", "name", "position"]
    )
    await tx.execute(stmt, rows)


def has_field(name: str, text: str | None) -> ColumnElement[bool]:
    """Whether the email's message has a field ``name`` (lower case) whose value contains
    ``text`` (case-folded; any value with None)."""
    conditions = [headers.c.sha == emails.c.blob_sha, headers.c.name == name]
    if text is not None:
        conditions.append(headers.c.value.contains(text, autoescape=True))
    return exists().where(and_(*conditions))
