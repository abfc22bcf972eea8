"""A small, real OpenID Connect provider for the tests, on Authlib's server side.

Authlib's ``AuthorizationServer`` with its ``AuthorizationCodeGrant``, the PKCE extension
(``CodeChallenge``, required), the OpenID Connect ``OpenIDCode`` extension (nonce required)
and the RFC 7662 ``IntrospectionEndpoint``, served by Starlette under uvicorn on a loopback
port: discovery, JWKS, an HTML login form, the token endpoint (client_secret_basic),
userinfo and introspection. Access tokens are RS256 JWTs (RFC 9068) or, with
``opaque_tokens``, random strings only introspection can read.

The tests steer it like an operator or an attacker would: users and their groups, the key
that signs (``rotate_key``), and claims to override in the next tokens (another issuer,
audience, nonce, an expiry in the past) — the tokens are still signed by the provider.
None of mailroom's code is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import grants as oidc_grants
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route


@dataclass
class ProviderUser:
    username: str
    password: str
    email: str
    groups: list[str] = field(default_factory=list)
    manages: list[str] = field(default_factory=list)
    email_verified: bool = True

    @property
    def sub(self) -> str:
        return f"sub-{self.username}"


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: ProviderUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class IssuedToken:
    access_token: str
    client_id: str
    scope: str
    user: ProviderUser
    expires_at: int
    revoked: bool = False

    def is_expired(self) -> bool:
        return self.expires_at <= int(time.time())

    def is_revoked(self) -> bool:
        return self.revoked

    def get_scope(self) -> str:
        return self.scope


class Provider:
    """The provider's state; ``serve()`` runs it on a loopback port."""

    def __init__(self) -> None:
        self.issuer = ""
        self.clients: dict[str, Client] = {}
        self.users: dict[str, ProviderUser] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.signing_key = self._new_key("key-1")
        self.published = KeySet([self.signing_key])
        #: Claims that replace the provider's own in the next ID / access tokens.
        self.id_token_overrides: dict[str, Any] = {}
        self.access_token_overrides: dict[str, Any] = {}
        #: Random access tokens that only introspection can read (instead of JWTs).
        self.opaque_tokens = False
        #: Paths asked, in order (the tests count JWKS fetches).
        self.requests: list[str] = []
        self.now: Callable[[], float] = time.time
        self.server = self._authorization_server()

    @staticmethod
    def _new_key(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    def rotate_key(self, *, keep_old: bool = False) -> str:
        """Sign with a new key from now on; publish the old one beside it or not."""
        kid = f"key-{len(self.requests)}-{secrets.token_hex(4)}"
        self.signing_key = self._new_key(kid)
        old = list(self.published.keys) if keep_old else []
        self.published = KeySet([*old, self.signing_key])
        return kid

    def add_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        self.clients[client_id] = Client(client_id, secret, redirect_uris)

    def add_user(self, username: str, password: str, email: str, **fields: Any) -> ProviderUser:
        user = ProviderUser(username, password, email, **fields)
        self.users[username] = user
        return user

    # Tokens

    def user_claims(self, user: ProviderUser, scope: str) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": user.sub}
        scopes = scope.split()
        if "email" in scopes:
            claims.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scopes:
            claims.update(name=user.username.title(), preferred_username=user.username)
        if "groups" in scopes:
            claims.update(groups=user.groups, mailroom_manages=user.manages)
        return claims

    def sign(self, claims: dict[str, Any], *, typ: str | None = None) -> str:
        header: dict[str, Any] = {"alg": "RS256", "kid": self.signing_key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, self.signing_key, algorithms=["RS256"])

    def access_token_for(
        self, user: ProviderUser, client_id: str, scope: str, *, expires_in: int = 3600, **extra: Any
    ) -> str:
        """An access token as the token endpoint issues it (tests also mint them directly,
        as a provider's client-credentials or token-exchange grant would)."""
        now = int(self.now())
        if self.opaque_tokens:
            token = secrets.token_urlsafe(32)
        else:
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": user.sub,
                "aud": client_id,
                "client_id": client_id,
                "iat": now,
                "nbf": now,
                "exp": now + expires_in,
                "scope": scope,
                "jti": secrets.token_hex(8),
                **extra,
                **self.access_token_overrides,
            }
            token = self.sign(claims, typ="at+jwt")
        self.tokens[token] = IssuedToken(token, client_id, scope, user, now + expires_in)
        return token

    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                return provider.clients.get(client_id)

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                pass  # kept when generated (access_token_for)

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request  # already built from the Starlette request

            def handle_response(self, status: int, body: Any, headers: Any) -> Response:
                if isinstance(body, dict):
                    return JSONResponse(body, status_code=status, headers=dict(headers))
                return Response(body, status_code=status, headers=dict(headers))

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        server = Server()

        def generate(
            grant_type: str,
            client: Client,
            user: ProviderUser | None = None,
            scope: str | None = None,
            expires_in: int | None = None,
            include_refresh_token: bool = True,
        ) -> dict[str, Any]:
            assert user is not None
            token = provider.access_token_for(user, client.client_id, scope or "")
            return {"token_type": "Bearer", "access_token": token, "expires_in": 3600, "scope": scope}

        server.register_token_generator("default", generate)

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                provider.codes[code] = AuthCode(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope,
                    user=request.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    auth_time=int(provider.now()),
                )

            def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthCode) -> ProviderUser:
                return authorization_code.user

        class OpenIDCode(oidc_grants.OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.signing_key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, Any]:
                return {"alg": "RS256", "kid": provider.signing_key.kid}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                now = int(provider.now())
                return {"iss": provider.issuer, "aud": [client.client_id], "iat": now, "exp": now + 600}

            def generate_user_info(self, user: ProviderUser, scope: str) -> dict[str, Any]:
                # Applied last: the tests' overrides replace any claim (nonce, iss, aud, exp).
                return {**provider.user_claims(user, scope), **provider.id_token_overrides}

        server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenIDCode(require_nonce=True)])

        class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = ["client_secret_basic"]

            def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
                return provider.tokens.get(token_string)

            def check_permission(self, token: IssuedToken, client: Client, request: OAuth2Request) -> bool:
                return True

            def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
                return {
                    "active": True,
                    "client_id": token.client_id,
                    "token_type": "Bearer",
                    "scope": token.scope,
                    "sub": token.user.sub,
                    "aud": token.client_id,
                    "iss": provider.issuer,
                    "exp": token.expires_at,
                    "iat": token.expires_at - 3600,
                    **provider.access_token_overrides,
                }

        server.register_endpoint(Introspection)
        return server

    # HTTP

    async def _oauth_request(self, request: Request) -> OAuth2Request:
        data: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            data.update({k: v for k, v in form.items() if isinstance(v, str)})
        built = _Request(request.method, str(request.url), request.headers, data)
        return built

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            self.requests.append(request.url.path)
            base = self.issuer
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "userinfo_endpoint": f"{base}/userinfo",
                    "jwks_uri": f"{base}/jwks",
                    "introspection_endpoint": f"{base}/introspect",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                }
            )

        async def jwks(request: Request) -> Response:
            self.requests.append(request.url.path)
            return JSONResponse(self.published.as_dict(private=False))

        async def authorize_form(request: Request) -> Response:
            self.requests.append(request.url.path)
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in request.query_params.items()
            )
            return HTMLResponse(
                "<!DOCTYPE html><html><body><h1>Test provider</h1>"
                f'<form method="post" action="/authorize">{hidden}'
                '<input name="username"><input name="password" type="password">'
                '<button type="submit">Sign in</button></form></body></html>'
            )

        async def authorize(request: Request) -> Response:
            self.requests.append(request.url.path)
            oauth = await self._oauth_request(request)
            data = oauth.payload.data
            user = self.users.get(data.get("username", ""))
            if user is None or not hmac.compare_digest(user.password, data.get("password", "")):
                return HTMLResponse("<p>wrong user name or password</p>", status_code=401)
            for name in ("username", "password"):
                data.pop(name, None)
            grant = self.server.get_authorization_grant(oauth)
            return self.server.create_authorization_response(oauth, grant_user=user, grant=grant)  # type: ignore[no-any-return]

        async def token(request: Request) -> Response:
            self.requests.append(request.url.path)
            return self.server.create_token_response(await self._oauth_request(request))  # type: ignore[no-any-return]

        async def introspect(request: Request) -> Response:
            self.requests.append(request.url.path)
            oauth = await self._oauth_request(request)
            return self.server.create_endpoint_response("introspection", oauth)  # type: ignore[no-any-return]

        async def userinfo(request: Request) -> Response:
            self.requests.append(request.url.path)
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            issued = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if issued is None or issued.expires_at <= int(self.now()):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse(self.user_claims(issued.user, issued.scope))

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize_form, methods=["GET"]),
                Route("/authorize", authorize, methods=["POST"]),
                Route("/token", token, methods=["POST"]),
                Route("/introspect", introspect, methods=["POST"]),
                Route("/userinfo", userinfo, methods=["GET"]),
                # Browsers ask every site for its icon (a 404 is a console error in the browser test).
                Route("/favicon.ico", lambda request: Response(status_code=204)),
            ]
        )

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Provider]:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=0, lifespan="off", log_config=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.issuer = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


class _Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request over the parameters already read from the Starlette request."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], data: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data
