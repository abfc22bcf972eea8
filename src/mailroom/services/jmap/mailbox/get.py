"""``Mailbox/get`` (RFC 8621 §2.1)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, state
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._get import check_ids, check_properties, pick
from mailroom.services.jmap._mailboxes import PROPERTIES, label_id, to_mailbox, tree
from mailroom.services.jmap._types import GetResponse, IdOrRef, JmapId, PropertyName
from mailroom.services.mail.labels import ensure_system_labels
from mailroom.store import mailbox_queries as queries

IdList = Annotated[list[IdOrRef], Field(max_length=100_000)]
Properties = Annotated[list[PropertyName], Field(max_length=1000)]


@method("Mailbox/get", capability=MAIL)
async def mailbox_get(
    ctx: Context,
    accountId: JmapId,
    ids: IdList | None = None,
    properties: Properties | None = None,
) -> GetResponse:
    """The account's mailboxes (labels), all or those of ``ids``."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    await ensure_system_labels(ctx, user_id)
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        t = await tree(tx, user_id)
        if wanted is None:
            rows = await queries.label_counts(tx, user_id)
            found = [pick(to_mailbox(r, t), props) for r in rows]
            missing: list[str] = []
        else:
            found, missing = [], []
            for value in wanted:
                n = label_id(value)
                rows = await queries.label_counts(tx, user_id, n) if n is not None else []
                if rows:
                    found.append(pick(to_mailbox(rows[0], t), props))
                else:
                    missing.append(value)
    return GetResponse(accountId=accountId, state=current, items=found, notFound=missing)
