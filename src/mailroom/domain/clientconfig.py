"""What this server offers mail clients, as the DNS helper, autoconfig and autodiscover tell it.

One table, :data:`CLIENT_SERVICES`, lists the listeners a mail client may use (IMAP and IMAPS,
POP3 and POP3S, submission). Each row names the settings of its listening port and of the
port the world reaches it on (``public_*_port``, for a proxy or NAT; default: the listening
port; a ``public_*_port`` setting that does not exist counts as unset). Each listener declares
itself with one row, and its SRV record (RFC 6186 / RFC 8314), its autoconfig
``incomingServer`` and its autodiscover ``Protocol`` follow from it.

A row is served when its port setting exists and is not 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mailroom.settings import Settings

__all__ = [
    "CLIENT_SERVICES",
    "ClientConfig",
    "ClientService",
    "MailServer",
    "ServedService",
    "autoconfig_origin",
    "hostname_warning",
    "is_placeholder_host",
    "public_smtp_port",
    "served_services",
    "startup_warnings",
]

Protocol = Literal["imap", "pop3", "smtp"]
SocketType = Literal["SSL", "STARTTLS"]


@dataclass(frozen=True, slots=True)
class ClientService:
    """A listener mail clients use, and the settings that say where it is.

    Attributes:
        name: What it is called in records' purposes (``submission``, ``imaps``).
        protocol: ``smtp`` (sending), ``imap`` or ``pop3`` (reading).
        socket_type: ``STARTTLS`` (plain port, upgraded) or ``SSL`` (implicit TLS).
        srv: The RFC 6186 / RFC 8314 SRV label (``_submission._tcp``).
        port_setting: The setting of the port it listens on; 0 there turns it off.
        public_port_setting: The setting of the port clients reach it on; None there means
            the listening port.
    """

    name: str
    protocol: Protocol
    socket_type: SocketType
    srv: str
    port_setting: str
    public_port_setting: str

    @property
    def incoming(self) -> bool:
        return self.protocol != "smtp"


#: Every client listener mailroom has. Order: as clients should prefer them.
CLIENT_SERVICES: tuple[ClientService, ...] = (
    ClientService("imaps", "imap", "SSL", "_imaps._tcp", "imaps_port", "public_imaps_port"),
    ClientService("imap", "imap", "STARTTLS", "_imap._tcp", "imap_port", "public_imap_port"),
    ClientService("pop3s", "pop3", "SSL", "_pop3s._tcp", "pop3s_port", "public_pop3s_port"),
    ClientService("pop3", "pop3", "STARTTLS", "_pop3._tcp", "pop3_port", "public_pop3_port"),
    ClientService(
        "submission", "smtp", "STARTTLS", "_submission._tcp", "submission_port", "public_submission_port"
    ),
)


@dataclass(frozen=True, slots=True)
class ServedService:
    """A client listener that is on, with the port clients reach it on."""

    service: ClientService
    port: int


def served_services(
    settings: Settings, table: tuple[ClientService, ...] | None = None
) -> list[ServedService]:
    """The listeners of ``table`` (default :data:`CLIENT_SERVICES`) that ``settings`` turn on."""
    out = []
    for service in CLIENT_SERVICES if table is None else table:
        port = getattr(settings, service.port_setting, 0)
        if not port:
            continue
        public = getattr(settings, service.public_port_setting, None)
        out.append(ServedService(service, int(public or port)))
    return out


def public_smtp_port(settings: Settings) -> int | None:
    """The port other servers reach inbound SMTP on, None when that listener is off."""
    if not settings.smtp_port:
        return None
    return settings.public_smtp_port or settings.smtp_port


def autoconfig_origin(settings: Settings) -> tuple[str, int] | None:
    """(host, port) where clients reach autoconfig and autodiscover over HTTPS, from
    ``public_url``; None when it is not set, not HTTPS, or has a path (the documents must be
    at the root: ``/mail/config-v1.1.xml``, ``/autodiscover/autodiscover.xml``)."""
    if not settings.public_url:
        return None
    url = urlsplit(settings.public_url)
    if url.scheme != "https" or not url.hostname or url.path.strip("/"):
        return None
    try:
        port = url.port or 443
    except ValueError:
        return None
    return url.hostname, port


# RFC 2606 and RFC 6761 reserve these for examples, tests and local use; the last few are
# names that only mean something inside one network.
_PLACEHOLDER_SUFFIXES = (
    "example",
    "example.com",
    "example.net",
    "example.org",
    "test",
    "invalid",
    "localhost",
    "local",
    "localdomain",
    "internal",
    "lan",
    "home.arpa",
)


def is_placeholder_host(name: str) -> bool:
    """Whether ``name`` cannot be this server's public name (``mail.example.org``, ``x.test``)."""
    name = name.lower().rstrip(".")
    if "." not in name:
        return True  # localhost, or any single label: not resolvable from the Internet.
    return any(name == suffix or name.endswith("." + suffix) for suffix in _PLACEHOLDER_SUFFIXES)


def hostname_warning(settings: Settings) -> str | None:
    """The start-up warning when the mail host name is still a placeholder, else None."""
    if not is_placeholder_host(settings.hostname):
        return None
    return (
        f"the mail host name is {settings.hostname!r}, a placeholder: set hostname "
        "(MAILROOM_HOSTNAME) to this server's public name. It is the MX and SRV target, the "
        "server autoconfig and autodiscover give mail clients, and the SMTP greeting."
    )


def startup_warnings(settings: Settings) -> list[str]:
    """What the server warns about when it starts (``serve``'s banner and each worker's log)."""
    return [w for w in (hostname_warning(settings),) if w is not None]


class MailServer(BaseModel):
    """One server a mail client should use."""

    protocol: Protocol = Field(description="smtp (sending), imap or pop3 (reading).")
    hostname: str
    port: int = Field(description="The port clients reach it on (public_*_port).")
    socket_type: SocketType = Field(description="SSL (implicit TLS) or STARTTLS.")
    username: str = Field(
        description="The login name, with autoconfig's placeholders: %EMAILADDRESS% (the address "
        "typed) or %EMAILLOCALPART%@<domain> (an alternative name logs in at its domain)."
    )
    authentication: Literal["password-cleartext"] = Field(
        description="A password sent inside TLS (AUTH PLAIN/LOGIN)."
    )


class ClientConfig(BaseModel):
    """How a mail client sets up an account of a domain this server hosts."""

    domain: str = Field(description="The mail domain asked about (A-labels).")
    display_name: str
    servers: list[MailServer] = Field(
        description="Incoming servers first, then outgoing; only what is served."
    )
