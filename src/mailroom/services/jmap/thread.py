"""``Thread/get`` and ``Thread/changes`` (RFC 8621 §3): a thread is its emails' ids, oldest
(by receivedAt) first; its state and changes come from the account change log."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import (
    EMAIL_PREFIX,
    THREAD_PREFIX,
    account_of,
    changes_response,
    changes_since,
    decode,
    encode,
    state,
)
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._get import check_ids, check_properties, pick
from mailroom.services.jmap._types import (
    ChangesResponse,
    GetResponse,
    IdOrRef,
    JmapId,
    PropertyName,
    State,
    UnsignedInt,
)
from mailroom.store import changelog
from mailroom.store import jmap as jmap_store

PROPERTIES = ("id", "emailIds")
MAX_CHANGES = 5000


@method("Thread/get", capability=MAIL)
async def thread_get(
    ctx: Context,
    accountId: JmapId,
    ids: Annotated[list[IdOrRef], Field(max_length=100_000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
) -> GetResponse:
    """The threads of ``ids`` with their emails' ids; ``ids: null`` is every thread of the
    account when there are at most maxObjectsInGet of them, else ``requestTooLarge``
    (RFC 8620 §5.1)."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        if wanted is None:
            most = ctx.rt.settings.jmap_max_objects_in_get
            every = await jmap_store.thread_ids(tx, user_id, most + 1)
            if len(every) > most:
                why = f"the account has more than {most} threads (maxObjectsInGet): name them"
                raise MethodError("requestTooLarge", why)
            wanted = [encode(THREAD_PREFIX, t) for t in every]
        numbers = {v: decode(THREAD_PREFIX, v) for v in wanted}
        found = await jmap_store.thread_emails(tx, user_id, [n for n in numbers.values() if n is not None])
    by_id = {t.thread_id: t for t in found}
    items = []
    missing = []
    for value, n in numbers.items():
        thread = by_id.get(n) if n is not None else None
        if thread is None:
            if ids is not None:  # (every thread: one whose emails are all hidden is not listed)
                missing.append(value)
            continue
        obj = {"id": value, "emailIds": [encode(EMAIL_PREFIX, e) for e in thread.email_ids]}
        items.append(pick(obj, props))
    return GetResponse(accountId=accountId, state=current, items=items, notFound=missing)


@method("Thread/changes", capability=MAIL)
async def thread_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> ChangesResponse:
    """Threads created, updated (an email joined or left) and destroyed since ``sinceState``."""
    user_id = account_of(ctx, accountId)
    async with ctx.rt.db.read() as tx:
        found = await changes_since(tx, user_id, changelog.Kind.THREAD, sinceState, maxChanges, MAX_CHANGES)
    return changes_response(accountId, sinceState, found, lambda i: encode(THREAD_PREFIX, i))
