"""The listeners: aiosmtpd's SMTP and LMTP state machines on the running event loop."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP

from mailroom.frontends.listeners import bind
from mailroom.frontends.smtp._data import DataState, read_data
from mailroom.frontends.smtp._handler import DeliveryHandler
from mailroom.frontends.smtp.xclient import XClientServer, networks

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.smtp")


class EscapeControls(logging.Filter):
    """Writes the control characters a client sent (NUL, ESC, ...) as ``\\xNN`` escapes:
    aiosmtpd logs every unrecognised command line as it came ("unrecognised: ..."), so a
    client could otherwise put terminal escape sequences and binary into the server log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if _CONTROLS.search(text):
            record.msg, record.args = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text), None
        return True


_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
logging.getLogger("mail.log").addFilter(EscapeControls())  # aiosmtpd's logger

#: aiosmtpd's own limit is RFC 5321's 1,000; mailers that break it still deserve delivery.
LINE_LENGTH_LIMIT = 65536
IDLE_TIMEOUT_SECONDS = 300.0

_TOO_MUCH = "552 Error: Too much mail data"
_SIZE_PARAM = "552 Error: message size exceeds fixed maximum message size"
_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


# ``<local@domain>`` as almost every MAIL FROM and RCPT TO is written, optionally followed
# by parameters: read by one regex. aiosmtpd's ``_getaddr`` reads it with the stdlib's RFC
# 5322 header parser, ~0.1 ms a call, two or more calls a message.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_PLAIN_PATH = re.compile(
    rf"<({_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?:[ \t]+([^ \t(].*)?)?",
    re.DOTALL,
)


class _PlainPaths:
    """aiosmtpd's address reading, with a shortcut for the plain ``<local@domain>`` form.

    The answer is the one aiosmtpd gives (the address and the rest after the whitespace
    that follows it); anything else, a comment, a quoted local part, a source route or the
    null path ``<>``, goes to aiosmtpd's own parser.
    """

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_PATH.fullmatch(arg) if arg else None
        if match is None:
            return super()._getaddr(arg)  # type: ignore[misc, no-any-return]
        address = match.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, match.group(2) or ""


class _Replies:
    """Rewrites aiosmtpd's own replies to enhanced status codes; for LMTP, the end of DATA
    always gets one reply per recipient (RFC 2033), even when aiosmtpd refused the data."""

    lmtp = False

    def rewrite(self, status: str, rcpts: list[str]) -> str:
        if status in (_TOO_MUCH, _LINE_TOO_LONG):
            text = (
                "message size exceeds fixed maximum message size" if status == _TOO_MUCH else "line too long"
            )
            code = "552 5.3.4" if status == _TOO_MUCH else "500 5.5.2"
            if self.lmtp and rcpts:
                return "\r\n".join(f"{code} <{r}>: {text}" for r in rcpts)
            return f"{code} {text.capitalize()}"
        if status == _SIZE_PARAM:
            return "552 5.3.4 Message size exceeds fixed maximum message size"
        return status


class _BlockData:
    """aiosmtpd's DATA command with the data read in blocks (frontends/smtp/_data.py).

    Everything around the reading is aiosmtpd 1.4's ``smtp_DATA``, unchanged: the checks
    before ``354``, the replies for too long a line or too much data (sent once the
    terminator has arrived, as RFC 5321 §4.2.5 implies), the handler's DATA hook."""

    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter
    _decode_data: bool
    _handle_hooks: Any
    data_size_limit: int | None
    line_length_limit: int
    enable_SMTPUTF8: bool
    envelope: Any
    transport: Any

    async def smtp_DATA(self, arg: str) -> None:
        server: Any = self
        if await server.check_helo_needed():
            return
        if await server.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await server.push("503 Error: need RCPT command")
            return
        if arg:
            await server.push("501 Syntax: DATA")
            return
        await server.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            state, content = await read_data(
                self._reader, size_limit=self.data_size_limit, line_limit=self.line_length_limit
            )
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if state is not DataState.NOMINAL:
            await server.push(_LINE_TOO_LONG if state is DataState.TOO_LONG else _TOO_MUCH)
            server._set_post_data_state()
            return
        if self._decode_data:  # not how mailroom runs its listeners; kept for aiosmtpd's contract
            if self.enable_SMTPUTF8:
                text = content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    text = content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await server.push("500 Error: strict ASCII mode")
                    return
            self.envelope.content = text
        else:
            self.envelope.content = content
        self.envelope.original_content = content
        status = await server._call_handler_hook("DATA")
        server._set_post_data_state()
        await server.push("250 OK" if status is MISSING else status)


class _SMTPServer(_BlockData, _PlainPaths, _Replies, XClientServer, SMTP):
    line_length_limit = LINE_LENGTH_LIMIT

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.xclient_connected(self.session.peer)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            envelope = getattr(self, "envelope", None)
            status = self.rewrite(status, list(getattr(envelope, "rcpt_tos", []) or []))
        await super().push(status)


class _LMTPServer(_BlockData, _PlainPaths, _Replies, LMTP):
    lmtp = True
    line_length_limit = LINE_LENGTH_LIMIT

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            envelope = getattr(self, "envelope", None)
            status = self.rewrite(status, list(getattr(envelope, "rcpt_tos", []) or []))
        await super().push(status)


@dataclass
class Listeners:
    """The running listeners; ``ports`` says where they listen (useful with port 0)."""

    servers: dict[str, asyncio.Server] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return {name: int(server.sockets[0].getsockname()[1]) for name, server in self.servers.items()}

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        for server in self.servers.values():
            await server.wait_closed()
        self.servers.clear()


async def start_listeners(
    mailroom: Mailroom,
    *,
    smtp: tuple[str, int] | None = None,
    lmtp: tuple[str, int] | None = None,
    sockets: Mapping[str, socket.socket] | None = None,
) -> Listeners:
    """Start the listeners the settings ask for (port 0 in settings: off).

    ``sockets``: listening sockets bound by ``mailroom serve`` (:mod:`mailroom.frontends.listeners`),
    by listener name; then exactly the ``smtp`` and ``lmtp`` among them are served, and
    nothing is bound here. Otherwise each listener binds its own socket: ``smtp`` / ``lmtp``
    override ``(host, port)``, where port 0 means "any free port" (tests). The listeners
    serve on the running loop until :meth:`Listeners.close`.
    """
    settings = mailroom.settings
    loop = asyncio.get_running_loop()
    wanted: list[tuple[str, bool, socket.socket | tuple[str, int]]] = []
    if sockets is not None:
        wanted = [(name, name == "lmtp", sockets[name]) for name in ("smtp", "lmtp") if name in sockets]
    else:
        if smtp is not None or settings.smtp_port:
            wanted.append(("smtp", False, smtp or (settings.smtp_host, settings.smtp_port)))
        if lmtp is not None or settings.lmtp_port:
            wanted.append(("lmtp", True, lmtp or (settings.lmtp_host, settings.lmtp_port)))
    listeners = Listeners()
    proxies = networks(settings.smtp_trusted_proxies)
    try:
        for name, is_lmtp, where in wanted:
            handler = DeliveryHandler(mailroom, lmtp=is_lmtp)
            protocol = _LMTPServer if is_lmtp else _SMTPServer
            ident = "mailroom LMTP" if is_lmtp else "mailroom ESMTP"

            def factory(
                protocol: Any = protocol, handler: DeliveryHandler = handler, ident: str = ident
            ) -> Any:
                server = protocol(
                    handler,
                    data_size_limit=settings.max_message_bytes,
                    enable_SMTPUTF8=True,
                    hostname=settings.hostname,
                    ident=ident,
                    timeout=IDLE_TIMEOUT_SECONDS,
                    loop=loop,
                )
                server.trusted_proxies = proxies
                return server

            sock = where if isinstance(where, socket.socket) else bind(name, *where)
            server = await loop.create_server(factory, sock=sock)
            listeners.servers[name] = server
            log.info("%s listening on %s:%s", name.upper(), *sock.getsockname()[:2])
    except BaseException:
        await listeners.close()
        raise
    return listeners
