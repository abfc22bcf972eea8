"""admin.managers.*: who administers a domain besides the global administrators.

A manager may be a user of any domain. Their powers are read when a request is
authenticated, so a change shows at their next request.
"""

from __future__ import annotations

from mailroom.domain.managers import DomainManager, ManagerCreate
from mailroom.domain.names import DomainName, EmailAddress
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.errors import Conflict, NotFound
from mailroom.registry import DELETE, GET, POST, Admin, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.domains import load_domain
from mailroom.services.admin.users import load_user
from mailroom.store import managers as store
from mailroom.store import users as users_store


@api.method("admin.managers.list", http=GET("/domains/{domain}/managers"), access=Manager("domain"))
async def list_managers(
    ctx: Context, domain: DomainName, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[DomainManager]:
    """List the managers of a domain by address."""
    async with ctx.rt.db.read() as tx:
        await load_domain(tx, domain)
        rows, total = await store.page(tx, domain, offset=offset, limit=limit)
    items = [DomainManager.model_validate(r, from_attributes=True) for r in rows]
    return Page[DomainManager](items=items, total=total, offset=offset, limit=limit)


@api.method("admin.managers.create", http=POST("/domains/{domain}/managers", status=201), access=Admin())
async def create_manager(ctx: Context, domain: DomainName, manager: ManagerCreate) -> DomainManager:
    """Make an existing user, of any domain, a manager of this domain.

    The user gains the domain's powers at their next request; a user who already manages
    the domain is a ``conflict``.
    """
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)
        user = await load_user(tx, manager.email)
        if await store.get(tx, domain, user.id) is not None:
            raise Conflict(f"{manager.email} already manages {domain}", email=manager.email, domain=domain)
        await store.insert_manager(tx, domain, user.id, ctx.rt.clock.now())
        record = await store.get(tx, domain, user.id)
    return DomainManager.model_validate(record, from_attributes=True)


@api.method("admin.managers.delete", http=DELETE("/domains/{domain}/managers/{email}"), access=Admin())
async def delete_manager(ctx: Context, domain: DomainName, email: EmailAddress) -> None:
    """Take a domain away from one of its managers; the user themselves stays."""
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)
        user = await users_store.get(tx, email)
        if user is None or not await store.delete_manager(tx, domain, user.id):
            raise NotFound.of("manager", email)
