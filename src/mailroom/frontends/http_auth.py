"""Credentials from HTTP headers, shared by every HTTP front-end (REST, JSON-RPC, XML-RPC)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from mailroom.auth.principal import Principal
from mailroom.errors import Unauthenticated

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom


def client_ip(conn: HTTPConnection) -> str | None:
    return conn.client.host if conn.client else None


async def authenticate(mailroom: Mailroom, conn: HTTPConnection) -> Principal:
    """``Authorization: Bearer <key or token>`` or ``Basic``; none means anonymous.

    Bad credentials are an error even on public methods: a client that sent them wants to
    know they are wrong.
    """
    return await authenticate_header(mailroom, conn.headers.get("authorization"), client_ip(conn))


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
