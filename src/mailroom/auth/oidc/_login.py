"""The web login's side of the provider: the authorization request (state, nonce, PKCE),
the code exchange and the ID token's claims."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    MissingClaimError,
)

from mailroom.auth.oidc._provider import OidcTokenError, ProviderConnection, claim_message
from mailroom.errors import BadRequest, Unavailable

log = logging.getLogger("mailroom.auth.oidc")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must find again."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class WebLogin(ProviderConnection):
    """Authorization code with PKCE, state and nonce."""

    async def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A new login: state, nonce and PKCE verifier, and the provider's URL with them."""
        meta = await self.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        scopes = self.settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        return AuthorizationRequest(f"{meta.authorization_endpoint}{sep}{query}", state, nonce, verifier)

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (with the PKCE verifier)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth = self._client_auth()
        if auth is None:
            form["client_id"] = self.client_id  # a public client
        try:
            async with self._http() as http:
                response = await http.post(
                    meta.token_endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
        except httpx.HTTPError as exc:
            log.warning("identity provider unreachable (token): %s", type(exc).__name__)
            raise Unavailable("the identity provider cannot be reached") from None
        data = await self._json(response, "token")
        if response.status_code != 200:
            error = str(data.get("error", "error"))[:64]
            log.info("the identity provider refused the code: %s", error)
            raise OidcTokenError(f"the identity provider refused the authorization code ({error})")
        if not isinstance(data.get("id_token"), str) or not isinstance(data.get("access_token"), str):
            raise OidcTokenError("the identity provider's answer has no ID token")
        return data

    async def id_token_claims(self, id_token: str, nonce: str, access_token: str | None) -> dict[str, Any]:
        """The verified claims of the login's ID token (signature, issuer, audience, expiry,
        nonce, azp, at_hash)."""
        decoded = await self._decode(id_token, "ID token")
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.client_id}
        if access_token is not None:
            params["access_token"] = access_token
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "nonce": {"essential": True},
        }
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        try:
            claims.validate(now=int(self.clock.timestamp()), leeway=self.settings.oidc_leeway_seconds)
        except (InvalidClaimError, MissingClaimError, ExpiredTokenError) as exc:
            raise OidcTokenError(claim_message(exc, "ID token")) from None
        return dict(claims)


def login_error(params: Mapping[str, str]) -> BadRequest:
    """The provider sent the browser back with an error instead of a code (RFC 6749 4.1.2.1)."""
    error = params.get("error", "error")[:64]
    return BadRequest(f"the identity provider did not sign you in ({error})")
