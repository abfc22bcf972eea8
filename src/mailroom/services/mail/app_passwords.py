"""mail.app_passwords.*: passwords for mail clients, each good only on the protocols it names.

An app password is a generated ``mrapp_<id>_<random>`` secret (256 random bits), shown once
and stored as its SHA-256 digest: a slow password hash such as argon2 guards guessable human
passwords, but nobody brute-forces 256 random bits, and a fast digest keeps every IMAP or
SMTP login cheap (auth/tokens.py says the same of API keys and sessions). It logs in to the
mail protocols it names (SMTP submission, IMAP, POP3, JMAP, DAV, through
:meth:`Authenticator.basic <mailroom.auth.authenticate.Authenticator.basic>` with the
protocol), never to the web or API login; with a second factor on, it is how mail clients log
in at all. Revoking one takes effect at the next login on every protocol (not cached).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailroom.auth import tokens
from mailroom.auth.authenticate import APP_PASSWORD_PREFIX
from mailroom.domain.identity import AppPassword, AppPasswordCreate, AppPasswordIssued
from mailroom.errors import LimitExceeded, NotFound
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import DELETE, GET, POST, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.store import identity as store

#: At most this many app passwords per user (each is a standing credential).
MAX_APP_PASSWORDS = 50


@api.method(
    "mail.app_passwords.create",
    http=POST("/me/app-passwords", status=201),
    access=UserSelf(),
    examples=[{"app_password": {"name": "Thunderbird at home", "protocols": ["smtp", "imap"]}}],
)
async def create_app_password(ctx: Context, app_password: AppPasswordCreate) -> AppPasswordIssued:
    """Make an app password for a mail client; ``password`` is shown this once."""
    p = ctx.principal
    assert p.user_id is not None
    protocols = sorted(set(app_password.protocols))
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        if len(await store.app_passwords_of(tx, p.user_id)) >= MAX_APP_PASSWORDS:
            raise LimitExceeded(f"at most {MAX_APP_PASSWORDS} app passwords; revoke one first")
        issued = tokens.new_secret(APP_PASSWORD_PREFIX)
        while await store.app_password_exists(tx, issued.lookup_id):  # rare: 47-bit ids
            issued = tokens.new_secret(APP_PASSWORD_PREFIX)
        await store.insert_app_password(
            tx,
            {
                "id": issued.lookup_id,
                "user_id": p.user_id,
                "name": app_password.name,
                "protocols": protocols,
                "digest": issued.digest,
                "created_at": now,
            },
        )
    return AppPasswordIssued(
        id=issued.lookup_id,
        name=app_password.name,
        protocols=protocols,
        created_at=now,
        password=issued.secret,
    )


@api.method("mail.app_passwords.list", http=GET("/me/app-passwords"), access=UserSelf())
async def list_app_passwords(ctx: Context) -> list[AppPassword]:
    """The caller's app passwords: name, protocols, created, last used and from where (no secret)."""
    assert ctx.principal.user_id is not None
    async with ctx.rt.db.read() as tx:
        rows = await store.app_passwords_of(tx, ctx.principal.user_id)
    return [AppPassword.model_validate(r, from_attributes=True) for r in rows]


@api.method("mail.app_passwords.revoke", http=DELETE("/me/app-passwords/{id}"), access=UserSelf())
async def revoke_app_password(ctx: Context, id: Annotated[str, Field(max_length=16)]) -> None:
    """Revoke one of the caller's app passwords: the next login with it fails, on every protocol."""
    assert ctx.principal.user_id is not None
    async with ctx.rt.db.write() as tx:
        if not await store.delete_app_password(tx, id, ctx.principal.user_id):
            raise NotFound.of("app password", id)
    revocation = Revocation(
        "app password revoked", user_id=ctx.principal.user_id, credentials=frozenset({f"app:{id}"})
    )
    await revoke_safely(ctx.rt.events, revocation)
