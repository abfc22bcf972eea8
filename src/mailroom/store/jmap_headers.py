"""The header fields of message blobs, for JMAP Email/query's ``header`` filter.

Header fields are not columns of ``emails``: the filter used to read every message of the
account (linear in the mailbox, a file read and a parse each). Now each blob's fields are
read once into ``jmap_blob_headers`` (name in lower case, decoded value case-folded; a row
named "" marks a blob as read) and the filter is an ``EXISTS`` on that table's primary key
per email the query walks, like any other condition: a page walks only as far as it needs.
Blobs are content-addressed, so a blob's rows never go stale; they go with the blob.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, exists, select

from mailroom.store.engine import Query, Tx
from mailroom.store.jmap_schema import jmap_blob_headers as headers
from mailroom.store.mail_schema import emails
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


async def unread(tx: Tx, user_id: int) -> list[str]:
    """The blobs of the account's emails whose header fields were never read."""
    return [str(sha) for (sha,) in await tx.tuples(_UNREAD, {"user_id": user_id})]


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
