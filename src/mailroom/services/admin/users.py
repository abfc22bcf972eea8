"""admin.users.*: mailboxes, their quotas, forwarding, auto-reply and spam settings.

Managers act on the users of their domains, admins on every user, and a user on their own
mailbox within :data:`~mailroom.domain.users.SELF_SERVICE_FIELDS`. Passwords are hashed
before the write transaction opens (argon2 is slow on purpose; the write lock is shared)
and are never returned or logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import cast

from pydantic import SecretStr

from mailroom.auth.principal import Principal
from mailroom.domain.directory import DIRECTORY_SOURCE, NO_PASSWORD, directory_password_error
from mailroom.domain.filtering import TextFilter
from mailroom.domain.names import DomainName, EmailAddress, domain_of
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import UserSort
from mailroom.domain.users import (
    DEFAULT_QUOTA_BYTES,
    SELF_SERVICE_FIELDS,
    User,
    UserCreate,
    UserUpdate,
    rule_errors,
)
from mailroom.errors import Conflict, FieldError, Forbidden, InvalidParams, LimitExceeded, NotFound
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import DELETE, GET, PATCH, POST, Context, Manager, Owner
from mailroom.runtime import Runtime
from mailroom.services.admin._api import api
from mailroom.store import addresses
from mailroom.store import domains as domains_store
from mailroom.store import users as store
from mailroom.store.engine import Tx

ADDRESS_HOLDER = {"user": "a user", "alias": "an alias"}
#: Fields only global administrators may set: a domain manager could otherwise make someone
#: an administrator, or let them send as any address of any tenant (delivery/senders.py).
ADMIN_ONLY_FIELDS = ("global_admin", "allow_spoofing")


async def load_user(tx: Tx, email: str) -> store.UserRecord:
    """The stored user, or the ``NotFound`` a caller who may not see them also gets."""
    record = await store.get(tx, email)
    if record is None:
        raise NotFound.of("user", email)
    return record


def shown(record: store.UserRecord) -> User:
    return User.model_validate(record, from_attributes=True)


async def load_mail_domain(tx: Tx, email: str, loc: str) -> store.MailDomainLimits:
    """The limits of the domain a mailbox lives in: a real domain, not an alternative or a relay.

    The domain row stays locked until the transaction ends, so that limits checked against
    it hold when the transaction commits.
    """
    name = domain_of(email)
    row = await store.lock_domain(tx, name)
    if row is not None:
        return row
    kind = await domains_store.name_kind(tx, name)
    if kind == "alternative":
        raise InvalidParams(
            [FieldError(loc, f"{name} is an alternative name of another domain: create the mailbox there")]
        )
    if kind == "relay":
        raise InvalidParams([FieldError(loc, f"{name} is relayed to another server: no mailboxes live here")])
    # Worded as the access policy (Manager("user.email")) words a domain the caller may not
    # see, so that a manager cannot tell a missing domain from someone else's.
    raise NotFound.of("domain", name)


async def check_address_free(tx: Tx, email: str) -> None:
    """An address belongs to one user or one alias; say which already holds it."""
    kind = await addresses.kind_of(tx, email)
    if kind is not None:
        raise Conflict(f"{email} is already {ADDRESS_HOLDER.get(kind, 'in use')}", address=email, kind=kind)


def check_quota(domain: store.MailDomainLimits, quota: int) -> None:
    """A mailbox's quota may not exceed its domain's ``max_quota_bytes``."""
    cap = domain.max_quota_bytes
    if cap is not None and quota > cap:
        raise LimitExceeded(
            f"a quota of {quota} bytes is more than {domain.name} allows a mailbox ({cap} bytes)",
            limit="max_quota_bytes",
            max=cap,
            requested=quota,
        )


def check_admin_only(principal: Principal, fields: list[str]) -> None:
    """Refuse, naming them, :data:`ADMIN_ONLY_FIELDS` set by anyone but a global admin."""
    if fields and not principal.is_admin:
        raise Forbidden(f"only global administrators may set {', '.join(fields)}", fields=fields)


def check_may_change(principal: Principal, email: str, fields: Iterable[str]) -> None:
    """Refuse, naming them, the fields the caller may not change on this user."""
    fields = set(fields)
    if principal.can_manage(domain_of(email)):
        check_admin_only(principal, [f for f in ADMIN_ONLY_FIELDS if f in fields])
        return
    refused = sorted(fields - SELF_SERVICE_FIELDS)
    if refused and set(refused) <= set(ADMIN_ONLY_FIELDS):
        check_admin_only(principal, refused)
    if refused:
        raise Forbidden(
            f"only managers of {domain_of(email)} and admins may change {', '.join(refused)}", fields=refused
        )


def check_may_administer(principal: Principal, user: store.UserRecord) -> None:
    """A domain manager cannot take over (change or delete) a global administrator."""
    if user.global_admin and not principal.is_admin and principal.email != user.email:
        raise Forbidden("only global administrators may change or delete a global administrator")


async def hash_password(ctx: Context, password: SecretStr) -> str:
    """argon2id in a worker thread: it takes tens of milliseconds and releases the GIL."""
    return await asyncio.to_thread(ctx.rt.passwords.hash, password.get_secret_value())


_UserPage = Page[User]  # parametrised once, not per call


@api.method("admin.users.list", http=GET("/users"), access=Manager("domain"))
async def list_users(
    ctx: Context,
    domain: DomainName | None = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: UserSort = "email",
    q: TextFilter = None,
) -> Page[User]:
    """List users by address (or ``sort``): every user for admins, the users of their domains
    for managers; with ``q``, only those whose address or display name contains it.

    ``domain`` limits the list to one domain; a domain the caller does not manage is
    ``not_found``, as if it did not exist.
    """
    p = ctx.principal
    async with ctx.rt.db.read() as tx:
        only: frozenset[str] | list[str] | None
        if domain is not None:
            if await domains_store.get(tx, domain) is None:
                raise NotFound.of("domain", domain)
            only = [domain]
        else:
            only = None if p.is_admin else p.managed_domains
        items, total = await store.page(
            tx, domains=only, offset=offset, limit=limit, cache=user_cache(ctx.rt), sort=sort, q=q
        )
    return _UserPage.model_construct(items=items, total=total, offset=offset, limit=limit)


@api.method("admin.users.get", http=GET("/users/{email}"), access=Owner("email"))
async def get_user(ctx: Context, email: EmailAddress) -> User:
    """Show one user: to themselves, to managers of their domain and to admins."""
    async with ctx.rt.db.read() as tx:
        user = await store.get_user(tx, email, user_cache(ctx.rt))
    if user is None:
        raise NotFound.of("user", email)
    return user


def user_cache(rt: Runtime) -> store.UserCache | None:
    """This process's users by row version, shared by list and get (setting
    ``render_cache_entries``; None when it is 0). Made on first use."""
    cache = rt.user_cache
    if cache is None and rt.settings.render_cache_entries > 0:
        cache = rt.user_cache = store.UserCache(rt.settings.render_cache_entries)
    return cache


@api.method("admin.users.create", http=POST("/users", status=201), access=Manager("user.email"))
async def create_user(ctx: Context, user: UserCreate) -> User:
    """Create a mailbox in an existing domain (the part of the address after @).

    The address must not be held by another user or an alias (``conflict``). The domain's
    ``max_users`` and ``max_quota_bytes`` apply (``limit_exceeded``); the quota defaults to
    the domain's ``max_quota_bytes``, or 1 GiB when the domain has no cap. Only global
    administrators may create global administrators or users with ``allow_spoofing``.
    """
    check_admin_only(ctx.principal, [f for f in ADMIN_ONLY_FIELDS if getattr(user, f)])
    values = user.model_dump(exclude={"password"})
    errors = rule_errors(user.email, values, "user.")
    if errors:
        raise InvalidParams(errors)
    name = domain_of(user.email)
    password_hash = await hash_password(ctx, user.password)
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        domain = await load_mail_domain(tx, user.email, "user.email")
        await check_address_free(tx, user.email)
        if domain.max_users is not None:
            used = await store.count(tx, name)
            if used >= domain.max_users:
                raise LimitExceeded(
                    f"{name} already has {used} users, the most its max_users allows",
                    limit="max_users",
                    max=domain.max_users,
                    used=used,
                )
        if values["quota_bytes"] is None:
            cap = domain.max_quota_bytes
            values["quota_bytes"] = cap if cap is not None else DEFAULT_QUOTA_BYTES
        check_quota(domain, values["quota_bytes"])
        values |= {
            "domain": name,
            "password_hash": password_hash,
            "quota_bytes_used": 0,
            "created_at": now,
            "updated_at": now,
        }
        # UserCreate's fields but the password are NewUser keys; the rest were just added.
        await store.insert_user(tx, cast(store.NewUser, values))
        record = await load_user(tx, user.email)
    return shown(record)


@api.method("admin.users.update", http=PATCH("/users/{email}"), access=Owner("email"))
async def update_user(ctx: Context, email: EmailAddress, changes: UserUpdate) -> User:
    """Change a user; absent fields stay as they are.

    Users may change their own password, display name, forwarding, auto-reply and spam
    settings; quota, enabling, services and ``change_pw_next_login`` are for managers of the
    domain and admins (``forbidden`` names the refused fields), and ``global_admin`` and
    ``allow_spoofing`` (send as any address) for global admins. A user who sets their own
    password no longer has to change it at next login.
    """
    p = ctx.principal
    values = changes.model_dump(exclude_unset=True)
    check_may_change(p, email, values)
    if "auth_source" in values:
        check_admin_only(p, ["auth_source"])
    password: SecretStr | None = values.pop("password", None)
    password_hash = await hash_password(ctx, password) if password is not None else None
    async with ctx.rt.db.write() as tx:
        record = await load_user(tx, email)
        check_may_administer(p, record)
        source = values.get("auth_source", record.auth_source)
        if password_hash is not None and source == DIRECTORY_SOURCE:
            raise directory_password_error(email)
        if source != record.auth_source:
            if source == DIRECTORY_SOURCE:
                values["password_hash"] = NO_PASSWORD  # forgotten: the directory checks it now
            elif password_hash is None:
                raise InvalidParams(
                    [FieldError("changes.password", "a local user needs a password: give one")]
                )
        errors = rule_errors(email, dataclasses.asdict(record) | values, "changes.")
        if errors:
            raise InvalidParams(errors)
        if "quota_bytes" in values:
            check_quota(await load_mail_domain(tx, email, "email"), values["quota_bytes"])
        if password_hash is not None:
            values["password_hash"] = password_hash
            if p.email == email and "change_pw_next_login" not in values:
                values["change_pw_next_login"] = False
        if values:
            await store.update_user(
                tx,
                email,
                # UserUpdate's fields (its password popped) are UserChanges keys.
                cast(store.UserChanges, values | {"updated_at": ctx.rt.clock.now()}),
            )
            record = await load_user(tx, email)
    for revocation in access_ended(record.id, values):
        await revoke_safely(ctx.rt.events, revocation)
    return shown(record)


#: The per-protocol flags and the open connections they cut when turned off.
SERVICE_PROTOCOLS = {"enable_imap": "imap", "enable_pop": "pop3", "enable_smtp": "smtp"}


def access_ended(user_id: int, values: dict[str, object]) -> list[Revocation]:
    """The open connections a change cuts (docs/auth.md, "Everywhere"): all of them when the
    user is disabled; a protocol's when its flag is turned off; those that logged in with the
    password or a session token when the password changes or the directory takes it over."""
    if values.get("enabled") is False:
        return [Revocation("account disabled", user_id=user_id)]
    out = []
    off = frozenset(p for flag, p in SERVICE_PROTOCOLS.items() if values.get(flag) is False)
    if off:
        out.append(Revocation("service disabled for this account", user_id=user_id, protocols=off))
    if "password_hash" in values:
        out.append(
            Revocation("password changed", user_id=user_id, credentials=frozenset({"password", "session"}))
        )
    return out


@api.method("admin.users.delete", http=DELETE("/users/{email}"), access=Manager("email", kind="user"))
async def delete_user(ctx: Context, email: EmailAddress) -> None:
    """Delete a mailbox and free its address; its API keys and manager roles go with it."""
    async with ctx.rt.db.write() as tx:
        record = await load_user(tx, email)
        check_may_administer(ctx.principal, record)
        await store.delete_user(tx, email)
    await revoke_safely(ctx.rt.events, Revocation("account deleted", user_id=record.id))
