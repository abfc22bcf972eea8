"""admin.domains.*: mail domains and their limits."""

from __future__ import annotations

from typing import cast

from mailroom.domain.domains import Domain, DomainCreate, DomainUpdate
from mailroom.domain.filtering import TextFilter
from mailroom.domain.names import DomainName
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import DomainSort
from mailroom.errors import Conflict, LimitExceeded, NotFound
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import DELETE, GET, PATCH, POST, Admin, Context, Manager
from mailroom.services.admin._api import api
from mailroom.store import domains as store
from mailroom.store.engine import Tx

KIND_LABEL = {"domain": "a domain", "alternative": "an alternative domain", "relay": "a relayed domain"}


async def check_name_free(tx: Tx, name: str) -> None:
    """A name is unique across domains, alternative domains and relays."""
    kind = await store.name_kind(tx, name)
    if kind is not None:
        raise Conflict(f"{name} is already {KIND_LABEL.get(kind, 'in use')}", name=name, kind=kind)


async def load_domain(tx: Tx, name: str) -> store.DomainRecord:
    record = await store.get(tx, name)
    if record is None:
        raise NotFound.of("domain", name)
    return record


def shown(record: store.DomainRecord) -> Domain:
    return Domain.model_validate(record, from_attributes=True)


@api.method("admin.domains.list", http=GET("/domains"), access=Manager())
async def list_domains(
    ctx: Context,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: DomainSort = "name",
    q: TextFilter = None,
) -> Page[Domain]:
    """List the domains the caller administers, by name (or ``sort``); with ``q``, only those
    whose name contains it.

    Global administrators see every domain; domain managers see the domains they manage.
    """
    only = None if ctx.principal.is_admin else ctx.principal.managed_domains
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, only=only, offset=offset, limit=limit, sort=sort, q=q)
    return Page[Domain](items=[shown(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.domains.get", http=GET("/domains/{name}"), access=Manager("name"))
async def get_domain(ctx: Context, name: DomainName) -> Domain:
    """Show one domain."""
    async with ctx.rt.db.read() as tx:
        return shown(await load_domain(tx, name))


@api.method("admin.domains.create", http=POST("/domains", status=201), access=Admin())
async def create_domain(ctx: Context, domain: DomainCreate) -> Domain:
    """Create a mail domain. Its name must not be used by another domain, alternative or relay."""
    now = ctx.rt.clock.now()
    values: store.NewDomain = {
        "name": domain.name,
        "comment": domain.comment,
        "max_users": domain.max_users,
        "max_aliases": domain.max_aliases,
        "max_quota_bytes": domain.max_quota_bytes,
        "signup_enabled": domain.signup_enabled,
        "created_at": now,
        "updated_at": now,
    }
    async with ctx.rt.db.write() as tx:
        await check_name_free(tx, domain.name)
        await store.insert_domain(tx, values)
        record = await load_domain(tx, domain.name)
    return shown(record)


@api.method("admin.domains.update", http=PATCH("/domains/{name}"), access=Admin())
async def update_domain(ctx: Context, name: DomainName, changes: DomainUpdate) -> Domain:
    """Change a domain's comment, limits or signup setting.

    Lowering a limit below what the domain already uses is refused with ``limit_exceeded``.
    """
    # The DomainUpdate fields are a subset of the DomainChanges keys, with the same types.
    values = cast(store.DomainChanges, changes.model_dump(exclude_unset=True))
    async with ctx.rt.db.write() as tx:
        if await store.lock(tx, name) is None:
            raise NotFound.of("domain", name)
        used = await store.usage(tx, name)
        if changes.max_users is not None and changes.max_users < used.users:
            raise LimitExceeded(f"{name} already has {used.users} users", used=used.users)
        if changes.max_aliases is not None and changes.max_aliases < used.aliases:
            raise LimitExceeded(f"{name} already has {used.aliases} aliases", used=used.aliases)
        if changes.max_quota_bytes is not None:
            largest = await store.max_user_quota(tx, name)
            if changes.max_quota_bytes < largest:
                raise LimitExceeded(f"a user of {name} already has a quota of {largest} bytes", used=largest)
        if values:
            await store.update_domain(tx, name, {**values, "updated_at": ctx.rt.clock.now()})
        record = await load_domain(tx, name)
    return shown(record)


@api.method("admin.domains.delete", http=DELETE("/domains/{name}"), access=Admin())
async def delete_domain(ctx: Context, name: DomainName) -> None:
    """Delete a domain and everything in it: users and their mail, aliases, alternatives."""
    async with ctx.rt.db.write() as tx:
        if not await store.delete_domain(tx, name):
            raise NotFound.of("domain", name)
    await revoke_safely(ctx.rt.events, Revocation("domain deleted", domain=name))
