"""mail.maps.lookup: the look-up tables an MTA in front of mailroom asks (docs/internal-api.md).

An internal method: the socketmap listener calls it in-process with the internal principal
for each Postfix query, so the runner accounts and limits these calls like any other. The
tables are delivery/maps.py's; ``sender_access`` is answered here, since it spends the
per-user sending limit (one message per query, as Postfix asks once per MAIL FROM).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mailroom.accounting.sending import SendingLimit
from mailroom.delivery.maps import Tables, lmtp_nexthop
from mailroom.delivery.resolve import SrsKey
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api

TableName = Literal["domain", "mailbox", "alias", "transport", "sender_login", "recipient", "sender_access"]
#: socketmap_table(5) bounds a whole request to 100,000 bytes; an address is far shorter.
Key = Annotated[str, Field(max_length=1024)]


class MapAnswer(BaseModel):
    """A table's answer: ``found`` with its ``value``, or not found."""

    found: bool
    value: str = ""


def _sending_limit(ctx: Context) -> SendingLimit:
    limit = ctx.rt.sending_limit
    if limit is None:
        limit = ctx.rt.sending_limit = SendingLimit.for_runtime(ctx.rt)
    return limit


@api.method("mail.maps.lookup", access=Internal())
async def lookup(ctx: Context, table: TableName, key: Key) -> MapAnswer:
    """Look ``key`` up in ``table`` (domain, mailbox, alias, transport, sender_login,
    recipient, sender_access), as Postfix asks through its socketmap client."""
    settings = ctx.rt.settings
    async with ctx.rt.db.read() as tx:
        tables = Tables(
            tx,
            delimiters=settings.recipient_delimiter,
            lmtp=settings.mta_lmtp_nexthop or lmtp_nexthop(settings.lmtp_host, settings.lmtp_port),
            srs_key=SrsKey.of(ctx.rt),
        )
        if table == "sender_access":
            mailbox = await tables.mailbox(key)
            user_id = await tables.user_id(mailbox) if mailbox else None
        else:
            value = await tables.lookup(table, key)
            return MapAnswer(found=value is not None, value=value or "")
    if user_id is None:
        return MapAnswer(found=False)
    limit = _sending_limit(ctx)
    if not await limit.allowed(user_id):
        return MapAnswer(found=True, value="450 4.2.1 Sending rate limit exceeded, try again later")
    await limit.record(user_id)
    return MapAnswer(found=False)
