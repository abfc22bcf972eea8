"""mail.proxy.login: may this user log in to SMTP, IMAP or POP3 through a mail proxy, and where to?

nginx's mail proxy asks this (through ``/internal/auth/email``, ngx_mail_auth_http_module)
before it lets a client past AUTH/LOGIN: the password (refused once the user has a second
factor), an API key or an app password naming the protocol is checked by the same
:class:`Authenticator` as every other login, so the brute-force guard counts these attempts
with the client's own address, and the user's ``enable_smtp`` / ``enable_imap`` /
``enable_pop`` flags decide the protocol. The answer names the back-end to proxy to:
mailroom's own listener for the protocol unless a ``proxy_*_backend`` setting says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr

from mailroom.errors import RateLimited, Unauthenticated
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api
from mailroom.services.mail._auth import authenticator_of
from mailroom.settings import Settings
from mailroom.store import accounts

Protocol = Literal["smtp", "imap", "pop3"]


class ProxyLogin(BaseModel):
    """The verdict on one proxied login: ``ok`` with the back-end, or why not."""

    ok: bool
    #: ``invalid`` (wrong credentials), ``disabled`` (not for this protocol),
    #: ``rate_limited`` (the guard's lockout), ``unsupported`` (auth method).
    reason: Literal["", "invalid", "disabled", "rate_limited", "unsupported"] = ""
    email: str = ""
    server: str = ""
    port: int = 0
    retry_after: int = 0


def backend(settings: Settings, protocol: Protocol) -> tuple[str, int]:
    """Where a logged-in client of ``protocol`` goes (``host``, ``port``)."""
    configured = {
        "smtp": settings.proxy_smtp_backend,
        "imap": settings.proxy_imap_backend,
        "pop3": settings.proxy_pop3_backend,
    }[protocol]
    if configured:
        host, _, port = configured.rpartition(":")
        return host.strip("[]"), int(port)
    listening: tuple[str, int]
    if protocol == "smtp":
        listening = settings.submission_host, settings.submission_port
    elif protocol == "pop3":
        listening = settings.pop3_host, settings.pop3_port
    else:
        listening = str(getattr(settings, "imap_host", "127.0.0.1")), settings.imap_port
    # A wildcard bind is reachable on loopback; nginx needs an address to connect to.
    wildcard = listening[0] in ("", "0.0.0.0", "::")  # noqa: S104 (compared, not bound)
    return ("127.0.0.1" if wildcard else listening[0]), listening[1]


@api.method("mail.proxy.login", access=Internal())
async def login(
    ctx: Context,
    protocol: Protocol,
    user: Annotated[str, Field(max_length=512)],
    password: Annotated[SecretStr, Field(max_length=4096)],
) -> ProxyLogin:
    """Check a proxied login (the client's address is the call's ``client_ip``)."""
    try:
        principal = await authenticator_of(ctx).basic(
            user, password.get_secret_value(), ctx.call.client_ip, protocol
        )
    except RateLimited as error:
        return ProxyLogin(ok=False, reason="rate_limited", retry_after=error.retry_after)
    except Unauthenticated:
        return ProxyLogin(ok=False, reason="invalid")
    if principal.user_id is None or principal.email is None:
        return ProxyLogin(ok=False, reason="invalid")  # an API key of no user logs in nowhere
    async with ctx.rt.db.read() as tx:
        services = await accounts.enabled_services(tx, principal.user_id)
    if protocol not in services:
        return ProxyLogin(ok=False, reason="disabled")
    server, port = backend(ctx.rt.settings, protocol)
    return ProxyLogin(ok=True, email=principal.email, server=server, port=port)


class ProxiedUser(BaseModel):
    """Who a proxy's ``XCLIENT LOGIN`` names: found, enabled and allowed SMTP, or not."""

    ok: bool
    user_id: int = 0
    email: str = ""


@api.method("mail.proxy.xclient_login", access=Internal())
async def xclient_login(ctx: Context, user: Annotated[str, Field(max_length=512)]) -> ProxiedUser:
    """The user a trusted proxy says it authenticated (nginx's ``XCLIENT LOGIN``, after
    auth_http said OK): no password here, so only the submission listener asks this, and only
    for connections from ``smtp_trusted_proxies``."""
    async with ctx.rt.db.read() as tx:
        row = await accounts.user_for_auth(tx, email=user.strip().lower())
        if row is None or not row.enabled:
            return ProxiedUser(ok=False)
        services = await accounts.enabled_services(tx, row.id)
    if "smtp" not in services:
        return ProxiedUser(ok=False)
    return ProxiedUser(ok=True, user_id=row.id, email=row.email)
