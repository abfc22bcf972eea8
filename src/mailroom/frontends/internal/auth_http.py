"""``/internal/auth/*``: nginx's mail proxy (auth_http) and ``auth_request`` ask who may log in.

- ``GET /internal/auth/email``: ngx_mail_auth_http_module. nginx sends the client's
  credentials in ``Auth-User``/``Auth-Pass`` (URL-encoded), the ``Auth-Protocol`` (smtp,
  imap, pop3), ``Auth-Method``, ``Auth-Login-Attempt`` and ``Client-IP``; the answer is
  always ``200`` with ``Auth-Status: OK`` and the back-end (``Auth-Server``, an IP, and
  ``Auth-Port``), or ``Auth-Status: <message>`` with, for SMTP, ``Auth-Error-Code``, and
  ``Auth-Wait`` (seconds) while the connection may try again.
- ``GET /internal/auth/basic``: HTTP Basic credentials of a user (``auth_request`` for an
  app behind nginx): ``200`` with ``X-User``, or ``401`` with ``WWW-Authenticate``.
- ``GET /internal/auth/user``: the session or API key of the request (``Authorization``):
  ``200`` with ``X-User`` (single sign-on for apps behind nginx), or ``401``.

Only loopback clients may ask, or others that present ``internal_secret`` in
``X-Mailroom-Internal-Secret``; everyone else gets ``403``. These routes are not registry
methods' REST paths, so they are in no public OpenAPI document. Credentials never reach a
log line: failures are logged with the user name and the client address only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mailroom.auth.principal import INTERNAL
from mailroom.errors import InvalidParams, MailroomError, RateLimited, Unavailable
from mailroom.frontends.http_auth import authenticate_header
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.internal")

SECRET_HEADER = "x-mailroom-internal-secret"
PROTOCOLS = frozenset(("smtp", "imap", "pop3"))
METHODS = frozenset(("plain", "login"))
#: Seconds nginx waits before letting the client try again (the first attempts only).
WAIT_SECONDS = 2
_SMTP_CODES = {
    "invalid": "535 5.7.8",
    "disabled": "535 5.7.8",
    "unsupported": "504 5.5.4",
    "rate_limited": "454 4.7.0",
    "temporary": "451 4.3.0",
}
_MESSAGES = {
    "invalid": "Invalid login or password",
    "disabled": "Login to this service is disabled for this account",
    "unsupported": "Unsupported authentication method or protocol",
    "rate_limited": "Too many failed logins, try again later",
    "temporary": "Temporary server problem, try again later",
}


def _ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _trusted(mailroom: Mailroom, request: Request) -> bool:
    peer = _ip(request.client.host if request.client else None)
    if peer is not None and ipaddress.ip_address(peer).is_loopback:
        return True
    secret = mailroom.settings.internal_secret
    given = request.headers.get(SECRET_HEADER)
    return bool(
        secret is not None
        and given
        and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())
    )


def _forbidden() -> Response:
    return PlainTextResponse("forbidden: /internal is for the mail system on this host\n", status_code=403)


def _failure(reason: str, protocol: str, attempt: int, wait_attempts: int) -> Response:
    headers = {"Auth-Status": _MESSAGES[reason]}
    if protocol == "smtp":
        headers["Auth-Error-Code"] = _SMTP_CODES[reason]
    # Auth-Wait keeps the client's connection for another try; past the first attempts (and
    # when locked out) nginx closes it instead.
    if reason in ("invalid", "disabled", "temporary") and attempt < wait_attempts:
        headers["Auth-Wait"] = str(WAIT_SECONDS)
    return Response(status_code=200, headers=headers)


def internal_routes(mailroom: Mailroom) -> list[Route]:
    async def auth_email(request: Request) -> Response:
        if not _trusted(mailroom, request):
            return _forbidden()
        h = request.headers
        protocol = h.get("auth-protocol", "").lower()
        method = h.get("auth-method", "").lower()
        try:
            attempt = int(h.get("auth-login-attempt", "1"))
        except ValueError:
            attempt = 1
        wait_attempts = mailroom.settings.proxy_wait_attempts
        if protocol not in PROTOCOLS or method not in METHODS:
            return _failure("unsupported", protocol, attempt, wait_attempts)
        user = unquote(h.get("auth-user", ""))
        client_ip = _ip(h.get("client-ip"))
        params = {"protocol": protocol, "user": user, "password": unquote(h.get("auth-pass", ""))}
        info = CallInfo(protocol="auth_http", client_ip=client_ip)
        try:
            verdict: Any = await mailroom.runner.invoke("mail.proxy.login", params, INTERNAL, info)
        except InvalidParams:
            verdict = {"ok": False, "reason": "invalid"}
        except Unavailable:  # the user directory (LDAP) did not answer: not a wrong password
            return _failure("temporary", protocol, attempt, wait_attempts)
        except Exception:
            log.exception("auth_http: the login check failed (%s for %r from %s)", protocol, user, client_ip)
            return _failure("temporary", protocol, attempt, wait_attempts)
        if not verdict["ok"]:
            log.info(
                "auth_http: %s login refused (%s) for %r from %s",
                protocol,
                verdict["reason"],
                user,
                client_ip,
            )
            return _failure(str(verdict["reason"]), protocol, attempt, wait_attempts)
        return Response(
            status_code=200,
            headers={
                "Auth-Status": "OK",
                "Auth-Server": verdict["server"],
                "Auth-Port": str(verdict["port"]),
                # The canonical address: nginx passes it on (SMTP: XCLIENT LOGIN) instead of
                # the spelling the client typed.
                "Auth-User": str(verdict["email"]),
            },
        )

    async def who(request: Request, *, basic: bool) -> Response:
        if not _trusted(mailroom, request):
            return _forbidden()
        header = request.headers.get("authorization", "")
        if basic != header[:6].lower().startswith("basic "):
            header = ""  # /basic takes Basic credentials only, /user sessions and keys
        client_ip = _ip(request.headers.get("x-real-ip")) or (request.client.host if request.client else None)
        challenge = {"WWW-Authenticate": 'Basic realm="mailroom", charset="UTF-8"'} if basic else {}
        if not header:
            return PlainTextResponse("credentials required\n", status_code=401, headers=challenge)
        try:
            principal = await authenticate_header(mailroom, header, client_ip)
        except RateLimited:
            return PlainTextResponse("too many failed logins\n", status_code=403)
        except MailroomError:
            return PlainTextResponse("invalid credentials\n", status_code=401, headers=challenge)
        if principal.email is None:
            return PlainTextResponse("not a user's credentials\n", status_code=401, headers=challenge)
        return Response(status_code=200, headers={"X-User": principal.email})

    async def auth_basic(request: Request) -> Response:
        return await who(request, basic=True)

    async def auth_user(request: Request) -> Response:
        return await who(request, basic=False)

    return [
        Route("/internal/auth/email", auth_email, methods=["GET"]),
        Route("/internal/auth/basic", auth_basic, methods=["GET"]),
        Route("/internal/auth/user", auth_user, methods=["GET"]),
    ]
