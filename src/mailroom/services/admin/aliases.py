"""admin.aliases.*: aliases, wildcard aliases and catch-alls, local or external destinations."""

from __future__ import annotations

from datetime import UTC
from typing import cast

from mailroom.domain.aliases import Alias, AliasCreate, AliasUpdate, alias_problems
from mailroom.domain.filtering import TextFilter
from mailroom.domain.names import AliasAddress, DomainName, domain_of
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import AliasSort
from mailroom.errors import Conflict, FieldError, InvalidParams, LimitExceeded, NotFound
from mailroom.registry import DELETE, GET, PATCH, POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.domains import load_domain
from mailroom.store import aliases as store
from mailroom.store import alternatives
from mailroom.store.engine import Tx

_HOLDER = {"user": "a user", "alias": "an alias"}


def _check(problems: dict[str, str], locs: dict[str, str]) -> None:
    if problems:
        raise InvalidParams([FieldError(locs[field], message) for field, message in problems.items()])


async def _load(tx: Tx, address: str) -> store.AliasRecord:
    record = await store.get(tx, address)
    if record is None:
        raise NotFound.of("alias", address)
    return record


def _shown(record: store.AliasRecord) -> Alias:
    return Alias.model_validate(record, from_attributes=True)


async def _check_domain(tx: Tx, address: str, domain: str, kind: str | None) -> None:
    """An alias may live in a real domain (its address's), not in an alternative or a relay.

    ``kind``: the kind of name ``domain`` is, as ``domains.name_kind`` says."""
    if kind is None:
        # Worded as the access policy words a domain the caller may not see, so that a
        # manager cannot tell a missing domain from someone else's.
        raise NotFound.of("domain", domain)
    if kind == "alternative":
        alternative = await alternatives.get(tx, domain)
        owner = alternative.domain if alternative else "its domain"
        reason = f"{domain} is an alternative name of {owner}: create the alias in {owner}, it covers both"
        raise InvalidParams([FieldError("alias.address", reason)])
    if kind == "relay":
        reason = (
            f"{domain} is a relayed domain: its mail is passed on, not delivered here, so it has no aliases"
        )
        raise InvalidParams([FieldError("alias.address", reason)])


@api.method("admin.aliases.list", http=GET("/aliases"), access=Manager("domain"))
async def list_aliases(
    ctx: Context,
    domain: DomainName | None = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: AliasSort = "address",
    q: TextFilter = None,
) -> Page[Alias]:
    """List aliases by address (or ``sort``), optionally those of one domain, and with ``q``
    only those whose address contains it.

    Global administrators see every alias; domain managers see the aliases of the domains
    they manage.
    """
    async with ctx.rt.db.read() as tx:
        if domain is not None:
            await load_domain(tx, domain)
            only: frozenset[str] | None = frozenset({domain})
        else:
            only = None if ctx.principal.is_admin else ctx.principal.managed_domains
        rows, total = await store.page(tx, domains_in=only, offset=offset, limit=limit, sort=sort, q=q)
    return Page[Alias](items=[_shown(r) for r in rows], total=total, offset=offset, limit=limit)


@api.method("admin.aliases.get", http=GET("/aliases/{address}"), access=Manager("address", kind="alias"))
async def get_alias(ctx: Context, address: AliasAddress) -> Alias:
    """Show one alias; a wildcard alias is named by its pattern (``*@example.org``)."""
    async with ctx.rt.db.read() as tx:
        return _shown(await _load(tx, address))


@api.method("admin.aliases.create", http=POST("/aliases", status=201), access=Manager("alias.address"))
async def create_alias(ctx: Context, alias: AliasCreate) -> Alias:
    """Create an alias in a domain (not in an alternative or relayed domain).

    The address must not belong to a user or another alias (``conflict``), and the domain's
    ``max_aliases`` must allow one more (``limit_exceeded``). A ``*`` in the local part needs
    ``wildcard: true``; an alias may not list itself as a destination.
    """
    _check(
        alias_problems(alias.address, wildcard=alias.wildcard, destinations=alias.destinations),
        {"address": "alias.address", "wildcard": "alias.wildcard", "destinations": "alias.destinations"},
    )
    now = ctx.rt.clock.now()
    domain = domain_of(alias.address)
    async with ctx.rt.db.write() as tx:
        state = await store.before_create(tx, alias.address, domain)
        await _check_domain(tx, alias.address, domain, state.domain_kind)
        holder = state.holder
        if holder is not None:
            raise Conflict(
                f"{alias.address} is already {_HOLDER.get(holder, 'in use')}",
                address=alias.address,
                kind=holder,
            )
        limit = await store.alias_limit(tx, domain, known=state)
        if limit is not None:
            used = await store.count(tx, domain)
            if used >= limit:
                raise LimitExceeded(f"{domain} may have at most {limit} aliases", limit=limit, used=used)
        values = alias.model_dump()
        await store.insert_alias(
            tx,
            {
                "address": alias.address,
                "domain": domain,
                "destinations": alias.destinations,
                "wildcard": alias.wildcard,
                "comment": alias.comment,
                "created_at": now,
                "updated_at": now,
            },
        )
    # What was stored, as a read would give it back (timestamps come back in UTC): no re-read.
    stored = now.astimezone(UTC)
    return Alias.model_validate(values | {"created_at": stored, "updated_at": stored})


@api.method("admin.aliases.update", http=PATCH("/aliases/{address}"), access=Manager("address", kind="alias"))
async def update_alias(ctx: Context, address: AliasAddress, changes: AliasUpdate) -> Alias:
    """Change an alias's destinations or comment; absent or null fields stay as they are."""
    # The AliasUpdate fields are the AliasChanges keys but updated_at, with the same types.
    values = cast(store.AliasChanges, changes.model_dump(exclude_none=True))
    _check(
        alias_problems(
            address, wildcard="*" in address.rpartition("@")[0], destinations=changes.destinations
        ),
        {"destinations": "changes.destinations"},
    )
    async with ctx.rt.db.write() as tx:
        await _load(tx, address)
        if values:
            # An alias an administrator changed is theirs: the directory no longer removes it.
            changed: store.AliasChanges = {**values, "updated_at": ctx.rt.clock.now(), "directory_user": None}
            await store.update_alias(tx, address, changed)
        record = await _load(tx, address)
    return _shown(record)


@api.method(
    "admin.aliases.delete", http=DELETE("/aliases/{address}"), access=Manager("address", kind="alias")
)
async def delete_alias(ctx: Context, address: AliasAddress) -> None:
    """Delete an alias; its address becomes free for a user or another alias."""
    async with ctx.rt.db.write() as tx:
        if not await store.delete_alias(tx, address):
            raise NotFound.of("alias", address)
