"""Creating a signed-up account: shared by ``mail.signup.create`` and ``admin.waitlist.admit``."""

from __future__ import annotations

from typing import cast

from mailroom.domain.names import normalize_address
from mailroom.domain.usernames import canonical
from mailroom.domain.users import DEFAULT_QUOTA_BYTES, UserCreate
from mailroom.errors import Conflict, FieldError, InvalidParams, LimitExceeded
from mailroom.registry import Context
from mailroom.services.admin.users import check_address_free, load_mail_domain
from mailroom.store import signups
from mailroom.store import users as users_store
from mailroom.store.engine import Tx

#: A new account gets UserCreate's defaults for every field sign-up does not ask for.
_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in UserCreate.model_fields.items()
    if name not in ("email", "password", "quota_bytes")
}


async def signup_domain(ctx: Context, tx: Tx, domain: str | None) -> str:
    """The domain a sign-up (or a bare login name) belongs to.

    An explicit domain must have sign-up enabled. Without one: the ``default_domain``
    setting, else the first domain (by name) with sign-up enabled.
    """
    if domain is None:
        domain = ctx.rt.settings.default_domain or await signups.first_signup_domain(tx)
        if domain is None:
            raise InvalidParams([FieldError("domain", "sign-up is not open on this server")])
    if not await signups.signup_open(tx, domain):
        raise InvalidParams([FieldError("domain", f"sign-up is not open on {domain}")])
    return domain


async def check_name_free(tx: Tx, domain: str, username: str) -> None:
    """A name whose canonical form is taken (or waiting) in the domain is a Conflict."""
    canon = canonical(username)
    if await signups.name_taken(tx, domain, canon):
        raise Conflict(f"the user name {username} is taken in {domain}", field="username")
    if await signups.waiting(tx, domain, canon):
        raise Conflict(f"the user name {username} is already on the waitlist of {domain}", field="username")


async def create_account(
    ctx: Context, tx: Tx, *, domain: str, username: str, password_hash: str
) -> users_store.UserRecord:
    """Create the mailbox ``<username lowercased>@<domain>`` and claim its canonical name.

    The domain's ``max_users`` applies; the quota is the domain's ``max_quota_bytes`` or the
    default. Returns the stored user (without the password hash).
    """
    email = normalize_address(f"{username}@{domain}")
    limits = await load_mail_domain(tx, email, "domain")
    if await signups.name_taken(tx, domain, canonical(username)):
        raise Conflict(f"the user name {username} is taken in {domain}", field="username")
    await check_address_free(tx, email)
    if limits.max_users is not None:
        used = await users_store.count(tx, domain)
        if used >= limits.max_users:
            raise LimitExceeded(
                f"{domain} already has {used} users, the most its max_users allows",
                limit="max_users",
                max=limits.max_users,
                used=used,
            )
    cap = limits.max_quota_bytes
    now = ctx.rt.clock.now()
    values = _DEFAULTS | {
        "email": email,
        "domain": domain,
        "password_hash": password_hash,
        "quota_bytes": cap if cap is not None else DEFAULT_QUOTA_BYTES,
        "quota_bytes_used": 0,
        "created_at": now,
        "updated_at": now,
    }
    # _DEFAULTS are UserCreate fields, all columns of users_store.NewUser.
    await users_store.insert_user(tx, cast(users_store.NewUser, values))
    user = await users_store.get(tx, email)
    assert user is not None
    await signups.claim_name(tx, domain, canonical(username), username, user.id)
    return user
