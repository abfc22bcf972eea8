"""admin.invites.*: invite tokens for mail client sign-up (``reg_token``).

A token belongs to one domain and creates up to ``max_uses`` accounts there until it
expires. Admins manage every invite; domain managers the invites of their domains. Only
the token's SHA-256 digest is stored: it is shown once, in the answer to create.
"""

from __future__ import annotations

from mailroom.auth import tokens
from mailroom.domain.invites import Invite, InviteCreate, InviteCreated
from mailroom.domain.names import DomainName
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.errors import FieldError, InvalidParams, NotFound
from mailroom.registry import DELETE, GET, POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.store import domains as domains_store
from mailroom.store import signups as store

INVITE_PREFIX = "mi"


def _shown(invite: store.InviteRecord) -> Invite:
    return Invite.model_validate(invite, from_attributes=True)


@api.method("admin.invites.create", http=POST("/invites", status=201), access=Manager("invite.domain"))
async def create_invite(ctx: Context, invite: InviteCreate) -> InviteCreated:
    """Create an invite token; the answer carries it once, as ``token``."""
    now = ctx.rt.clock.now()
    if invite.expires_at is not None and invite.expires_at <= now:
        raise InvalidParams([FieldError("invite.expires_at", "must be in the future")])
    issued = tokens.new_secret(INVITE_PREFIX)
    async with ctx.rt.db.write() as tx:
        if await domains_store.get(tx, invite.domain) is None:
            raise NotFound.of("domain", invite.domain)
        await store.insert_invite(
            tx,
            {
                "id": issued.lookup_id,
                "digest": issued.digest,
                "domain": invite.domain,
                "max_uses": invite.max_uses,
                "uses": 0,
                "expires_at": invite.expires_at,
                "comment": invite.comment,
                "created_by": ctx.principal.label,
                "created_at": now,
            },
        )
        row = await store.get_invite(tx, issued.lookup_id)
    assert row is not None
    return InviteCreated(**_shown(row).model_dump(), token=issued.secret)


@api.method("admin.invites.list", http=GET("/invites"), access=Manager("domain"))
async def list_invites(
    ctx: Context, domain: DomainName | None = None, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[Invite]:
    """List invites, oldest first: all for admins, those of their domains for managers."""
    p = ctx.principal
    only = [domain] if domain is not None else (None if p.is_admin else p.managed_domains)
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page_invites(tx, domains=only, offset=offset, limit=limit)
    return Page[Invite](items=[_shown(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.invites.delete", http=DELETE("/invites/{id}"), access=Manager())
async def delete_invite(ctx: Context, id: str) -> None:
    """Withdraw an invite: its token stops working; accounts it created stay."""
    async with ctx.rt.db.write() as tx:
        row = await store.get_invite(tx, id)
        if row is None or not ctx.principal.can_manage(row.domain):
            raise NotFound.of("invite", id)
        await store.delete_invite(tx, id)
