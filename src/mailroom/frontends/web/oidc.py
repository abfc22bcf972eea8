"""The web app's OpenID Connect login: authorization code with PKCE, state and nonce.

- ``GET /web/oidc``: ``{"name", "login_url"}`` when a provider is configured (the login page
  shows "Sign in with <name>"), else 204.
- ``GET /web/oidc/login?next=/admin``: a new state, nonce and PKCE verifier, sealed into the
  short-lived cookie ``mr_oidc`` (HttpOnly, SameSite=Lax so that it comes back with the
  provider's redirect, Path=/web/oidc); 302 to the provider's authorization endpoint.
- ``GET /web/oidc/callback?code=...&state=...``: the state must match the cookie's; then
  ``mail.sessions.login_oidc`` exchanges the code (with the verifier) and checks the ID token
  (with the nonce), and the session becomes the same HttpOnly ``mr_session`` cookie and
  ``mr_csrf`` value as a password login (:mod:`.session`); 303 to ``/`` or ``/admin``.
  A refusal is a 4xx ``application/problem+json`` saying why.

The session token never appears in a URL or a response body; the only secrets in URLs are
the protocol's own (the code, in the provider's redirect, single-use and useless without
the verifier).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailroom.auth.oidc.client import OidcClient, login_error
from mailroom.auth.oidc.state import LoginStateBox, PendingLogin, states_match
from mailroom.errors import BadRequest, MailroomError, NotFound
from mailroom.frontends.http_auth import client_ip, csrf_token
from mailroom.frontends.rest.problems import problem_response
from mailroom.frontends.web.session import _set_cookies
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

OIDC_PATH = "/web/oidc"
CALLBACK_PATH = "/web/oidc/callback"
STATE_COOKIE = "mr_oidc"
#: Where the app may be sent back to after the login.
NEXT_PATHS = ("/", "/admin")
NO_STORE = {"Cache-Control": "no-store"}


def redirect_uri(mailroom: Mailroom, request: Request) -> str:
    """The callback URL registered at the provider (the same for the request and the exchange)."""
    settings = mailroom.settings
    if settings.oidc_redirect_url:
        return settings.oidc_redirect_url
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


def _next_path(value: str | None) -> str:
    if value is None:
        return "/"
    path = urlsplit(value).path if value.startswith("/") and not value.startswith("//") else "/"
    return path if path in NEXT_PATHS else "/"


def _clear_state(response: Response, request: Request) -> None:
    response.delete_cookie(
        STATE_COOKIE, path=OIDC_PATH, secure=request.url.scheme == "https", httponly=True, samesite="lax"
    )


def oidc_routes(mailroom: Mailroom) -> list[BaseRoute]:
    secret = mailroom.settings.secret_key.get_secret_value()
    box = LoginStateBox(secret)

    def client() -> OidcClient:
        found = mailroom.authenticator.oidc
        if found is None:
            raise NotFound("OpenID Connect is not configured on this server")
        return found

    async def about(request: Request) -> Response:
        if mailroom.authenticator.oidc is None:
            return Response(status_code=204, headers=NO_STORE)
        name = mailroom.settings.oidc_provider_name
        return JSONResponse({"name": name, "login_url": f"{OIDC_PATH}/login"}, headers=NO_STORE)

    async def start(request: Request) -> Response:
        found = client()
        uri = redirect_uri(mailroom, request)
        auth = await found.authorization_request(uri)
        now = mailroom.runtime.clock.timestamp()
        pending = PendingLogin(
            auth.state, auth.nonce, auth.code_verifier, _next_path(request.query_params.get("next")), now
        )
        response = RedirectResponse(auth.url, status_code=302, headers=NO_STORE)
        response.set_cookie(
            STATE_COOKIE,
            box.seal(pending),
            max_age=600,
            path=OIDC_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(request: Request) -> Response:
        # The pending login is spent whatever the outcome: a refused callback cannot be replayed.
        try:
            response = await finish(request)
        except MailroomError as exc:
            response = problem_response(exc, request.url.path)
            response.headers["Cache-Control"] = "no-store"
        _clear_state(response, request)
        return response

    async def finish(request: Request) -> Response:
        client()
        params = request.query_params
        sealed = request.cookies.get(STATE_COOKIE)
        pending = box.open(sealed, mailroom.runtime.clock.timestamp()) if sealed else None
        if pending is None:
            raise BadRequest(
                "no OpenID Connect login is under way in this browser (or it expired): start again"
            )
        if "error" in params:
            raise login_error(params)
        state, code = params.get("state"), params.get("code")
        if not state or not states_match(state, pending.state):
            raise BadRequest("the login's state does not match this browser's: start again")
        if not code:
            raise BadRequest("the identity provider sent no authorization code")
        info = CallInfo(
            protocol="rest",
            client_ip=client_ip(request),
            headers={k: v for k, v in request.headers.items()},
            request_id=request.headers.get("x-request-id"),
        )
        result = await mailroom.runner.invoke(
            "mail.sessions.login_oidc",
            {
                "code": code,
                "code_verifier": pending.code_verifier,
                "redirect_uri": redirect_uri(mailroom, request),
                "nonce": pending.nonce,
            },
            mailroom.authenticator.anonymous(client_ip(request)),
            info,
        )
        token = str(result["token"])
        expires = result["exp_date"]
        when = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
        max_age = max(0, int(when.timestamp() - mailroom.runtime.clock.timestamp()))
        response = RedirectResponse(pending.next_path, status_code=303, headers=NO_STORE)
        _set_cookies(response, request, token, csrf_token(secret, token), max_age)
        return response

    return [
        Route(OIDC_PATH, about, methods=["GET"]),
        Route(f"{OIDC_PATH}/login", start, methods=["GET"]),
        Route(CALLBACK_PATH, callback, methods=["GET"]),
    ]
