"""mail.identities.list: the send-as identities granted to the caller (read-only here;
managers and admins grant them with ``admin.identities.*``).

A mail client offers them, with the caller's own address and aliases, as the From of a new
message (``from_address`` of ``POST /emails``, or the envelope and From over submission).
"""

from __future__ import annotations

from mailroom.domain.identities import Identity
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.registry import GET, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.store import identities as store


@api.method("mail.identities.list", http=GET("/me/identities"), access=UserSelf())
async def list_identities(ctx: Context, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT) -> Page[Identity]:
    """The addresses the caller may send as besides their own and their aliases', by address."""
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, user_id_of(ctx), offset=offset, limit=limit)
    items = [Identity.model_validate(r, from_attributes=True) for r in rows]
    return Page[Identity](items=items, total=total, offset=offset, limit=limit)
