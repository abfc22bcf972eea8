"""Search threads: a parsed query (domain/search.py) as SQL on SQLite FTS5 or PostgreSQL.

An email matches when every term holds for it; a thread matches when one of its emails
does, and threads come newest activity first, like the plain list.

* Text terms go to the full-text index (store/fulltext.py: the mailbox token is always part
  of the match, so the index itself keeps to the caller's mailbox). FTS5: ``mailbox : "u7"
  AND ... NOT ...``; PostgreSQL: ``u7 & ... & !...`` with weights for columns. The matching
  email ids come out of the index first (one set), then the other terms filter those emails.
* ``from:``/``to:``/``cc:`` narrow through the index's ``addresses`` column and then check
  the named header itself (a case-insensitive substring of its JSON addresses), so
  ``from:bob`` does not find mail *to* bob. Negated, only the header check applies.
* Flags, labels, dates and sizes are conditions on ``emails`` / ``email_labels``.
* With positive text terms the index bounds the work: the newest :data:`MAX_MATCHES`
  emails it matches are looked up by primary key. A query without positive text terms scans
  the mailbox's emails (by ``user_id``), minus those the index finds for negated words.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal_column,
    not_,
    select,
    table,
    text,
    true,
)

from mailroom.domain.search import DateTerm, FlagTerm, LabelTerm, SearchQuery, SizeTerm, TextTerm
from mailroom.store.engine import Tx
from mailroom.store.fulltext import TABLE, mailbox_token, pg_words
from mailroom.store.mail_schema import email_labels, emails, thread_labels, threads
from mailroom.store.mailbox_queries import ThreadListing, summaries_of

#: Text search looks at the newest this many emails the index matches (bounded work).
MAX_MATCHES = 10_000
_WORD = re.compile(r"\w", re.UNICODE)
_ADDRESS_FIELDS = {"from": emails.c.from_addrs, "to": emails.c.to_addrs, "cc": emails.c.cc_addrs}
_FTS_COLUMN = {"any": None, "subject": "subject", "from": "addresses", "to": "addresses", "cc": "addresses"}
_PG_WEIGHT = {"subject": "A", "addresses": "B"}


# -- the full-text expression ------------------------------------------------------------


def _is_prefix(word: str) -> bool:
    """``invoi*``: an unquoted word ending in ``*`` matches every word it starts
    (docs/mail.md). In a quoted phrase the ``*`` is text like any punctuation."""
    return word.endswith("*") and bool(_WORD.search(word))


def _fts5_word(word: str, prefix: bool) -> str:
    core = word.rstrip("*") if prefix else word
    return '"' + core.replace('"', '""') + '"' + ("*" if prefix else "")


def _fts5_atom(term: TextTerm) -> str:
    """One term as FTS5: a quoted phrase, or every word quoted and ANDed (never syntax); an
    unquoted word ending in ``*`` is a prefix (``"invoi"*``)."""
    parts = [term.text] if term.phrase else term.text.split()
    quoted = [_fts5_word(p, not term.phrase and _is_prefix(p)) for p in parts if _WORD.search(p)]
    body = " AND ".join(quoted) if len(quoted) > 1 else quoted[0]
    col = _FTS_COLUMN[term.field]
    return f"({col} : ({body}))" if col else f"({body})"


def fts5_expression(user_id: int, terms: list[TextTerm]) -> str:
    """The MATCH string: the mailbox token AND the positive terms, NOT each negated one."""
    positive = [f'mailbox : "{mailbox_token(user_id)}"', *(_fts5_atom(t) for t in terms if not t.negated)]
    expression = "(" + " AND ".join(positive) + ")"
    for term in terms:
        if term.negated:
            expression += " NOT " + _fts5_atom(term)
    return expression


def _pg_atom(term: TextTerm) -> str | None:
    col = _FTS_COLUMN[term.field]
    weights = _PG_WEIGHT.get(col, "") if col else ""
    suffix = f":{weights}" if weights else ""
    if term.phrase:
        words = pg_words(term.text).split()
        labelled = [f"{w}{suffix}" for w in words]
    else:
        # Each unquoted word is split as the index splits it ("e-mail" is two words); a
        # trailing "*" makes the last of its pieces a prefix (":*"), as on FTS5.
        labelled = []
        for part in term.text.split():
            pieces = pg_words(part).split()
            if not pieces:
                continue
            star = "*" if _is_prefix(part) else ""
            labelled += [f"{w}{suffix}" for w in pieces[:-1]]
            labelled.append(f"{pieces[-1]}:{star}{weights}" if star or weights else pieces[-1])
        words = labelled
    if not words:
        return None
    if term.phrase and len(labelled) > 1:
        return "(" + " <-> ".join(labelled) + ")"
    return labelled[0] if len(labelled) == 1 else "(" + " & ".join(labelled) + ")"


def pg_expression(user_id: int, terms: list[TextTerm]) -> str:
    """The ``to_tsquery('simple', ...)`` string: the mailbox token, terms, ``!`` negations."""
    parts = [mailbox_token(user_id)]
    for term in terms:
        atom = _pg_atom(term)
        if atom is not None:
            parts.append(f"!{atom}" if term.negated else atom)
    return " & ".join(parts)


def fts5_any(user_id: int, terms: list[TextTerm]) -> str:
    """The MATCH string for "the mailbox AND any of these terms" (their negation ignored)."""
    return f'mailbox : "{mailbox_token(user_id)}" AND (' + " OR ".join(_fts5_atom(t) for t in terms) + ")"


def pg_any(user_id: int, terms: list[TextTerm]) -> str:
    """The tsquery for "the mailbox AND any of these terms" (their negation ignored)."""
    atoms = [a for a in (_pg_atom(t) for t in terms) if a is not None]
    return f"{mailbox_token(user_id)} & (" + " | ".join(atoms or [mailbox_token(user_id)]) + ")"


def _fulltext_ids(dialect: str, user_id: int, expression: str, limit: int | None) -> Any:
    """A subquery of the ids of emails the index matches (the newest ``limit`` of them)."""
    fts = table(TABLE)
    if dialect == "postgresql":
        email_id = column("email_id", Integer)
        stmt = (
            select(email_id)
            .select_from(fts)
            .where(
                text("document @@ to_tsquery('simple', :fts_query)").bindparams(
                    bindparam("fts_query", expression, type_=String)
                ),
                column("user_id", Integer) == user_id,
            )
        )
        return stmt.order_by(email_id.desc()).limit(limit) if limit is not None else stmt
    rowid = literal_column("rowid", Integer)
    stmt = (
        select(rowid)
        .select_from(fts)
        .where(text(f"{TABLE} MATCH :fts_query").bindparams(bindparam("fts_query", expression, type_=String)))
    )
    return stmt.order_by(rowid.desc()).limit(limit) if limit is not None else stmt


# -- the other terms ---------------------------------------------------------------------


def _address_condition(term: TextTerm) -> ColumnElement[bool]:
    text_ = term.text.rstrip("*") if not term.phrase and _is_prefix(term.text) else term.text
    needle = "%" + text_.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return func.lower(cast(_ADDRESS_FIELDS[term.field], String)).like(needle, escape="\\")


def _flag_condition(term: FlagTerm) -> ColumnElement[bool]:
    if term.flag == "unread":
        return emails.c.is_read.is_(False)
    if term.flag == "read":
        return emails.c.is_read.is_(True)
    if term.flag == "starred":
        return emails.c.is_starred.is_(True)
    if term.flag == "encrypted":
        return emails.c.encryption == "encrypted"
    return emails.c.has_attachments.is_(True)


def _condition(term: Any, label_ids: dict[str, int]) -> ColumnElement[bool] | None:
    cond: ColumnElement[bool]
    if isinstance(term, TextTerm):
        if term.field not in _ADDRESS_FIELDS:
            return None  # the index handles it
        cond = _address_condition(term)
    elif isinstance(term, FlagTerm):
        cond = _flag_condition(term)
    elif isinstance(term, LabelTerm):
        cond = exists().where(
            email_labels.c.email_id == emails.c.id, email_labels.c.label_id == label_ids[term.name]
        )
    elif isinstance(term, DateTerm):
        cond = emails.c.received_at < term.at if term.op == "before" else emails.c.received_at >= term.at
    elif isinstance(term, SizeTerm):
        cond = emails.c.size > term.size if term.op == "larger" else emails.c.size < term.size
    else:  # pragma: no cover - the AST has no other kinds
        raise TypeError(term)
    return not_(cond) if term.negated else cond


def matching_threads(
    dialect: str, user_id: int, query: SearchQuery, label_ids: dict[str, int]
) -> Select[Any]:
    """``SELECT DISTINCT thread_id`` of the emails of ``user_id`` that match ``query``.

    ``label_ids`` maps every ``label:`` name in the query to its id (the caller checks them).
    """
    # Index terms: free text and subject always; addresses only positively (to narrow).
    indexed = [t for t in query.text_terms if t.field in ("any", "subject") or not t.negated]
    positive = [t for t in indexed if not t.negated]
    negative = [t for t in indexed if t.negated]
    conditions: list[ColumnElement[bool]] = []
    if positive:
        # The index's matches drive (primary-key lookups of emails). "+ 0" keeps the
        # planner from walking the mailbox's emails by user_id and probing the matches
        # instead (DESIGN.md: ~1 ms against ~1 s); the check itself still applies.
        expression = (fts5_expression if dialect != "postgresql" else pg_expression)(user_id, indexed)
        conditions.append((emails.c.user_id + 0) == user_id)
        conditions.append(emails.c.id.in_(_fulltext_ids(dialect, user_id, expression, MAX_MATCHES)))
    else:
        conditions.append(emails.c.user_id == user_id)
        if negative:
            expression = (fts5_any if dialect != "postgresql" else pg_any)(user_id, negative)
            conditions.append(emails.c.id.not_in(_fulltext_ids(dialect, user_id, expression, None)))
    for term in query.terms:
        cond = _condition(term, label_ids)
        if cond is not None:
            conditions.append(cond)
    return select(emails.c.thread_id).where(and_(*conditions)).distinct()


def search_statement(
    dialect: str,
    user_id: int,
    query: SearchQuery,
    label_ids: dict[str, int],
    *,
    label_id: int | None,
) -> Select[Any]:
    """The ids of every matching thread, newest activity first (light rows: id, date)."""
    matched = matching_threads(dialect, user_id, query, label_ids).subquery()
    in_label: ColumnElement[bool] = true()
    if label_id is not None:
        in_label = exists().where(
            thread_labels.c.thread_id == threads.c.id,
            thread_labels.c.label_id == label_id,
            thread_labels.c.user_id == user_id,
        )
    # Matched threads are found by primary key ("+ 0": not by walking the mailbox's threads).
    scope = and_((threads.c.user_id + 0) == user_id, threads.c.id.in_(select(matched.c.thread_id)), in_label)
    return select(threads.c.id).where(scope).order_by(threads.c.last_date.desc(), threads.c.id.desc())


async def search_threads(
    tx: Tx,
    user_id: int,
    query: SearchQuery,
    label_ids: dict[str, int],
    *,
    label_id: int | None,
    offset: int,
    limit: int,
) -> tuple[int, list[ThreadListing]]:
    """(how many threads match, one page of their summaries newest first).

    One pass finds every matching thread id in order (bounded by :data:`MAX_MATCHES`
    emails for text searches): its length is the total, and only the page's summaries are
    read, by primary key.
    """
    stmt = search_statement(tx.dialect, user_id, query, label_ids, label_id=label_id)
    # Plain scalars, not dict rows: there may be thousands.
    ids = [int(i) for i in (await tx.execute(stmt)).scalars().all()]
    return len(ids), await summaries_of(tx, user_id, ids[offset : offset + limit])
