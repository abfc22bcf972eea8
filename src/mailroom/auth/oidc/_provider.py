"""The connection to the provider: HTTP, discovery, its keys, JWT signatures, a token cache.

:class:`ProviderConnection` is the base of :class:`~mailroom.auth.oidc.client.OidcClient`;
the web login (:mod:`._login`) and the access tokens (:mod:`._access`) build on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

from mailroom.clock import Clock
from mailroom.errors import Unauthenticated, Unavailable
from mailroom.settings import Settings

log = logging.getLogger("mailroom.auth.oidc")

#: Signature algorithms accepted from a provider (asymmetric only: an HS256 token would be
#: signed with our own client secret, and "none" is no signature).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
#: Largest answer read from the provider (discovery, keys, tokens, userinfo).
MAX_RESPONSE_BYTES = 1 << 20
#: Introspection and userinfo answers kept per token (bounded; emptied when full).
TOKEN_CACHE_SIZE = 10_000


class OidcTokenError(Unauthenticated):
    """A token from the provider that is not valid here; the message says why."""


def claim_message(error: JoseError, what: str) -> str:
    if isinstance(error, ExpiredTokenError):
        return f"the {what} has expired"
    claim = getattr(error, "claim", None) or ""
    if isinstance(error, MissingClaimError):
        return f"the {what} lacks the {claim} claim"
    reasons = {
        "iss": f"the {what} was issued by another issuer than the configured provider",
        "aud": f"the {what} is for another audience",
        "nbf": f"the {what} is not valid yet",
        "iat": f"the {what} was issued in the future",
        "nonce": f"the {what}'s nonce does not match this login",
        "azp": f"the {what} was issued to another client",
        "at_hash": f"the {what} does not belong to its access token",
    }
    return reasons.get(claim, f"the {what}'s {claim or 'claims'} are not valid")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What discovery says (the endpoints this client uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    introspection_endpoint: str | None
    algorithms: tuple[str, ...]


class ProviderConnection:
    """One configured provider: its endpoints, keys and HTTP requests."""

    def __init__(
        self, settings: Settings, clock: Clock, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        assert settings.oidc_issuer
        assert settings.oidc_client_id
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.clock = clock
        self._transport = transport
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._keys_fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        #: token digest → (valid until, claims): introspection and userinfo answers.
        self._token_claims: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def __repr__(self) -> str:  # never the secret
        return f"OidcClient(issuer={self.issuer!r}, client_id={self.client_id!r})"

    # HTTP

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.oidc_timeout_seconds, transport=self._transport, follow_redirects=False
        )

    def _client_auth(self) -> httpx.BasicAuth | None:
        secret = self.settings.oidc_client_secret
        if secret is None:
            return None
        return httpx.BasicAuth(self.client_id, secret.get_secret_value())

    async def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise Unavailable(f"the identity provider's {what} answer is too large")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Unavailable(f"the identity provider's {what} answer is not a JSON object")
        return data

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("identity provider unreachable (%s): %s", what, type(exc).__name__)
            raise Unavailable("the identity provider cannot be reached") from None
        if response.status_code != 200:
            log.warning("identity provider answered %s to the %s request", response.status_code, what)
            raise Unavailable(f"the identity provider's {what} request failed")
        return await self._json(response, what)

    # Discovery and keys

    async def metadata(self) -> ProviderMetadata:
        now = time.monotonic()
        if self._metadata is not None and self._metadata[0] > now:
            return self._metadata[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._get_json(url, "discovery")
        if data.get("issuer") != self.issuer:
            # OpenID Connect Discovery 4.3: the issuer must be exactly the one asked.
            raise Unavailable("the identity provider's discovery document names another issuer")
        try:
            offered = data.get("id_token_signing_alg_values_supported") or ["RS256"]
            found = ProviderMetadata(
                issuer=data["issuer"],
                authorization_endpoint=str(data["authorization_endpoint"]),
                token_endpoint=str(data["token_endpoint"]),
                jwks_uri=str(data["jwks_uri"]),
                userinfo_endpoint=data.get("userinfo_endpoint"),
                introspection_endpoint=data.get("introspection_endpoint"),
                algorithms=tuple(a for a in offered if a in ALGORITHMS) or ("RS256",),
            )
        except KeyError as exc:
            raise Unavailable(f"the identity provider's discovery document lacks {exc.args[0]}") from None
        self._metadata = (now + self.settings.oidc_jwks_cache_seconds, found)
        return found

    async def _fetch_keys(self) -> KeySet:
        meta = await self.metadata()
        data = await self._get_json(meta.jwks_uri, "keys")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise Unavailable("the identity provider's keys (JWKS) cannot be read") from None
        now = time.monotonic()
        self._keys = (now + self.settings.oidc_jwks_cache_seconds, keys)
        self._keys_fetched_at = now
        return keys

    async def keys(self, kid: str | None = None) -> KeySet:
        """The provider's keys; fetched again when expired, or when ``kid`` is not among
        them (the provider rotated its keys) and the last fetch is old enough."""
        now = time.monotonic()
        cached = self._keys
        if cached is not None and cached[0] > now and (kid is None or _has_kid(cached[1], kid)):
            return cached[1]
        async with self._lock:
            cached = self._keys
            now = time.monotonic()
            if cached is not None and cached[0] > now:
                if kid is None or _has_kid(cached[1], kid):
                    return cached[1]
                if now - self._keys_fetched_at < self.settings.oidc_jwks_refresh_seconds:
                    return cached[1]  # too soon to ask again: the token fails on its key id
                log.info("a token names key %r, not among the provider's keys: fetching them again", kid)
            return await self._fetch_keys()

    async def _decode(self, token: str, what: str) -> jwt.Token:
        if token.count(".") != 2:
            raise OidcTokenError(f"the {what} is not a signed JWT")
        meta = await self.metadata()
        try:
            header = extract_compact(token.encode()).headers()  # unverified: only to pick the key
        except (JoseError, ValueError, TypeError):
            raise OidcTokenError(f"the {what} is not a signed JWT") from None
        kid = header.get("kid")
        keys = await self.keys(kid if isinstance(kid, str) else None)
        registry = JWSRegistry(algorithms=list(meta.algorithms), strict_check_header=False)
        try:
            return jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError:
            raise OidcTokenError(f"the {what} is signed with a key the provider does not publish") from None
        except BadSignatureError:
            raise OidcTokenError(f"the {what}'s signature does not verify with the provider's keys") from None
        except JoseError as exc:
            raise OidcTokenError(f"the {what} cannot be read: {exc.error}") from None
        except (ValueError, TypeError):
            raise OidcTokenError(f"the {what} cannot be read") from None

    def _cached(self, key: tuple[str, str]) -> dict[str, Any] | None:
        found = self._token_claims.get(key)
        if found is None or found[0] <= self.clock.timestamp():
            return None
        return found[1]

    def _remember(self, key: tuple[str, str], claims: dict[str, Any], exp: float | None) -> None:
        seconds = self.settings.auth_cache_seconds
        if seconds <= 0:
            return
        until = self.clock.timestamp() + seconds
        if exp is not None:
            until = min(until, exp)
        if len(self._token_claims) >= TOKEN_CACHE_SIZE:
            self._token_claims.clear()
        self._token_claims[key] = (until, claims)


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
