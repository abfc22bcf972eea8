"""The web app's login: the mail client session (or an API key) as an HttpOnly cookie.

``POST /web/session {username, password}`` logs in through ``mail.sessions.login`` (the same
registry method, brute-force guard and accounting as ``POST /api/v1/login``) and, instead
of handing the token to the page, sets it as the cookie ``mr_session`` (HttpOnly,
SameSite=Strict, Path=/, Secure over https) beside ``mr_csrf``, the value the page echoes
as ``X-CSRF-Token`` on every API call (see :mod:`mailroom.frontends.http_auth`).
With a second factor on, the body also carries ``otp`` (the app's code or a recovery code);
without it the answer is ``401 otp_required`` and the page asks for one.
``{api_key}`` instead of a name and password does the same with an admin's API key (the
first administrator of a new server has only that), checked like any Bearer credential.
``GET /web/session`` says who the cookie stands for (204 when nobody); ``DELETE /web/session`` ends the
session (``mail.sessions.logout``) and clears both cookies.

The token never appears in a response body, a URL or the page's storage.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailroom.auth.principal import Principal
from mailroom.errors import BadRequest, Unauthenticated
from mailroom.frontends.http_auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    authenticate_headers,
    client_ip,
    cookie_token,
    csrf_token,
)
from mailroom.frontends.http_body import parse_json_body, read_body
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

SESSION_PATH = "/web/session"
#: A login body is a name and a password: no more than this.
MAX_LOGIN_BODY = 8192


def _who(principal: Principal) -> dict[str, Any]:
    return {
        "email": principal.email,
        "kind": principal.kind,
        "is_admin": principal.is_admin,
        "managed_domains": sorted(principal.managed_domains),
        "key_id": principal.key_id,
    }


def _set_cookies(response: Response, request: Request, token: str, csrf: str, max_age: int | None) -> None:
    secure = request.url.scheme == "https"
    for name, value, httponly in ((SESSION_COOKIE, token, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=secure, httponly=httponly, samesite="strict"
        )


def _clear_cookies(response: Response, request: Request) -> None:
    secure = request.url.scheme == "https"
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=httponly, samesite="strict")


def session_routes(mailroom: Mailroom) -> list[BaseRoute]:
    secret = mailroom.settings.secret_key.get_secret_value()

    def call_info(request: Request) -> CallInfo:
        return CallInfo(
            protocol="rest",
            client_ip=client_ip(request),
            headers={k: v for k, v in request.headers.items()},
            request_id=request.headers.get("x-request-id"),
        )

    async def login(request: Request) -> Response:
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            # A cross-site form cannot send JSON without a CORS preflight, which fails here.
            raise BadRequest("send the login as application/json")
        body = parse_json_body(await read_body(request, MAX_LOGIN_BODY), media)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        ip = client_ip(request)
        max_age: int | None
        if "api_key" in body:
            key = body["api_key"]
            if not isinstance(key, str) or not key.startswith("mr_"):
                raise Unauthenticated("invalid or expired credentials")
            principal = await mailroom.authenticator.bearer(key, ip)
            token, max_age, expires = key, None, None
        else:
            params = {"username": body.get("username"), "password": body.get("password")}
            if body.get("otp") is not None:  # the second factor (401 otp_required without it)
                params["otp"] = body["otp"]
            anonymous = mailroom.authenticator.anonymous(ip)
            info = call_info(request)
            result = await mailroom.runner.invoke("mail.sessions.login", params, anonymous, info)
            token = str(result["token"])
            principal = await mailroom.authenticator.bearer(token, ip)
            expires = result["exp_date"]
            when = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
            max_age = max(0, int(when.timestamp() - mailroom.runtime.clock.timestamp()))
        csrf = csrf_token(secret, token)
        content = {**_who(principal), "csrf_token": csrf, "exp_date": expires}
        response = Response(
            orjson.dumps(content), media_type="application/json", headers={"Cache-Control": "no-store"}
        )
        _set_cookies(response, request, token, csrf, max_age)
        return response

    async def current(request: Request) -> Response:
        nobody = Response(status_code=204, headers={"Cache-Control": "no-store"})
        try:
            principal = await authenticate_headers(mailroom, request.headers, client_ip(request))
        except Unauthenticated:  # an expired or revoked session: forget its cookies
            _clear_cookies(nobody, request)
            return nobody
        if not principal.is_authenticated or cookie_token(request.headers.get("cookie")) is None:
            # Not an error: the page asks this on every load (a 401 would be a console error).
            return nobody
        return JSONResponse(_who(principal), headers={"Cache-Control": "no-store"})

    async def logout(request: Request) -> Response:
        principal = await authenticate_headers(mailroom, request.headers, client_ip(request))
        if principal.session_id is not None and cookie_token(request.headers.get("cookie")) is not None:
            await mailroom.runner.invoke("mail.sessions.logout", {}, principal, call_info(request))
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        _clear_cookies(response, request)
        return response

    return [
        Route(SESSION_PATH, login, methods=["POST"]),
        Route(SESSION_PATH, current, methods=["GET"]),
        Route(SESSION_PATH, logout, methods=["DELETE"]),
    ]
