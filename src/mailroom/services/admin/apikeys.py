"""admin.apikeys.*: API keys. Admins manage every key; users manage their own."""

from __future__ import annotations

from mailroom.auth import tokens
from mailroom.auth.authenticate import API_KEY_PREFIX
from mailroom.domain.apikeys import ApiKey, ApiKeyCreate, ApiKeyCreated
from mailroom.domain.filtering import TextFilter
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import ApiKeySort
from mailroom.errors import FieldError, Forbidden, InvalidParams, NotFound
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import DELETE, GET, POST, Authenticated, Context
from mailroom.services.admin._api import api
from mailroom.store import accounts
from mailroom.store import apikeys as store


def _out(key: store.ApiKeyRecord) -> ApiKey:
    return ApiKey(
        id=key.id,
        name=key.name,
        owner=key.owner,
        admin=key.is_admin,
        scopes=key.scopes,
        allowed_networks=key.allowed_networks,
        expires_at=key.expires_at,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def _visible(ctx: Context, key: store.ApiKeyRecord | None) -> bool:
    if key is None:
        return False
    return ctx.principal.is_admin or (key.owner_id is not None and key.owner_id == ctx.principal.user_id)


@api.method("admin.apikeys.list", http=GET("/apikeys"), access=Authenticated())
async def list_keys(
    ctx: Context,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: ApiKeySort = "created_at",
    q: TextFilter = None,
) -> Page[ApiKey]:
    """List API keys, oldest first (or by ``sort``): every key for admins, the caller's own
    otherwise; with ``q``, only those whose name or id contains it. Secrets are never shown."""
    owners = None if ctx.principal.is_admin else [ctx.principal.user_id or -1]
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, owner_ids=owners, offset=offset, limit=limit, sort=sort, q=q)
    return Page[ApiKey](items=[_out(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.apikeys.get", http=GET("/apikeys/{id}"), access=Authenticated())
async def get_key(ctx: Context, id: str) -> ApiKey:
    """Show one API key (without its secret)."""
    async with ctx.rt.db.read() as tx:
        row = await store.get(tx, id)
    if not _visible(ctx, row):
        raise NotFound.of("API key", id)
    assert row is not None
    return _out(row)


@api.method("admin.apikeys.create", http=POST("/apikeys", status=201), access=Authenticated())
async def create_key(ctx: Context, key: ApiKeyCreate) -> ApiKeyCreated:
    """Create an API key; the response carries the secret once, as ``key``.

    A user's key acts as that user, narrowed by its scopes and networks. Only global
    admins may create keys for other users or admin keys that belong to no user.
    """
    p = ctx.principal
    if p.scopes is not None and (key.scopes is None or not set(key.scopes) <= set(p.scopes)):
        raise Forbidden("a scoped key can only create keys with a subset of its own scopes")
    now = ctx.rt.clock.now()
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidParams([FieldError("key.expires_at", "must be in the future")])
    owner_id: int | None
    async with ctx.rt.db.write() as tx:
        if key.admin:
            if not p.is_admin:
                raise Forbidden("only global administrators may create admin keys")
            if key.owner is not None:
                raise InvalidParams([FieldError("key.owner", "an admin key belongs to no user")])
            owner_id = None
        elif key.owner is not None and key.owner != p.email:
            if not p.is_admin:
                raise Forbidden("only global administrators may create keys for other users")
            user = await accounts.user_for_auth(tx, email=key.owner)
            if user is None:
                raise NotFound.of("user", key.owner)
            owner_id = user.id
        elif p.user_id is not None:
            owner_id = p.user_id
        else:
            raise InvalidParams([FieldError("key.owner", "name the user the key acts as, or set admin")])
        issued = tokens.new_secret(API_KEY_PREFIX)
        await store.insert_key(
            tx,
            {
                "id": issued.lookup_id,
                "name": key.name,
                "digest": issued.digest,
                "owner_id": owner_id,
                "is_admin": key.admin,
                "scopes": key.scopes,
                "allowed_networks": key.allowed_networks,
                "expires_at": key.expires_at,
                "created_at": now,
            },
        )
        row = await store.get(tx, issued.lookup_id)
    assert row is not None
    return ApiKeyCreated(**_out(row).model_dump(), key=issued.secret)


@api.method("admin.apikeys.delete", http=DELETE("/apikeys/{id}"), access=Authenticated())
async def delete_key(ctx: Context, id: str) -> None:
    """Revoke (delete) an API key; it stops working at once."""
    async with ctx.rt.db.write() as tx:
        row = await store.get(tx, id)
        if not _visible(ctx, row):
            raise NotFound.of("API key", id)
        await store.delete_key(tx, id)
    if row is not None and row.owner_id is not None:  # connections that logged in with it end
        revocation = Revocation("API key deleted", user_id=row.owner_id, credentials=frozenset({f"key:{id}"}))
        await revoke_safely(ctx.rt.events, revocation)
