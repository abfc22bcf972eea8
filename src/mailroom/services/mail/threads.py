"""mail.threads.*: the thread list (by label, with search) and one thread with its emails."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailroom.domain.numbers import Id
from mailroom.domain.paging import DEFAULT_LIMIT, Offset
from mailroom.domain.search import LabelTerm, parse_query
from mailroom.errors import BadRequest, NotFound
from mailroom.registry import GET, Context, UserSelf
from mailroom.services.mail._actions import wake_postponed
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import (
    LabelRef,
    ThreadList,
    ThreadSummary,
    find_label,
    thread_summary,
    user_id_of,
)
from mailroom.services.mail.emails import EmailSummary, email_summary
from mailroom.store import emails as email_store
from mailroom.store import mailbox_queries as queries
from mailroom.store import mailbox_search
from mailroom.store import threads as thread_store
from mailroom.store.labels import SYSTEM_LABELS
from mailroom.store.mailbox_queries import LabelRecord

ThreadLimit = Annotated[int, Field(ge=1, le=500, description="How many threads at most (max 500).")]
SearchText = Annotated[
    str,
    Field(
        max_length=1000, description='Search: words, "phrases", from: to: cc: subject: label: has: is: ...'
    ),
]


class ThreadDetail(ThreadSummary):
    """A thread's summary and its emails, oldest first (bodies: ``mail.emails.get``)."""

    emails: list[EmailSummary]


@api.method("mail.threads.list", http=GET("/threads"), access=UserSelf())
async def list_threads(
    ctx: Context,
    label: LabelRef | None = None,
    q: SearchText | None = None,
    offset: Offset = 0,
    limit: ThreadLimit = DEFAULT_LIMIT,
) -> ThreadList:
    """The caller's threads, newest activity first.

    ``label`` (a name or an id) keeps threads with that label; without ``q`` it defaults to
    ``inbox``. ``q`` searches (see the search language in docs/client-api-mail.md): a thread
    is listed when one of its emails matches; without ``label`` the whole mailbox is searched.
    A bad query is a 400 naming the problem.
    """
    user_id = user_id_of(ctx)
    query = parse_query(q) if q is not None and q.strip() else None
    await wake_postponed(ctx.rt, user_id)
    async with ctx.rt.db.read() as tx:
        found: LabelRecord | None = None
        if label is not None and label.strip().lower() not in SYSTEM_LABELS:
            found = await find_label(tx, user_id, label)
        elif label is not None or query is None:
            # System labels exist in every mailbox, created on first use: none yet, no mail.
            found = await queries.label_by_name(tx, user_id, (label or "inbox").strip().lower())
            if found is None:
                return ThreadList(n_threads=0, threads=[])
        label_id = found.id if found is not None else None
        if query is None:
            assert found is not None  # no query: a label, inbox by default
            rows = await queries.list_page(tx, user_id, found.id, offset=offset, limit=limit)
            total = found.threads_total  # kept on write (store/threads.py): no count
        else:
            named: dict[str, int] = {}
            for term in query.terms:
                if isinstance(term, LabelTerm) and term.name not in named:
                    row = await queries.label_by_name(tx, user_id, term.name)
                    if row is None:
                        raise BadRequest(f"bad search query: there is no label '{term.name}'", param="q")
                    named[term.name] = row.id
            total, rows = await mailbox_search.search_threads(
                tx, user_id, query, named, label_id=label_id, offset=offset, limit=limit
            )
        names = await queries.label_names_of(tx, user_id, [r.id for r in rows])
    me = ctx.principal.email
    return ThreadList(n_threads=total, threads=[thread_summary(r, names[r.id], me) for r in rows])


@api.method("mail.threads.get", http=GET("/threads/{id}"), access=UserSelf())
async def get_thread(ctx: Context, id: Id) -> ThreadDetail:
    """One of the caller's threads: its summary and its emails, oldest first."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        row = await thread_store.get(tx, user_id, id)
        if row is None:
            raise NotFound.of("thread", id)
        emails = await email_store.of_thread(tx, user_id, id)
        latest = next((e for e in emails if e.id == row.latest_email_id), None)
        names = await queries.label_names_of(tx, user_id, [id])
    recipients = [*(latest.to_addrs or []), *(latest.cc_addrs or [])] if latest is not None else []
    summary = thread_summary(row, names[id], ctx.principal.email, recipients)
    return ThreadDetail(**summary.model_dump(), emails=[email_summary(e) for e in emails])
