"""mail.clientconfig.get: the servers a mail client should use for an address of ours.

It is what autoconfig (Thunderbird) and autodiscover (Outlook) answer, and what the DNS
helper's SRV records advertise: only the listeners that are on (``CLIENT_SERVICES``), on
their public ports, at the ``hostname`` setting. Anyone may ask; it is asked by domain, so it
never tells whether an address exists.
"""

from __future__ import annotations

from mailroom.domain.clientconfig import ClientConfig, MailServer, served_services
from mailroom.domain.names import DomainName
from mailroom.errors import NotFound
from mailroom.registry import GET, Context, Public
from mailroom.services.mail._api import api
from mailroom.store import alternatives, domains


@api.method("mail.clientconfig.get", http=GET("/clientconfig/{domain}"), access=Public())
async def get_client_config(ctx: Context, domain: DomainName) -> ClientConfig:
    """How a mail client sets up an account of ``domain``: servers, ports, TLS, login name.

    Only the services this server runs are listed, incoming (IMAP, POP3) before outgoing
    (submission), on the ports clients reach them on (``public_*_port``). The login name is
    the address itself (``%EMAILADDRESS%``); for an alternative domain's address it is the
    same local part at the domain it belongs to (``%EMAILLOCALPART%@<domain>``). It is asked
    by domain, so it never tells whether an address exists; a domain this server does not
    host is not found.
    """
    async with ctx.rt.db.read() as tx:
        kind = await domains.name_kind(tx, domain)
        home = domain
        if kind == "alternative":
            alternative = await alternatives.get(tx, domain)
            home = alternative.domain if alternative else domain
        elif kind != "domain":
            raise NotFound.of("domain", domain)
    settings = ctx.rt.settings
    served = served_services(settings)
    if not served:
        raise NotFound("this server runs no mail client service (submission, IMAP, POP3)", kind="service")
    username = "%EMAILADDRESS%" if home == domain else f"%EMAILLOCALPART%@{home}"
    servers = [
        MailServer(
            protocol=s.service.protocol,
            hostname=settings.hostname,
            port=s.port,
            socket_type=s.service.socket_type,
            username=username,
            authentication="password-cleartext",
        )
        for s in sorted(served, key=lambda s: not s.service.incoming)
    ]
    return ClientConfig(domain=domain, display_name=home, servers=servers)
