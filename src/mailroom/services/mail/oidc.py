"""mail.sessions.login_oidc: a session from an OpenID Connect login (docs/auth.md).

The web app's callback (``/web/oidc/callback``) calls it with the authorization code, the
PKCE verifier and the nonce of the login it started; a native client that ran the
authorization request itself may call it the same way. The code is exchanged at the
provider's token endpoint (with this server's client secret), the ID token is checked
(signature, issuer, audience, expiry, nonce), its address must be an existing, enabled
mailbox in an allowed domain, and the answer is the same session a password login makes.

With ``oidc_admin_group`` / ``oidc_manager_claim`` set, the provider decides the user's
admin flag and managed domains: they are written at each login, so the session (checked
against the database on every request) carries them.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field, SecretStr

from mailroom.auth.oidc.claims import OidcIdentity, email_of, identity_of
from mailroom.auth.oidc.client import OidcClient
from mailroom.auth.oidc.users import existing_domains, principal_of, user_of
from mailroom.domain.sessions import LoginResult
from mailroom.errors import Forbidden, NotFound
from mailroom.registry import POST, Context, Public
from mailroom.services.mail._api import api
from mailroom.services.mail._auth import authenticator_of
from mailroom.services.mail.sessions import start_session
from mailroom.store import accounts, audit, managers
from mailroom.store import users as users_store

log = logging.getLogger("mailroom.auth.oidc")

OidcCode = Annotated[
    SecretStr,
    Field(min_length=1, max_length=2048, description="The authorization code the provider sent back."),
]
CodeVerifier = Annotated[
    SecretStr,
    Field(min_length=43, max_length=128, description="The PKCE code verifier of the authorization request."),
]
RedirectUri = Annotated[
    str,
    Field(min_length=1, max_length=2048, description="The redirect_uri of the authorization request."),
]
Nonce = Annotated[
    str, Field(min_length=1, max_length=256, description="The nonce of the authorization request.")
]


def oidc_client(ctx: Context) -> OidcClient:
    client = authenticator_of(ctx).oidc
    if client is None:
        raise NotFound("OpenID Connect is not configured on this server")
    return client


async def sync_roles(ctx: Context, identity: OidcIdentity) -> None:
    """Write what the provider says of the user's admin flag and managed domains; a change
    is logged and audited (method ``mail.sessions.login_oidc``, object ``users``)."""
    if identity.is_admin is None and identity.managed_domains is None:
        return
    now = ctx.rt.clock.now()
    changes: dict[str, dict[str, object]] = {}
    async with ctx.rt.db.write() as tx:
        user = await user_of(tx, identity)
        email: str = user.email
        if identity.is_admin is not None and bool(user.global_admin) != identity.is_admin:
            await users_store.update_user(tx, email, {"global_admin": identity.is_admin, "updated_at": now})
            changes["global_admin"] = {"before": not identity.is_admin, "after": identity.is_admin}
        if identity.managed_domains is not None:
            wanted = await existing_domains(tx, identity.managed_domains)
            current = await accounts.managed_domains(tx, user.id)
            for domain in sorted(wanted - current):
                await managers.insert_manager(tx, domain, user.id, now)
            for domain in sorted(current - wanted):
                await managers.delete_manager(tx, domain, user.id)
            if wanted != current:
                changes["managed_domains"] = {"before": sorted(current), "after": sorted(wanted)}
        if changes:
            await audit.add(
                tx,
                {
                    "at": now,
                    "principal": f"oidc:{identity.subject}"[:320],
                    "user_id": user.id,
                    "key_id": None,
                    "protocol": ctx.call.protocol[:32],
                    "client_ip": ctx.call.client_ip,
                    "request_id": ctx.call.request_id,
                    "method": "mail.sessions.login_oidc",
                    "object": "users",
                    "target": email,
                    "domain": email.rpartition("@")[2],
                    "params": {},
                    "changes": changes,
                },
            )
    if changes:
        log.info("%s: roles from the identity provider: %s", email, ", ".join(sorted(changes)))
        authenticator_of(ctx).invalidate()  # cached API keys of this user stand for the new roles


@api.method("mail.sessions.login_oidc", http=POST("/login/oidc"), access=Public())
async def login_oidc(
    ctx: Context, code: OidcCode, code_verifier: CodeVerifier, redirect_uri: RedirectUri, nonce: Nonce
) -> LoginResult:
    """Start a session from an OpenID Connect login: the provider's authorization code,
    with the PKCE ``code_verifier``, ``redirect_uri`` and ``nonce`` of the request that
    obtained it. The answer is the one of ``POST /login``.

    A code the provider refuses, or an ID token that is not valid (signature, issuer,
    audience, expiry, nonce) is 401 and says why; an address that is no mailbox here, a
    disabled account or a domain that may not log in this way is 403. 404 when no provider
    is configured.
    """
    client = oidc_client(ctx)
    answer = await client.exchange_code(
        code.get_secret_value(), code_verifier.get_secret_value(), redirect_uri
    )
    access_token = str(answer["access_token"])
    claims = await client.id_token_claims(str(answer["id_token"]), nonce, access_token)
    if email_of(claims, ctx.rt.settings) is None or (
        ctx.rt.settings.oidc_admin_group and ctx.rt.settings.oidc_groups_claim not in claims
    ):
        info = await client.userinfo(access_token)
        if info and info.get("sub") != claims.get("sub"):
            raise Forbidden("the identity provider's userinfo is for another subject")
        claims = {**info, **claims}
    identity = identity_of(claims, ctx.rt.settings, with_scopes=False)
    await sync_roles(ctx, identity)
    principal = await principal_of(ctx.rt.db, identity, ctx.call.client_ip)
    log.info("%s logged in with OpenID Connect (subject %s)", principal.email, identity.subject)
    return await start_session(ctx, principal)
