"""admin.audit.*: the audit log of changes made through the admin API and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mailroom.domain.audit import AuditEntry
from mailroom.domain.names import DomainName
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import AuditSort
from mailroom.errors import NotFound
from mailroom.registry import GET, Context, Manager
from mailroom.services.admin._api import api
from mailroom.store import audit as store


@api.method("admin.audit.list", http=GET("/audit"), access=Manager())
async def list_entries(
    ctx: Context,
    from_: Annotated[
        datetime | None, Field(alias="from", description="Entries at or after this time.")
    ] = None,
    to: Annotated[datetime | None, Field(description="Entries before this time.")] = None,
    method: Annotated[
        str | None, Field(max_length=200, description="A method name, * as a wildcard.")
    ] = None,
    principal: Annotated[str | None, Field(max_length=320, description="Who made the change.")] = None,
    target: Annotated[str | None, Field(max_length=400, description="What was changed.")] = None,
    domain: Annotated[DomainName | None, Field(description="Changes in this mail domain.")] = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: AuditSort = "-at",
) -> Page[AuditEntry]:
    """Changes made through the admin API and the CLI, newest first (or by ``sort``), with
    before/after diffs.

    Admins read every entry; domain managers read the entries of their domains.
    """
    p = ctx.principal
    only = None if p.is_admin else sorted(p.managed_domains)
    if domain is not None and only is not None and domain not in only:
        raise NotFound.of("domain", domain)
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(
            tx,
            domains=only,
            start=from_,
            end=to,
            method=method,
            principal=principal,
            target=target,
            domain=domain,
            offset=offset,
            limit=limit,
            sort=sort,
        )
    return Page[AuditEntry](
        items=[AuditEntry.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        offset=offset,
        limit=limit,
    )
