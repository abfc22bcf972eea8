"""Access tokens presented as Bearer credentials: JWTs against the provider's keys, or
introspection (RFC 7662); the userinfo endpoint for tokens that carry no address."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    MissingClaimError,
)

from mailroom.auth.oidc._provider import OidcTokenError, ProviderConnection, claim_message, token_digest
from mailroom.errors import Unavailable

log = logging.getLogger("mailroom.auth.oidc")


class AccessTokens(ProviderConnection):
    """The provider's access tokens and userinfo."""

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo endpoint's claims for an access token (cached like introspection)."""
        meta = await self.metadata()
        if meta.userinfo_endpoint is None:
            return {}
        key = ("userinfo", token_digest(access_token))
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            async with self._http() as http:
                response = await http.get(
                    meta.userinfo_endpoint,
                    headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            log.warning("identity provider unreachable (userinfo): %s", type(exc).__name__)
            raise Unavailable("the identity provider cannot be reached") from None
        if response.status_code in (401, 403):
            raise OidcTokenError("the identity provider does not accept the access token for userinfo")
        if response.status_code != 200:
            raise Unavailable("the identity provider's userinfo request failed")
        data = await self._json(response, "userinfo")
        self._remember(key, data, None)
        return data

    # Access tokens on the API

    async def access_token_claims(self, token: str) -> dict[str, Any]:
        """The claims of an access token presented as a Bearer credential: a JWT checked
        against the provider's keys (RFC 9068: issuer, audience, expiry, not-before), or,
        with ``oidc_introspection``, the provider's introspection answer (RFC 7662)."""
        if self.settings.oidc_introspection:
            return await self._introspect(token)
        # A token checked in the last auth_cache_seconds (and not expired since) is not
        # parsed and verified again: like API keys, by the digest of the presented token.
        key = ("jwt", token_digest(token))
        cached = self._cached(key)
        if cached is not None:
            return cached
        decoded = await self._decode(token, "access token")
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock.timestamp()),
            leeway=self.settings.oidc_leeway_seconds,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except (InvalidClaimError, MissingClaimError, ExpiredTokenError) as exc:
            raise OidcTokenError(claim_message(exc, "access token")) from None
        claims = dict(decoded.claims)
        self._remember(key, claims, claims["exp"])
        return claims

    async def _introspect(self, token: str) -> dict[str, Any]:
        key = ("introspection", token_digest(token))
        cached = self._cached(key)
        if cached is not None:
            return cached
        meta = await self.metadata()
        if meta.introspection_endpoint is None:
            raise Unavailable("the identity provider has no introspection endpoint")
        auth = self._client_auth()
        form = {"token": token, "token_type_hint": "access_token"}
        if auth is None:
            form["client_id"] = self.client_id
        try:
            async with self._http() as http:
                response = await http.post(
                    meta.introspection_endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
        except httpx.HTTPError as exc:
            log.warning("identity provider unreachable (introspection): %s", type(exc).__name__)
            raise Unavailable("the identity provider cannot be reached") from None
        if response.status_code != 200:
            log.warning("identity provider answered %s to introspection", response.status_code)
            raise Unavailable("the identity provider's introspection request failed")
        data = await self._json(response, "introspection")
        if data.get("active") is not True:
            raise OidcTokenError("the identity provider says the access token is not active")
        now = self.clock.timestamp()
        leeway = self.settings.oidc_leeway_seconds
        exp = data.get("exp")
        if isinstance(exp, (int, float)) and exp <= now - leeway:
            raise OidcTokenError("the access token has expired")
        nbf = data.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + leeway:
            raise OidcTokenError("the access token is not valid yet")
        if "iss" in data and data["iss"] != self.issuer:
            raise OidcTokenError(claim_message(InvalidClaimError("iss"), "access token"))
        aud = data.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audiences and self.audience not in audiences:
            raise OidcTokenError(claim_message(InvalidClaimError("aud"), "access token"))
        if not audiences and data.get("client_id") not in (None, self.audience):
            raise OidcTokenError(claim_message(InvalidClaimError("aud"), "access token"))
        self._remember(key, data, exp if isinstance(exp, (int, float)) else None)
        return data
