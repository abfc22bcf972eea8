"""Credentials from HTTP headers, shared by every HTTP front-end (REST, JSON-RPC, XML-RPC).

Besides ``Authorization``, a browser session may send its token as the HttpOnly cookie
``mr_session`` (set by the web app's login, :mod:`mailroom.frontends.web.session`). A cookie
rides along with any request the browser makes to this origin, cross-site forms included,
so it counts only with the double-submit header ``X-CSRF-Token``: the HMAC of the token
under the server secret, which the page reads from the readable ``mr_csrf`` cookie. Another
site can neither read that cookie nor compute the value. A cookie without the header is
ignored (the request is anonymous); with a wrong header it is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from mailroom.auth.principal import Principal
from mailroom.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom


def client_ip(conn: HTTPConnection) -> str | None:
    return conn.client.host if conn.client else None


SESSION_COOKIE = "mr_session"
CSRF_COOKIE = "mr_csrf"
CSRF_HEADER = "x-csrf-token"


def csrf_token(secret: str, token: str) -> str:
    """The double-submit value that goes with a session cookie's ``token``."""
    return hmac.new(secret.encode(), b"csrf\0" + token.encode(), hashlib.sha256).hexdigest()


def cookie_token(cookie_header: str | None) -> str | None:
    """The ``mr_session`` cookie's value, if the ``Cookie`` header carries one."""
    if not cookie_header or SESSION_COOKIE not in cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:  # a malformed Cookie header is no credential
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


async def authenticate(mailroom: Mailroom, conn: HTTPConnection) -> Principal:
    """``Authorization: Bearer <key or token>`` or ``Basic``, else the session cookie with
    its CSRF header; none means anonymous.

    Bad credentials are an error even on public methods: a client that sent them wants to
    know they are wrong.
    """
    return await authenticate_headers(mailroom, conn.headers, client_ip(conn))


async def authenticate_headers(mailroom: Mailroom, headers: Mapping[str, str], ip: str | None) -> Principal:
    """The principal a request's headers stand for (see :func:`authenticate`)."""
    header = headers.get("authorization")
    if not header:
        token = cookie_token(headers.get("cookie"))
        if token is not None:
            presented = headers.get(CSRF_HEADER)
            if presented is None:
                return mailroom.authenticator.anonymous(ip)
            expected = csrf_token(mailroom.settings.secret_key.get_secret_value(), token)
            if not hmac.compare_digest(presented.encode(), expected.encode()):
                raise Forbidden("the X-CSRF-Token header does not match the session cookie")
            return await mailroom.authenticator.bearer(token, ip)
    return await authenticate_header(mailroom, header, ip)


async def authenticate_header(mailroom: Mailroom, header: str | None, ip: str | None) -> Principal:
    """The principal an ``Authorization`` header value stands for (see :func:`authenticate`)."""
    if not header:
        return mailroom.authenticator.anonymous(ip)
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme in ("bearer", "basic") and not value:
        # HTTP servers drop the trailing space of "Bearer ": say what is missing, not that
        # the scheme is unknown.
        what = "token" if scheme == "bearer" else "credentials"
        raise Unauthenticated(f"the {what} is missing: send 'Authorization: {scheme.capitalize()} <{what}>'")
    if scheme == "bearer":
        return await mailroom.authenticator.bearer(value, ip)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        username, sep, secret = decoded.partition(":")
        if not sep:
            raise Unauthenticated("malformed Basic credentials")
        return await mailroom.authenticator.basic(username, secret, ip)
    raise Unauthenticated("unsupported Authorization scheme; use Bearer or Basic")
