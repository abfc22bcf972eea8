"""XCLIENT (Postfix's XCLIENT_README): a trusted proxy tells the listener who its client is.

nginx's mail proxy (``xclient on``, its default) and Postfix (``smtpd_authorized_xclient_hosts``
on the Postfix side, or a content filter that speaks it) connect to the SMTP or submission
listener themselves, so without XCLIENT every message would seem to come from
the proxy: the brute-force guard, the rate limits and the ``Received`` line would all see
127.0.0.1. With it, the proxy sends::

    XCLIENT ADDR=203.0.113.7 PORT=51234 NAME=client.example HELO=client.example
            LOGIN=ann@example.org PROTO=ESMTP

and the listener answers ``220`` with a fresh greeting, as if that client had connected:
the session's peer is ``ADDR``/``PORT``, its HELO name ``HELO`` (until the next HELO/EHLO),
its protocol ``PROTO``; on the submission listener ``LOGIN`` names the user nginx already
authenticated (auth_http), so the sender rules apply to them. Values are xtext (RFC 3461
``+XX``); ``[UNAVAILABLE]`` and ``[TEMPUNAVAIL]`` mean "unknown".

Only connections from ``smtp_trusted_proxies`` (CIDR networks; empty by default, so nobody)
may send it, and only they see it in the EHLO reply; anyone else gets ``550 5.7.0``. A
proxy that may name any LOGIN may send as anyone: list only the proxies' own addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

ATTRIBUTES = ("ADDR", "PORT", "NAME", "HELO", "LOGIN", "PROTO")
#: What EHLO offers a trusted proxy (the attributes this listener understands).
EHLO_LINE = "250-XCLIENT " + " ".join(ATTRIBUTES)
UNAUTHORISED = "550 5.7.0 Error: insufficient authorization"
IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
UNKNOWN_VALUES = frozenset({"[UNAVAILABLE]", "[TEMPUNAVAIL]"})
_XTEXT = re.compile(r"\+([0-9A-F]{2})")
_NAME = re.compile(r"^[A-Za-z0-9.:\[\]_-]{1,255}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class XClientError(ValueError):
    """An XCLIENT command that cannot be applied; ``reply`` is the SMTP reply."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class XClient:
    """The attributes one XCLIENT command set (None: not sent; ``""``: sent as unknown)."""

    addr: str | None = None
    port: int | None = None
    name: str | None = None
    helo: str | None = None
    login: str | None = None
    proto: str | None = None


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def trusted(ip: str | None, allowed: tuple[Network, ...]) -> bool:
    """Whether the connection's own address ``ip`` is in one of ``allowed``."""
    if ip is None or not allowed:
        return False
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowed)


def xtext_decode(value: str) -> str:
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def parse(arg: str | None) -> XClient:
    """The attributes of ``XCLIENT attr=value ...`` (raises :class:`XClientError`)."""
    if not arg or not arg.strip():
        raise XClientError("501 5.5.4 Syntax: XCLIENT attribute=value [attribute=value ...]")
    values: dict[str, str] = {}
    for word in arg.split():
        name, equals, raw = word.partition("=")
        name = name.upper()
        if not equals or name not in ATTRIBUTES:
            raise XClientError(f"501 5.5.4 Bad XCLIENT attribute name: {name[:32]}")
        value = xtext_decode(raw)
        values[name] = "" if value.upper() in UNKNOWN_VALUES else value
    addr = values.get("ADDR")
    if addr:
        addr = addr[5:] if addr.upper().startswith("IPV6:") else addr
        try:
            addr = str(ipaddress.ip_address(addr))
        except ValueError:
            raise XClientError("501 5.5.4 Bad XCLIENT ADDR syntax") from None
    port: int | None = None
    if values.get("PORT"):
        if not values["PORT"].isdigit() or int(values["PORT"]) > 65535:
            raise XClientError("501 5.5.4 Bad XCLIENT PORT syntax")
        port = int(values["PORT"])
    for key in ("NAME", "HELO"):
        if values.get(key) and not _NAME.match(values[key]):
            raise XClientError(f"501 5.5.4 Bad XCLIENT {key} syntax")
    proto = values.get("PROTO")
    if proto and proto.upper() not in ("SMTP", "ESMTP"):
        raise XClientError("501 5.5.4 Bad XCLIENT PROTO syntax")
    login = values.get("LOGIN")
    if login is not None and len(login) > 512:
        raise XClientError("501 5.5.4 Bad XCLIENT LOGIN syntax")
    return XClient(
        addr=addr,
        port=port,
        name=values.get("NAME"),
        helo=values.get("HELO"),
        login=login,
        proto=proto.upper() if proto else proto,
    )


class XClientServer:
    """Mixed into the listeners' aiosmtpd servers: ``XCLIENT`` from trusted proxies.

    ``trusted_proxies`` is set by the listener; :meth:`xclient_login` is what the submission
    listener does with ``LOGIN`` (the inbound SMTP listener has no logins and ignores it).
    """

    trusted_proxies: tuple[Network, ...] = ()
    #: The connection's own address decided it, once, when it was made (XCLIENT changes the
    #: session's peer; a second XCLIENT is judged by the proxy's address, not the client's).
    xclient_allowed: bool = False
    session: Any
    envelope: Any
    hostname: str
    __ident__: str

    def xclient_connected(self, peer: Any) -> None:
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.xclient_allowed = trusted(ip, self.trusted_proxies)

    def ehlo_lines(self, responses: list[str]) -> list[str]:
        """The EHLO reply with XCLIENT offered to a trusted proxy (before the last line)."""
        if not self.xclient_allowed:
            return responses
        return [*responses[:-1], EHLO_LINE, responses[-1]]

    async def xclient_login(self, login: str | None) -> str | None:
        """Apply ``LOGIN`` (None: not sent); a reply refuses the command."""
        return None

    if TYPE_CHECKING:  # provided by aiosmtpd's SMTP, which comes after this class

        async def push(self, status: Any) -> None: ...

        def _set_rset_state(self) -> None: ...

    async def smtp_XCLIENT(self, arg: str | None) -> None:
        if not self.xclient_allowed:
            await self.push(UNAUTHORISED)
            return
        if getattr(self.envelope, "mail_from", None) is not None:
            await self.push(IN_TRANSACTION)
            return
        try:
            given = parse(arg)
        except XClientError as error:
            await self.push(error.reply)
            return
        refused = await self.xclient_login(given.login)
        if refused is not None:
            await self.push(refused)
            return
        session = self.session
        old = session.peer if isinstance(session.peer, tuple) else ("", 0)
        if given.addr is not None or given.port is not None:
            session.peer = (
                given.addr if given.addr is not None else old[0],
                given.port if given.port is not None else (old[1] if len(old) > 1 else 0),
            )
        if given.name is not None:
            session.xclient_name = given.name or None
        if given.proto is not None:
            session.xclient_proto = given.proto or None
        # As if the client had just connected: a new greeting, HELO/EHLO again.
        self._set_rset_state()
        session.host_name = given.helo or None
        session.extended_smtp = False
        await self.push(f"220 {self.hostname} {self.__ident__}")
