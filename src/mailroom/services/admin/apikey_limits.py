"""admin.apikeys.get_limits / set_limits: rate limits an API key carries on top of the server's."""

from __future__ import annotations

from mailroom.domain.ratelimits import KeyLimit, KeyLimits
from mailroom.errors import NotFound
from mailroom.registry import GET, PUT, Admin, Authenticated, Context
from mailroom.services.admin._api import api
from mailroom.store import apikeys, keylimits


@api.method("admin.apikeys.get_limits", http=GET("/apikeys/{id}/limits"), access=Authenticated())
async def get_limits(ctx: Context, id: str) -> KeyLimits:
    """The key's own rate limits (its owner and admins may read them)."""
    p = ctx.principal
    async with ctx.rt.db.read() as tx:
        key = await apikeys.get(tx, id)
        visible = key is not None and (p.is_admin or (key.owner_id is not None and key.owner_id == p.user_id))
        if not visible:
            raise NotFound.of("API key", id)
        limits = await keylimits.get(tx, id)
    return KeyLimits(limits=[KeyLimit(limit=item.limit, methods=item.methods) for item in limits])


@api.method("admin.apikeys.set_limits", http=PUT("/apikeys/{id}/limits"), access=Admin())
async def set_limits(ctx: Context, id: str, limits: KeyLimits) -> KeyLimits:
    """Replace the key's own rate limits (an empty list removes them). Admins only.

    Each limit applies per key, to the methods its glob matches, on top of the server's rules;
    calls spend their method's cost.
    """
    async with ctx.rt.db.write() as tx:
        if await apikeys.get(tx, id) is None:
            raise NotFound.of("API key", id)
        stored = [keylimits.KeyLimitRecord(limit=item.limit, methods=item.methods) for item in limits.limits]
        await keylimits.replace(tx, id, stored, ctx.rt.clock.now())
    if ctx.rt.accounting is not None:
        ctx.rt.accounting.rate_limits.forget_key(id)
    return limits
