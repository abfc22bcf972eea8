"""``Email/query`` and ``Email/queryChanges`` (RFC 8621 §4.4, §4.5).

Filters and sorts run as one SQL statement over the account's emails (store/jmap_emails.py);
text conditions use the full-text index. Keywords are compared in lower case, the columns
``$seen``/``$flagged``/``$draft`` and every other keyword IMAP or JMAP stored
(domain/keywords.py). The ``header`` condition is an index look-up per email
(store/jmap_headers.py): the header fields of blobs never met before are read first, once.
Results are not kept: ``Email/queryChanges`` reads the change log (up to 5,000 changed emails
since the old state) and runs the query again.
"""

from __future__ import annotations

import asyncio
from email import policy as email_policy
from email.parser import BytesHeaderParser
from typing import Annotated, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import (
    EMAIL_PREFIX,
    account_of,
    changes_since,
    decode,
    encode,
    state,
)
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._mailboxes import label_id
from mailroom.services.jmap._query import MAX_QUERY_LIMIT, FilterOperatorBase, window
from mailroom.services.jmap._types import (
    AddedItem,
    Comparator,
    Int,
    JmapId,
    QueryChangesResponse,
    QueryResponse,
    State,
    UnsignedInt,
)
from mailroom.store import changelog, jmap_emails, jmap_headers
from mailroom.store import jmap as jmap_store
from mailroom.store.blobs import BlobNotFound
from mailroom.store.engine import Tx
from mailroom.store.jmap_emails import Condition, Operator, Sort

_Text = Annotated[str, Field(max_length=1000)]
_Keyword = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]


class EmailFilterCondition(BaseModel):
    """RFC 8621 §4.4.1."""

    model_config = ConfigDict(extra="forbid")

    inMailbox: JmapId | None = None
    inMailboxOtherThan: Annotated[list[JmapId], Field(max_length=1000)] | None = None
    before: AwareDatetime | None = None
    after: AwareDatetime | None = None
    minSize: UnsignedInt | None = None
    maxSize: UnsignedInt | None = None
    allInThreadHaveKeyword: _Keyword | None = None
    someInThreadHaveKeyword: _Keyword | None = None
    noneInThreadHaveKeyword: _Keyword | None = None
    hasKeyword: _Keyword | None = None
    notKeyword: _Keyword | None = None
    hasAttachment: bool | None = None
    text: _Text | None = None
    from_: _Text | None = Field(default=None, alias="from")
    to: _Text | None = None
    cc: _Text | None = None
    bcc: _Text | None = None
    subject: _Text | None = None
    body: _Text | None = None
    header: Annotated[list[_Text], Field(min_length=1, max_length=2)] | None = None


class EmailFilterOperator(FilterOperatorBase):
    conditions: Annotated[list[EmailFilter], Field(max_length=100)]


EmailFilter = Union[EmailFilterOperator, EmailFilterCondition]  # noqa: UP007
EmailFilterOperator.model_rebuild()

SORTS = frozenset({"receivedAt", "sentAt", "size", "subject", "from", "to", "hasKeyword"})
_COLLATIONS = (None, "i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap")
_MAX_DEPTH = 10
#: The most changed emails Email/queryChanges looks at; beyond, cannotCalculateChanges.
MAX_CHANGES = 5000


def _mailbox(value: str) -> int:
    number = label_id(value)
    return number if number is not None else -1  # an id that names no label: matches nothing


#: Blobs read per worker-thread hop and recorded per write transaction.
_HEADER_BATCH = 256


def _header_key(header: list[str]) -> tuple[str, str | None]:
    name = header[0].strip().lower()
    if not name or any(ord(c) <= 32 or ord(c) > 126 or c == ":" for c in name):
        raise MethodError("invalidArguments", f"{header[0]!r} is not a header field name")
    return name, header[1] if len(header) > 1 else None


def _headers_of(f: EmailFilter, found: set[tuple[str, str | None]]) -> set[tuple[str, str | None]]:
    if isinstance(f, EmailFilterOperator):
        for c in f.conditions:
            _headers_of(c, found)
    elif f.header is not None:
        found.add(_header_key(f.header))
    return found


def _folded(text: str) -> str:
    # PostgreSQL's text holds no NUL: the same stand-in on both sides of the comparison.
    return text.casefold().replace("\x00", "\ufffd")


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw if end < 0 else raw[: end + 2]


def _read_fields(ctx: Context, shas: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(sha, [(name in lower case, decoded value case-folded)])`` of each blob that exists
    (blocking: file reads and parsing, run in a worker thread)."""
    parser = BytesHeaderParser(policy=email_policy.default)
    out = []
    for sha in shas:
        try:
            raw = ctx.rt.blobs.get_sync(sha)
        except (BlobNotFound, FileNotFoundError, KeyError):
            continue
        message = parser.parsebytes(_header_block(raw))
        out.append((sha, [(name.lower(), _folded(_decoded(value))) for name, value in message.items()]))
    return out


async def read_headers(ctx: Context, user_id: int, f: EmailFilter | None) -> None:
    """Before a query with ``header`` conditions: read the header fields of the account's
    blobs that were never read (store/jmap_headers.py; each blob once in its life)."""
    if f is None or not _headers_of(f, set()):
        return
    async with ctx.rt.db.read() as tx:
        unread, upto, mark = await jmap_headers.unread_since_mark(tx, user_id)
    if mark == upto:  # nothing created since the last check
        return
    for start in range(0, len(unread), _HEADER_BATCH):
        fields = await asyncio.to_thread(_read_fields, ctx, unread[start : start + _HEADER_BATCH])
        if fields:
            async with ctx.rt.db.write() as tx:
                for sha, found in fields:
                    await jmap_headers.record(tx, sha, found)
    async with ctx.rt.db.write() as tx:  # every email created up to ``upto`` is read now
        await jmap_headers.set_mark(tx, user_id, upto, mark)


async def read_all_headers(ctx: Context, user_id: int) -> None:
    """Read the header fields of the account's blobs never read (also IMAP SEARCH's header
    keys: services/mail/imap.py)."""
    async with ctx.rt.db.read() as tx:
        unread = await jmap_headers.unread(tx, user_id)
    for start in range(0, len(unread), _HEADER_BATCH):
        fields = await asyncio.to_thread(_read_fields, ctx, unread[start : start + _HEADER_BATCH])
        if fields:
            async with ctx.rt.db.write() as tx:
                for sha, found in fields:
                    await jmap_headers.record(tx, sha, found)


def _decoded(value: object) -> str:
    try:
        return str(value)
    except (ValueError, LookupError):  # a header the email package cannot decode
        return ""


def _condition(f: EmailFilterCondition) -> Condition:
    headers: tuple[tuple[str, str | None], ...] = ()
    if f.header is not None:
        name, text = _header_key(f.header)
        headers = ((name, _folded(text) if text is not None else None),)
    texts: list[tuple[jmap_emails.TextField, str]] = []
    for field, value in (
        ("text", f.text),
        ("from", f.from_),
        ("to", f.to),
        ("cc", f.cc),
        ("bcc", f.bcc),
        ("subject", f.subject),
        ("body", f.body),
    ):
        if value is not None:
            texts.append((field, value))  # type: ignore[arg-type]
    return Condition(
        in_mailbox=_mailbox(f.inMailbox) if f.inMailbox is not None else None,
        in_mailbox_other_than=tuple(_mailbox(m) for m in f.inMailboxOtherThan)
        if f.inMailboxOtherThan is not None
        else None,
        before=f.before,
        after=f.after,
        min_size=f.minSize,
        max_size=f.maxSize,
        all_in_thread_have_keyword=f.allInThreadHaveKeyword,
        some_in_thread_have_keyword=f.someInThreadHaveKeyword,
        none_in_thread_have_keyword=f.noneInThreadHaveKeyword,
        has_keyword=f.hasKeyword,
        not_keyword=f.notKeyword,
        has_attachment=f.hasAttachment,
        text=tuple(texts),
        headers=headers,
    )


def to_filter(f: EmailFilter, depth: int = 0) -> Condition | Operator:
    """The client's filter as the store's (``unsupportedFilter`` for what it cannot do);
    ``header`` conditions need :func:`read_headers` first."""
    if depth > _MAX_DEPTH:
        raise MethodError("unsupportedFilter", f"filters nest at most {_MAX_DEPTH} levels")
    if isinstance(f, EmailFilterOperator):
        return Operator(f.operator, tuple(to_filter(c, depth + 1) for c in f.conditions))
    return _condition(f)


def to_sort(sort: list[Comparator] | None) -> list[Sort]:
    if not sort:
        return [Sort("receivedAt", ascending=False)]
    out = []
    for c in sort:
        if c.property not in SORTS:
            raise MethodError("unsupportedSort", f"cannot sort emails by {c.property}")
        if c.collation not in _COLLATIONS:
            raise MethodError("unsupportedSort", f"unknown collation {c.collation}")
        if c.property == "hasKeyword" and not c.keyword:
            raise MethodError("invalidArguments", "hasKeyword sorts need a keyword")
        out.append(Sort(c.property, c.isAscending, c.keyword))
    return out


def check_filter(f: EmailFilter) -> None:
    """Refuse a filter Email/query would refuse (``unsupportedFilter``, ``invalidArguments``)."""
    to_filter(f)


async def _where(ctx: Context, user_id: int, f: EmailFilter | None) -> Condition | Operator | None:
    if f is None:
        return None
    where = to_filter(f)  # refuse a bad filter before reading any message
    await read_headers(ctx, user_id, f)
    return where


@method("Email/query", capability=MAIL)
async def email_query(
    ctx: Context,
    accountId: JmapId,
    filter: EmailFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=10)] | None = None,
    position: Int = 0,
    anchor: JmapId | None = None,
    anchorOffset: Int = 0,
    limit: UnsignedInt | None = None,
    calculateTotal: bool = False,
    collapseThreads: bool = False,
) -> QueryResponse:
    """The ids of the account's emails matching ``filter`` in ``sort`` order (default: newest
    received first); with ``collapseThreads`` only the first email of each thread."""
    user_id = account_of(ctx, accountId)
    where = await _where(ctx, user_id, filter)
    order = to_sort(sort)
    if anchor is not None and decode(EMAIL_PREFIX, anchor) is None:
        raise MethodError("anchorNotFound", f"{anchor} is not in the results")
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        if anchor is None and position >= 0 and limit is not None and position + limit <= MAX_QUERY_LIMIT:
            # A page from the start: read only as far as it reaches.
            numbers = await _first(tx, user_id, where, order, position + limit, collapseThreads)
            total = await _total(tx, user_id, filter, where, collapseThreads) if calculateTotal else None
            return QueryResponse(
                accountId=accountId,
                queryState=current,
                canCalculateChanges=True,
                position=position,
                ids=[encode(EMAIL_PREFIX, n) for n in numbers[position:]],
                total=total,
            )
        rows = await jmap_emails.query(tx, user_id, where, order)
    numbers = _collapse(rows) if collapseThreads else [email for email, _ in rows]
    ids = [encode(EMAIL_PREFIX, n) for n in numbers]
    start, page, cut = window(ids, position=position, anchor=anchor, anchor_offset=anchorOffset, limit=limit)
    return QueryResponse(
        accountId=accountId,
        queryState=current,
        canCalculateChanges=True,
        position=start,
        ids=page,
        total=len(ids) if calculateTotal else None,
        limit=cut,
    )


def _collapse(rows: list[tuple[int, int]], seen: set[int] | None = None) -> list[int]:
    """The first email of each thread, in order (``seen``: threads already had)."""
    seen = set() if seen is None else seen
    kept = []
    for email, thread in rows:
        if thread not in seen:
            seen.add(thread)
            kept.append(email)
    return kept


async def _first(
    tx: Tx, user_id: int, where: Condition | Operator | None, order: list[Sort], need: int, collapse: bool
) -> list[int]:
    """The first ``need`` results, reading rows in growing batches when threads collapse."""
    if not collapse:
        return [email for email, _ in await jmap_emails.query(tx, user_id, where, order, limit=need)]
    seen: set[int] = set()
    found: list[int] = []
    offset, batch = 0, max(2 * need, 64)
    while len(found) < need:
        rows = await jmap_emails.query(tx, user_id, where, order, limit=batch, offset=offset)
        found += _collapse(rows, seen)
        if len(rows) < batch:
            break
        offset, batch = offset + batch, min(batch * 4, 100_000)
    return found[:need]


async def _total(
    tx: Tx, user_id: int, given: EmailFilter | None, where: Condition | Operator | None, collapse: bool
) -> int:
    """``calculateTotal``: a mailbox alone is counted by its label's kept counts."""
    if (
        isinstance(given, EmailFilterCondition)
        and given.model_fields_set == {"inMailbox"}
        and given.inMailbox
    ):
        number = label_id(given.inMailbox)
        totals = await jmap_emails.label_totals(tx, user_id, number) if number is not None else None
        if totals is not None:
            return totals[1] if collapse else totals[0]
    return await jmap_emails.count(tx, user_id, where, threads=collapse)


#: Filter conditions and sorts on properties an email never changes (RFC 8620 §5.6 upToId).
_IMMUTABLE_CONDITIONS = frozenset(
    {"before", "after", "minSize", "maxSize", "hasAttachment", "text", "from_", "to", "cc", "bcc",
     "subject", "body", "header"}
)  # fmt: skip
_IMMUTABLE_SORTS = frozenset({"receivedAt", "sentAt", "size", "subject", "from", "to"})


def _immutable(f: EmailFilter | None) -> bool:
    if f is None:
        return True
    if isinstance(f, EmailFilterOperator):
        return all(_immutable(c) for c in f.conditions)
    return f.model_fields_set <= _IMMUTABLE_CONDITIONS


_THREAD_CONDITIONS = frozenset(
    {"allInThreadHaveKeyword", "someInThreadHaveKeyword", "noneInThreadHaveKeyword"}
)


def _by_thread(f: EmailFilter | None) -> bool:
    if f is None:
        return False
    if isinstance(f, EmailFilterOperator):
        return any(_by_thread(c) for c in f.conditions)
    return bool(f.model_fields_set & _THREAD_CONDITIONS)


@method("Email/queryChanges", capability=MAIL)
async def email_query_changes(
    ctx: Context,
    accountId: JmapId,
    sinceQueryState: State,
    filter: EmailFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=10)] | None = None,
    maxChanges: UnsignedInt | None = None,
    upToId: JmapId | None = None,
    calculateTotal: bool = False,
    collapseThreads: bool = False,
) -> QueryChangesResponse:
    """How the results of an Email/query changed since ``sinceQueryState``, from the change
    log: every email created, changed or destroyed since (with ``collapseThreads``, also
    every email of a thread that changed, as another may now stand for it) is in
    ``removed``, and those of them in the results now are in ``added`` with their index
    (RFC 8620 §5.6 lets ``removed`` hold ids the old results did not have)."""
    user_id = account_of(ctx, accountId)
    where = await _where(ctx, user_id, filter)
    order = to_sort(sort)
    if maxChanges is not None and maxChanges < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    async with ctx.rt.db.read() as tx:
        found = await changes_since(tx, user_id, changelog.Kind.EMAIL, sinceQueryState, None, MAX_CHANGES)
        if found.has_more_changes:
            raise MethodError("cannotCalculateChanges", f"more than {MAX_CHANGES} changes: query again")
        touched = dict.fromkeys((*found.created, *found.updated, *found.destroyed))
        if collapseThreads or _by_thread(filter):
            # Which email stands for a thread, and whether an email matches a condition on
            # its thread, depend on the thread's other emails: they are changed too.
            threads = await changes_since(
                tx, user_id, changelog.Kind.THREAD, sinceQueryState, None, MAX_CHANGES
            )
            if threads.has_more_changes:
                raise MethodError("cannotCalculateChanges", f"more than {MAX_CHANGES} changes: query again")
            changed = await jmap_store.threads_of(tx, user_id, list(touched))
            changed.update((*threads.created, *threads.updated))
            for thread in await jmap_store.thread_emails(tx, user_id, sorted(changed)):
                touched.update(dict.fromkeys(thread.email_ids))
        if maxChanges is not None and len(touched) > maxChanges:
            raise MethodError("tooManyChanges", f"{len(touched)} changes, more than maxChanges")
        current = await state(tx, user_id)
        rows = await jmap_emails.query(tx, user_id, where, order) if touched or calculateTotal else []
    numbers = _collapse(rows) if collapseThreads else [email for email, _ in rows]
    position = {n: i for i, n in enumerate(numbers)}
    added = sorted(
        (AddedItem(id=encode(EMAIL_PREFIX, n), index=position[n]) for n in touched if n in position),
        key=lambda a: a.index,
    )
    last = decode(EMAIL_PREFIX, upToId) if upToId is not None else None
    immutable = (
        not collapseThreads and _immutable(filter) and all(s.property in _IMMUTABLE_SORTS for s in order)
    )
    if last is not None and last in position and immutable:
        # Past the last id the client has, nothing moves but what was added there.
        added = [a for a in added if a.index <= position[last]]
    return QueryChangesResponse(
        accountId=accountId,
        oldQueryState=sinceQueryState,
        newQueryState=current,
        total=len(numbers) if calculateTotal else None,
        removed=[encode(EMAIL_PREFIX, n) for n in touched],
        added=added,
    )
