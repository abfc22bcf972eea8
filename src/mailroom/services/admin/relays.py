"""admin.relays.*: relayed domains, whose mail mailroom accepts and passes on. Global admins only."""

from __future__ import annotations

from typing import cast

from mailroom.domain.filtering import TextFilter
from mailroom.domain.names import DomainName
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.relays import Relay, RelayCreate, RelayUpdate
from mailroom.domain.sorting import RelaySort
from mailroom.errors import NotFound
from mailroom.registry import DELETE, GET, PATCH, POST, Admin, Context
from mailroom.services.admin._api import api
from mailroom.services.admin.domains import check_name_free
from mailroom.store import relays as store
from mailroom.store.engine import Tx


async def _load(tx: Tx, name: str) -> store.RelayRecord:
    record = await store.get(tx, name)
    if record is None:
        raise NotFound.of("relay", name)
    return record


def _shown(record: store.RelayRecord) -> Relay:
    return Relay.model_validate(record, from_attributes=True)


@api.method("admin.relays.list", http=GET("/relays"), access=Admin())
async def list_relays(
    ctx: Context,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: RelaySort = "name",
    q: TextFilter = None,
) -> Page[Relay]:
    """List relayed domains by name (or ``sort``); with ``q``, only those whose name or
    smarthost contains it."""
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, offset=offset, limit=limit, sort=sort, q=q)
    return Page[Relay](items=[_shown(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.relays.get", http=GET("/relays/{name}"), access=Admin())
async def get_relay(ctx: Context, name: DomainName) -> Relay:
    """Show one relayed domain."""
    async with ctx.rt.db.read() as tx:
        return _shown(await _load(tx, name))


@api.method("admin.relays.create", http=POST("/relays", status=201), access=Admin())
async def create_relay(ctx: Context, relay: RelayCreate) -> Relay:
    """Relay a domain: accept its mail and pass it to ``smarthost`` (or to its MX when empty).

    Its name must not be used by a domain, an alternative domain or another relay.
    """
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        await check_name_free(tx, relay.name)
        await store.insert_relay(
            tx,
            {
                "name": relay.name,
                "smarthost": relay.smarthost,
                "comment": relay.comment,
                "created_at": now,
                "updated_at": now,
            },
        )
        record = await _load(tx, relay.name)
    return _shown(record)


@api.method("admin.relays.update", http=PATCH("/relays/{name}"), access=Admin())
async def update_relay(ctx: Context, name: DomainName, changes: RelayUpdate) -> Relay:
    """Change a relay's smarthost or comment; absent or null fields stay as they are."""
    # The RelayUpdate fields are the RelayChanges keys but updated_at, with the same types.
    values = cast(store.RelayChanges, changes.model_dump(exclude_none=True))
    async with ctx.rt.db.write() as tx:
        await _load(tx, name)
        if values:
            await store.update_relay(tx, name, {**values, "updated_at": ctx.rt.clock.now()})
        record = await _load(tx, name)
    return _shown(record)


@api.method("admin.relays.delete", http=DELETE("/relays/{name}"), access=Admin())
async def delete_relay(ctx: Context, name: DomainName) -> None:
    """Stop relaying a domain; its name becomes free for a domain, alternative or relay."""
    async with ctx.rt.db.write() as tx:
        if not await store.delete_relay(tx, name):
            raise NotFound.of("relay", name)
