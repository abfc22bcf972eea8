"""admin.alternatives.*: other names of a domain, sharing its users and aliases."""

from __future__ import annotations

from mailroom.domain.alternatives import Alternative, AlternativeCreate
from mailroom.domain.names import DomainName
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.errors import NotFound
from mailroom.registry import DELETE, GET, POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.domains import check_name_free, load_domain
from mailroom.store import alternatives as store


@api.method("admin.alternatives.list", http=GET("/domains/{domain}/alternatives"), access=Manager("domain"))
async def list_alternatives(
    ctx: Context, domain: DomainName, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[Alternative]:
    """List a domain's alternative names, by name."""
    async with ctx.rt.db.read() as tx:
        await load_domain(tx, domain)
        rows, total = await store.page(tx, domain, offset=offset, limit=limit)
    items = [Alternative.model_validate(r, from_attributes=True) for r in rows]
    return Page[Alternative](items=items, total=total, offset=offset, limit=limit)


@api.method(
    "admin.alternatives.create",
    http=POST("/domains/{domain}/alternatives", status=201),
    access=Manager("domain"),
)
async def create_alternative(ctx: Context, domain: DomainName, alternative: AlternativeCreate) -> Alternative:
    """Give a domain another name: mail to user@alternative goes to user@domain.

    The name must not be used by a domain, another alternative or a relay (``conflict``).
    """
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)
        await check_name_free(tx, alternative.name)
        values: store.NewAlternative = {
            "name": alternative.name,
            "comment": alternative.comment,
            "domain": domain,
            "created_at": ctx.rt.clock.now(),
        }
        await store.insert_alternative(tx, values)
        record = await store.get(tx, alternative.name)
    return Alternative.model_validate(record, from_attributes=True)


@api.method(
    "admin.alternatives.delete",
    http=DELETE("/domains/{domain}/alternatives/{name}"),
    access=Manager("domain"),
)
async def delete_alternative(ctx: Context, domain: DomainName, name: DomainName) -> None:
    """Remove an alternative name from a domain; the name becomes free again."""
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)
        if not await store.delete_alternative(tx, domain, name):
            raise NotFound.of("alternative domain", name)
