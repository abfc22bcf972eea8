"""mail.signup.*: people creating their own mailbox, with an invite or through the waitlist.

User names are 2-32 characters of ``[a-zA-Z0-9_.]`` (no leading, trailing or double dots);
uniqueness ignores dots and case (:mod:`mailroom.domain.usernames`); reserved names are
refused; only domains with ``signup_enabled`` take sign-ups. With a valid invite token the
account is created at once (201); without one the person joins the domain's waitlist (202)
and an administrator or domain manager admits them later (``admin.waitlist.admit``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import AfterValidator, Field

from mailroom.auth import tokens
from mailroom.domain.names import DomainName, normalize_address
from mailroom.domain.sessions import SignupResult
from mailroom.domain.usernames import USERNAME_MAX, USERNAME_MIN, canonical, check_username
from mailroom.domain.users import Password
from mailroom.errors import FieldError, InvalidParams
from mailroom.registry import POST, Context, Public
from mailroom.services.admin.invites import INVITE_PREFIX
from mailroom.services.mail._accounts import check_name_free, create_account, signup_domain
from mailroom.services.mail._api import api
from mailroom.store import signups
from mailroom.store.engine import Tx

Username = Annotated[
    str,
    Field(
        min_length=USERNAME_MIN,
        max_length=USERNAME_MAX,
        description="Letters, digits, '_' and '.'; unique regardless of dots and case.",
        examples=["john.smith"],
    ),
    AfterValidator(check_username),
]
InviteToken = Annotated[str, Field(min_length=1, max_length=300, description="An invite token (mi_...).")]


async def check_invite(ctx: Context, tx: Tx, token: str, domain: str) -> None:
    """Use one of the invite's uses, or refuse it without saying why (invalid, expired, used up)."""
    refused = InvalidParams([FieldError("reg_token", "invalid, expired or used-up invitation")])
    invite_id = tokens.parse_secret(token, INVITE_PREFIX)
    if invite_id is None:
        raise refused
    row = await signups.invite_for_auth(tx, invite_id)
    if row is None or not tokens.matches(token, row.digest) or row.domain != domain:
        raise refused
    if row.expires_at is not None and row.expires_at <= ctx.rt.clock.now():
        raise refused
    if not await signups.use_invite(tx, invite_id):
        raise refused


@api.method(
    "mail.signup.create",
    http=POST("/signup", status=201, also=(202,)),
    access=Public(),
    examples=[{"username": "john.smith", "password": "correct horse battery staple"}],
)
async def signup(
    ctx: Context,
    username: Username,
    password: Password,
    domain: DomainName | None = None,
    reg_token: InviteToken | None = None,
) -> SignupResult:
    """Sign up for a mailbox: created with a valid ``reg_token`` (201), else waitlisted (202).

    ``domain`` defaults to the ``default_domain`` setting, else the first domain with sign-up
    enabled. The address is the user name lowercased, at the domain; ``john.smith`` and
    ``JohnSmith`` are the same name, so the second is a ``conflict``. The password is hashed
    with argon2id whatever the client sent (clients that pre-hash with SHA-512 included).
    """
    password_hash = await asyncio.to_thread(ctx.rt.passwords.hash, password.get_secret_value())
    async with ctx.rt.db.write() as tx:
        name = await signup_domain(ctx, tx, domain)
        email = normalize_address(f"{username}@{name}")
        await check_name_free(tx, name, username)
        if reg_token is not None:
            await check_invite(ctx, tx, reg_token, name)
            await create_account(ctx, tx, domain=name, username=username, password_hash=password_hash)
            return SignupResult(status="created", username=username, email=email)
        entry_id = await signups.join_waitlist(
            tx,
            {
                "domain": name,
                "canonical": canonical(username),
                "spelling": username,
                "password_hash": password_hash,
                "created_at": ctx.rt.clock.now(),
            },
        )
        position = await signups.position(tx, entry_id, name)
    ctx.call.status = 202
    return SignupResult(status="waitlisted", username=username, email=email, position=position)
