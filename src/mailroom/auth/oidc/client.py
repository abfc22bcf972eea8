"""The provider's side of OpenID Connect: discovery, keys, code exchange, token validation.

:class:`OidcClient` reads ``<issuer>/.well-known/openid-configuration`` once (again after
``oidc_jwks_cache_seconds``), keeps the provider's keys (JWKS) as long, and fetches them
again when a token names a key id it does not know (a rotation), at most every
``oidc_jwks_refresh_seconds`` so that forged key ids cannot make it hammer the provider.

Tokens are checked with joserfc (Authlib's JOSE library) and the ID token's claims with
Authlib's :class:`~authlib.oidc.core.CodeIDToken` (issuer, audience, expiry, nonce, azp,
at_hash). Every failure is an :class:`OidcTokenError` (401) whose message says what was
wrong with the token (expired, another issuer or audience, a bad signature): the caller
already holds the token, so this tells them nothing new, and a client can act on it.

HTTP goes through httpx; the client secret is sent as HTTP Basic (client_secret_basic) and
never logged.
"""

from __future__ import annotations

from mailroom.auth.oidc._access import AccessTokens
from mailroom.auth.oidc._login import AuthorizationRequest, WebLogin, login_error
from mailroom.auth.oidc._provider import ALGORITHMS, OidcTokenError, ProviderMetadata

__all__ = [
    "ALGORITHMS",
    "AuthorizationRequest",
    "OidcClient",
    "OidcTokenError",
    "ProviderMetadata",
    "login_error",
]


class OidcClient(WebLogin, AccessTokens):
    """One configured provider, shared by the web login and the Bearer handler."""
