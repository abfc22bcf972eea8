"""OpenID Connect identities → mailroom's users and principals; the Bearer handler.

A login or token stands for the existing mailbox whose address the provider gives (no
mailbox is made here): an unknown address, a disabled account or a domain outside
``oidc_allowed_domains`` is refused (403, saying which). The principal is the user's own,
as a password login's: admin and domain-manager rights are mailroom's unless
``oidc_admin_group`` / ``oidc_manager_claim`` give them to the provider, which then decides
them on every token.
"""

from __future__ import annotations

import logging

from mailroom.auth.authenticate import Authenticator
from mailroom.auth.oidc.claims import OidcIdentity, email_of, identity_of
from mailroom.auth.oidc.client import OidcClient
from mailroom.auth.principal import Principal
from mailroom.errors import Forbidden
from mailroom.settings import Settings
from mailroom.store import accounts, domains
from mailroom.store.engine import Database, Tx

log = logging.getLogger("mailroom.auth.oidc")


async def existing_domains(tx: Tx, names: frozenset[str]) -> frozenset[str]:
    """The domains of ``names`` that this server serves."""
    found = set()
    for name in sorted(names):
        if await domains.get(tx, name) is not None:
            found.add(name)
    return frozenset(found)


async def user_of(tx: Tx, identity: OidcIdentity) -> accounts.AuthUser:
    """The enabled mailbox the identity stands for (403 otherwise)."""
    user = await accounts.user_for_auth(tx, email=identity.email)
    if user is None:
        raise Forbidden(f"there is no mailbox {identity.email} for this identity")
    if not user.enabled:
        raise Forbidden(f"the account {identity.email} is disabled")
    return user


async def principal_of(
    db: Database, identity: OidcIdentity, client_ip: str | None, *, scopes: tuple[str, ...] | None = None
) -> Principal:
    async with db.read() as tx:
        user = await user_of(tx, identity)
        if identity.managed_domains is None:
            managed = await accounts.managed_domains(tx, user.id)
        else:
            managed = await existing_domains(tx, identity.managed_domains)
    return Principal(
        kind="user",
        user_id=user.id,
        email=user.email,
        is_admin=bool(user.global_admin) if identity.is_admin is None else identity.is_admin,
        managed_domains=managed,
        scopes=scopes,
        client_ip=client_ip,
    )


class OidcBearer:
    """The Bearer handler for the provider's access tokens (any token that is not one of
    mailroom's own ``mr_``/``ms_`` secrets)."""

    def __init__(self, client: OidcClient, db: Database, settings: Settings) -> None:
        self.client = client
        self.db = db
        self.settings = settings

    async def __call__(self, token: str, client_ip: str | None) -> Principal | None:
        claims = await self.client.access_token_claims(token)
        if email_of(claims, self.settings) is None:
            # Access tokens often carry only the subject: the address is in userinfo.
            info = await self.client.userinfo(token)
            if info.get("sub") != claims.get("sub"):
                raise Forbidden("the identity provider's userinfo is for another subject")
            claims = {**info, **claims}
        identity = identity_of(claims, self.settings, with_scopes=True)
        return await principal_of(self.db, identity, client_ip, scopes=identity.scopes)


def install(authenticator: Authenticator, client: OidcClient, settings: Settings) -> None:
    """Accept the provider's access tokens as Bearer credentials (called by bootstrap)."""
    authenticator.oidc = client
    if settings.oidc_bearer:
        authenticator.fallback_bearer = OidcBearer(client, authenticator.db, settings)
