"""admin.waitlist.*: people who signed up without an invite, and admitting them.

Admitting creates the account with the user name and password hash given at sign-up (the
password itself was never kept). Admins see every domain's queue, managers their domains'.
"""

from __future__ import annotations

from mailroom.domain.invites import WaitlistEntry
from mailroom.domain.names import DomainName
from mailroom.domain.numbers import Id
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.users import User
from mailroom.errors import NotFound
from mailroom.registry import DELETE, GET, POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.mail._accounts import create_account
from mailroom.store import signups as store


def _out(entry: store.WaitlistRecord) -> WaitlistEntry:
    return WaitlistEntry(
        id=entry.id,
        domain=entry.domain,
        username=entry.spelling,
        position=entry.position,
        created_at=entry.created_at,
    )


@api.method("admin.waitlist.list", http=GET("/waitlist"), access=Manager("domain"))
async def list_waitlist(
    ctx: Context, domain: DomainName | None = None, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[WaitlistEntry]:
    """People waiting for an account, in order of arrival, with their place in the queue."""
    p = ctx.principal
    only = [domain] if domain is not None else (None if p.is_admin else p.managed_domains)
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page_waitlist(tx, domains=only, offset=offset, limit=limit)
    return Page[WaitlistEntry](items=[_out(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.waitlist.admit", http=POST("/waitlist/{id}/admit", status=201), access=Manager())
async def admit(ctx: Context, id: Id) -> User:
    """Create the account of a waiting person and take them off the list.

    A name taken meanwhile (by an administrator's user or alias) is a ``conflict``; the
    domain's ``max_users`` applies.
    """
    async with ctx.rt.db.write() as tx:
        row = await store.waitlist_entry(tx, id)
        if row is None or not ctx.principal.can_manage(row.domain):
            raise NotFound.of("waitlist entry", id)
        await store.leave_waitlist(tx, id)
        user = await create_account(
            ctx, tx, domain=row.domain, username=row.spelling, password_hash=row.password_hash
        )
    return User.model_validate(user, from_attributes=True)


@api.method("admin.waitlist.delete", http=DELETE("/waitlist/{id}"), access=Manager())
async def refuse(ctx: Context, id: Id) -> None:
    """Take someone off the waitlist without creating an account."""
    async with ctx.rt.db.write() as tx:
        row = await store.waitlist_entry(tx, id)
        if row is None or not ctx.principal.can_manage(row.domain):
            raise NotFound.of("waitlist entry", id)
        await store.leave_waitlist(tx, id)
