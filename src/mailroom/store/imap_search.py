"""IMAP SEARCH's text keys as RFC 9051 6.4.4 has them: "the field contains the string", a
case-insensitive substring (of the decoded header value, of the decoded body text).

The full-text index finds whole words; a substring can sit inside any word, so the index
cannot answer these keys. What does:

* header keys (SUBJECT, FROM, TO, CC, BCC, HEADER) and the header half of TEXT: the decoded,
  case-folded field values of ``jmap_blob_headers`` (store/jmap_headers.py; the service reads
  the headers of blobs never read before, once per blob), one ``EXISTS`` on that table's
  primary key per email of the mailbox. Address fields are matched as displayed (names,
  addresses and group names, decoded).
* BODY and the body half of TEXT: on SQLite the body text the FTS5 table stores beside its
  index (the decoded text parts as indexed at ingest, HTML as text, the first
  ``fulltext.MAX_BODY_CHARS``): an ASCII needle is narrowed by ``LIKE`` (ASCII
  case-insensitive) and every candidate checked again case-folded. On PostgreSQL the index
  keeps words only: the body's words (``ts_filter`` weight D) must contain each word of the
  needle (a necessary condition); a needle that is one word needs nothing more (the index
  folds diacritics: there ``uber`` also finds ``über``), any other's candidates go back to
  the caller to be checked against the message text.

The work is bounded by the mailbox (one label): one indexed lookup per email, no file read
once the headers are known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Text,
    cast,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)

from mailroom.store.engine import Tx
from mailroom.store.fulltext import TABLE, pg_words
from mailroom.store.jmap_schema import jmap_blob_headers as headers
from mailroom.store.mail_schema import email_labels, emails

_ADDRESSES = {
    "from": emails.c.from_addrs,
    "to": emails.c.to_addrs,
    "cc": emails.c.cc_addrs,
    "bcc": emails.c.bcc_addrs,
}
_ONE_WORD = re.compile(r"\w+", re.UNICODE)


def folded(value: str) -> str:
    """Text as compared: case-folded (the same NUL stand-in as store/jmap_headers.py)."""
    return value.casefold().replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class BodyMatches:
    """Emails whose body contains the needle (``found``) and emails that may (``unsure``: to
    be checked against the message text by the caller)."""

    found: frozenset[int]
    unsure: frozenset[int]


def _scope(user_id: int, label_id: int | None) -> list[ColumnElement[bool]]:
    if label_id is None:
        return [emails.c.user_id == user_id]
    return [
        emails.c.user_id == user_id,
        emails.c.id.in_(select(email_labels.c.email_id).where(email_labels.c.label_id == label_id)),
    ]


def _field(name: str | None, needle: str | None) -> ColumnElement[bool]:
    conditions = [headers.c.sha == emails.c.blob_sha]
    if name is not None:
        conditions.append(headers.c.name == name)
    else:
        conditions.append(headers.c.name != "")  # the row marking a blob as read
    if needle is not None:
        conditions.append(headers.c.value.contains(folded(needle), autoescape=True))
    return select(headers.c.sha).where(*conditions).exists()


async def header_matches(
    tx: Tx, user_id: int, label_id: int | None, name: str | None, needle: str | None
) -> set[int]:
    """Emails (of the label) with a header field ``name`` (lower case; any field with None)
    whose decoded value contains ``needle`` case-insensitively (any value with None)."""
    condition = _field(name, needle)
    column_ = _ADDRESSES.get(name or "")
    if column_ is not None and needle and needle.isascii():
        # An address's comment ("user@host (Name)") is its name as the message's addresses
        # were parsed at ingest; the field's decoded text keeps no comment.
        escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        condition = or_(condition, func.lower(cast(column_, String)).like(f"%{escaped}%", escape="\\"))
    stmt = select(emails.c.id).where(*_scope(user_id, label_id), condition)
    return {int(i) for i in await tx.scalars(stmt)}


async def body_matches(tx: Tx, user_id: int, label_id: int | None, needle: str) -> BodyMatches:
    """Emails (of the label) whose body text contains ``needle`` case-insensitively."""
    want = folded(needle)
    ids = select(emails.c.id).where(*_scope(user_id, label_id))
    if tx.dialect == "postgresql":
        words = pg_words(needle).split()
        fts = table(TABLE)
        email_id = column("email_id", Integer)
        body_words = cast(func.ts_filter(literal_column("document"), text("'{d}'::\"char\"[]")), Text)
        stmt = select(email_id).select_from(fts).where(email_id.in_(ids))
        for word in words:
            stmt = stmt.where(body_words.contains(word, autoescape=True))
        candidates = frozenset(int(i) for i in await tx.scalars(stmt))
        exact = len(words) == 1 and _ONE_WORD.fullmatch(needle) is not None
        return BodyMatches(candidates, frozenset()) if exact else BodyMatches(frozenset(), candidates)
    rowid = literal_column("rowid", Integer)
    body = column("body", String)
    texts = select(rowid, body).select_from(table(TABLE)).where(rowid.in_(ids))
    if needle.isascii():
        texts = texts.where(body.contains(needle, autoescape=True))  # LIKE: ASCII case-insensitive
    found = {int(r["rowid"]) for r in await tx.all(texts) if want in folded(str(r["body"] or ""))}
    return BodyMatches(frozenset(found), frozenset())
