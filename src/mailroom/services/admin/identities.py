"""admin.identities.*: send-as identities, the addresses a user may send as beyond their own
and their aliases' (delivery/senders.py applies them to every message a user sends).

Global administrators grant any address to any user. A domain manager grants only within
their domains: both the user's domain and the address's domain (an alternative name counts
as its domain) must be theirs, so an address outside every domain of ours is for global
administrators alone. Taking an identity away follows the same rule. Changes are audited
like every admin change.
"""

from __future__ import annotations

from mailroom.auth.principal import Principal
from mailroom.domain.identities import Identity, IdentityCreate
from mailroom.domain.names import EmailAddress, domain_of
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.errors import Conflict, Forbidden, NotFound
from mailroom.registry import DELETE, GET, POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.users import load_user
from mailroom.store import alternatives as alternatives_store
from mailroom.store import domains as domains_store
from mailroom.store import identities as store
from mailroom.store.engine import Tx

_OF_USER = Manager("email", kind="user")


async def check_may_grant(tx: Tx, principal: Principal, address: str) -> None:
    """Refuse unless ``principal`` may grant (or take away) an identity for ``address``."""
    if principal.is_admin:
        return
    domain = domain_of(address)
    kind = await domains_store.name_kind(tx, domain)
    if kind == "alternative":
        alternative = await alternatives_store.get(tx, domain)
        domain = alternative.domain if alternative else domain
    elif kind != "domain":
        raise Forbidden(
            f"only global administrators may grant addresses outside our domains ({domain})",
            address=address,
        )
    if not principal.can_manage(domain):
        raise Forbidden(f"only managers of {domain} and admins may grant its addresses", address=address)


@api.method("admin.identities.list", http=GET("/users/{email}/identities"), access=_OF_USER)
async def list_identities(
    ctx: Context, email: EmailAddress, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[Identity]:
    """List a user's send-as identities by address."""
    async with ctx.rt.db.read() as tx:
        user = await load_user(tx, email)
        rows, total = await store.page(tx, user.id, offset=offset, limit=limit)
    items = [Identity.model_validate(r, from_attributes=True) for r in rows]
    return Page[Identity](items=items, total=total, offset=offset, limit=limit)


@api.method("admin.identities.get", http=GET("/users/{email}/identities/{address}"), access=_OF_USER)
async def get_identity(ctx: Context, email: EmailAddress, address: EmailAddress) -> Identity:
    """Show one send-as identity of a user."""
    async with ctx.rt.db.read() as tx:
        user = await load_user(tx, email)
        row = await store.get(tx, user.id, address)
    if row is None:
        raise NotFound.of("identity", address)
    return Identity.model_validate(row, from_attributes=True)


@api.method("admin.identities.create", http=POST("/users/{email}/identities", status=201), access=_OF_USER)
async def create_identity(ctx: Context, email: EmailAddress, identity: IdentityCreate) -> Identity:
    """Let a user send as ``address`` (SMTP submission and ``POST /emails``).

    Managers grant addresses of their domains only (``forbidden`` otherwise); an address the
    user already holds is a ``conflict``.
    """
    async with ctx.rt.db.write() as tx:
        user = await load_user(tx, email)
        await check_may_grant(tx, ctx.principal, identity.address)
        if await store.get(tx, user.id, identity.address) is not None:
            raise Conflict(f"{email} may already send as {identity.address}", address=identity.address)
        await store.insert_identity(tx, user.id, identity.address, identity.display_name, ctx.rt.clock.now())
        row = await store.get(tx, user.id, identity.address)
    return Identity.model_validate(row, from_attributes=True)


@api.method("admin.identities.delete", http=DELETE("/users/{email}/identities/{address}"), access=_OF_USER)
async def delete_identity(ctx: Context, email: EmailAddress, address: EmailAddress) -> None:
    """Take a send-as identity away; the user can no longer send as that address."""
    async with ctx.rt.db.write() as tx:
        user = await load_user(tx, email)
        await check_may_grant(tx, ctx.principal, address)
        if not await store.delete_identity(tx, user.id, address):
            raise NotFound.of("identity", address)
