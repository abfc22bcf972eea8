"""The IMAP listener: one :class:`ImapSession` per connection over asyncio streams.

The session reads commands under the parser's bounds (``_parser``), keeps the state RFC 9051
describes (not authenticated → authenticated → selected), and asks the registry for
everything it answers (``mail.imap.*``, ``mail.labels.*``, ``mail.emails.raw``,
``mail.messages.import``) as the logged-in user, so the runner's access rules, rate limits
and accounting apply as to every other protocol. Credentials go through the same
:class:`~mailroom.auth.authenticate.Authenticator` as SMTP AUTH (passwords, app passwords
naming IMAP, the brute-force guard); the user's ``enable_imap`` flag is honoured.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailroom.errors import (
    CannotCalculateChanges,
    Conflict,
    InvalidParams,
    LimitExceeded,
    MailroomError,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from mailroom.frontends.imap import _commands
from mailroom.frontends.imap._deflate import DeflatingWriter, InflatingReader
from mailroom.frontends.imap._parser import MAX_LINE, Command, ParseError, literal_at_end, parse, tag_of
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.auth.principal import Principal
    from mailroom.bootstrap import Mailroom
    from mailroom.events import OpenSession

log = logging.getLogger("mailroom.imap")

#: Largest literal of a command other than APPEND.
MAX_LITERAL = 1024 * 1024


class Closing(Exception):
    """The session ends (LOGOUT, a timeout, a broken stream)."""


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class ImapSession(_commands.Commands):
    """One client connection."""

    #: Seconds without a command before the session is closed (RFC 9051: at least 30 min
    #: once authenticated); before login, a minute.
    idle_timeout = 30 * 60.0
    login_timeout = 60.0
    #: How long one IDLE may last before the server ends the connection.
    idle_limit = 29 * 60.0

    def __init__(
        self,
        mailroom: Mailroom,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls_context: ssl.SSLContext | None,
        *,
        implicit_tls: bool,
    ) -> None:
        super().__init__()
        self.mailroom = mailroom
        self.reader: Any = reader
        self.writer: Any = writer
        self.compressed = False
        self.tls_context = tls_context
        self.tls = implicit_tls
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.principal: Principal | None = None
        self.user_id = 0
        self.email = ""
        settings = mailroom.settings
        self.plaintext_ok = self.tls or (
            settings.imap_allow_plaintext_loopback and _is_loopback(self.client_ip)
        )
        self.max_append = int(settings.max_message_bytes)
        self.output: list[bytes] = []
        # Cut when the account's access ends (mailroom.events.OpenSessions): the input
        # ends (as if the client had closed), so a session waiting for a command or in IDLE
        # stops at once, one running a command once it has answered.
        self.registered: OpenSession | None = None
        self.kicked: str | None = None
        self.socket_reader, self.socket_writer = reader, writer  # under TLS or COMPRESS too

    # -- output --------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        # Gathered and written once per flush: one segment for a command's whole answer,
        # not one per line (small writes each wait on the peer's delayed ACK under Nagle).
        self.output.append(data if data.endswith(b"\r\n") else data + b"\r\n")

    def untagged(self, text: str | bytes) -> None:
        self.send(b"* " + (text.encode() if isinstance(text, str) else text))

    async def flush(self) -> None:
        if self.output:
            self.writer.write(b"".join(self.output))
            self.output.clear()
        await self.writer.drain()

    # -- the registry ----------------------------------------------------------------------

    async def call(self, name: str, params: Mapping[str, Any]) -> Any:
        assert self.principal is not None
        info = CallInfo(protocol="imap", client_ip=self.client_ip)
        return await self.mailroom.runner.invoke(name, dict(params), self.principal, info)

    # -- reading ---------------------------------------------------------------------------

    async def _line(self, seconds: float) -> bytes:
        try:
            line: bytes = await asyncio.wait_for(self.reader.readuntil(b"\n"), seconds)
        except TimeoutError:
            self.untagged("BYE idle for too long, closing")
            raise Closing from None
        except asyncio.IncompleteReadError:
            raise Closing from None
        except asyncio.LimitOverrunError:
            await self._discard_line()
            raise ParseError("line too long") from None
        except (ConnectionError, OSError):
            raise Closing from None
        if len(line) > MAX_LINE + 2:
            raise ParseError("line too long")
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    async def _discard_line(self) -> None:
        while True:
            try:
                await self.reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self.reader.readexactly(exc.consumed)
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                raise Closing from None

    async def read_command(self) -> list[bytes]:
        timeout = self.idle_timeout if self.principal is not None else self.login_timeout
        segments = [await self._line(timeout)]
        total = 0
        is_append = b" APPEND " in segments[0][:80].upper()
        limit = self.max_append if is_append and self.principal is not None else MAX_LITERAL
        while (literal := literal_at_end(segments[-1])) is not None:
            total += literal.size
            if total > limit:
                if literal.synchronizing:
                    raise ParseError("[TOOBIG] literal too large")
                self.untagged("BYE [TOOBIG] literal too large")
                raise Closing
            if literal.synchronizing:
                self.send(b"+ Ready for literal data")
                await self.flush()
            try:
                data = await asyncio.wait_for(self.reader.readexactly(literal.size), timeout)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
                raise Closing from None
            segments.append(data)
            segments.append(await self._line(timeout))
            if len(segments) > 2001:
                raise ParseError("too many literals")
        return segments

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.untagged(b"OK [CAPABILITY " + self.capabilities().encode() + b"] mailroom IMAP ready")
            await self.flush()
            while True:
                try:
                    segments = await self.read_command()
                except ParseError as error:
                    self.send(f"* BAD {error}".encode())
                    await self.flush()
                    continue
                try:
                    command = parse(segments)
                except ParseError as error:
                    self.send(f"{tag_of(segments[0])} BAD {error}".encode())
                    await self.flush()
                    continue
                await self.dispatch(command)
                if self.kicked is not None:
                    raise Closing
                await self.flush()
        except Closing:
            pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.mailroom.runtime.events.sessions.end(self.registered)
            if self.kicked is not None:
                self.output.clear()
                self.untagged(f"BYE {self.kicked}")
            with contextlib.suppress(Exception):
                await self.flush()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def dispatch(self, command: Command) -> None:
        tag = command.tag
        handler = self.handler(command.name)
        if handler is None:
            self.send(f"{tag} BAD unknown command or not allowed in this state".encode())
            return
        started = time.monotonic()
        try:
            result = await handler(command)
        except Closing:
            raise
        except ParseError as error:
            self.send(f"{tag} BAD {error}".encode())
            return
        except MailroomError as error:
            self.send(f"{tag} NO {_error_text(error)}".encode())
            return
        except Exception:
            log.exception("IMAP %s failed", command.name)
            self.send(f"{tag} NO [SERVERBUG] internal error".encode())
            return
        if result == _commands._Silent.mark:
            return
        text = result or f"{command.name} completed"
        elapsed = time.monotonic() - started
        if elapsed > 5:
            log.info("IMAP %s took %.1f s", command.name, elapsed)
        self.send(f"{tag} OK {text}".encode())

    # -- TLS and authentication ------------------------------------------------------------

    async def starttls(self) -> None:
        assert self.tls_context is not None
        await self.flush()
        try:
            await self.writer.start_tls(self.tls_context)
        except OSError:  # ssl.SSLError too: the client did not speak TLS; hang up quietly
            raise Closing from None
        self.tls = True
        self.plaintext_ok = True

    async def compress(self) -> None:
        """Switch both directions to DEFLATE (the OK has been queued before)."""
        await self.flush()
        self.reader = InflatingReader(self.reader, MAX_LINE + 2)
        self.writer = DeflatingWriter(self.writer)
        self.compressed = True

    async def authenticate(self, username: str, secret: str) -> str | None:
        """Log in; None on success, else the NO text."""
        authenticator = self.mailroom.authenticator
        try:
            principal = await authenticator.basic(username, secret, self.client_ip, "imap")
        except RateLimited:
            return "[UNAVAILABLE] too many failed logins, try later"
        except Unavailable:  # the user directory (LDAP) did not answer: not a wrong password
            return "[UNAVAILABLE] the user directory is unavailable, try later"
        except Unauthenticated:
            await asyncio.sleep(0.2)
            return "[AUTHENTICATIONFAILED] invalid credentials"
        if principal.user_id is None or principal.email is None:
            return "[AUTHENTICATIONFAILED] invalid credentials"
        self.principal = principal
        account = await self.call("mail.imap.account", {})
        if not account["imap"]:
            self.principal = None
            return "[AUTHORIZATIONFAILED] IMAP is not enabled for this account"
        self.user_id = principal.user_id
        self.email = principal.email
        sessions = self.mailroom.runtime.events.sessions
        self.registered = sessions.open(self.user_id, self.email, "imap", principal.credential, self.kick)
        return None

    def kick(self, reason: str) -> None:
        """The account's access ended: ``* BYE`` and close, now unless a command runs."""
        self.kicked = reason.replace("\r", " ").replace("\n", " ")[:200]
        transport = self.socket_writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            with contextlib.suppress(Exception):  # the transport may be closing already
                transport.pause_reading()
        self.socket_reader.feed_eof()


def _error_text(error: MailroomError) -> str:
    message = str(error).replace("\r", " ").replace("\n", " ")[:200]
    if isinstance(error, NotFound):
        return f"[NONEXISTENT] {message}"
    if isinstance(error, Conflict):
        return f"[ALREADYEXISTS] {message}"
    if isinstance(error, LimitExceeded):
        return f"[OVERQUOTA] {message}"
    if isinstance(error, CannotCalculateChanges):
        return f"[UNAVAILABLE] {message}"
    if isinstance(error, InvalidParams):
        return f"[CANNOT] {message}"
    return message


async def start_imap(
    mailroom: Mailroom, *, sock: socket.socket, implicit_tls: bool, tls_context: ssl.SSLContext | None
) -> asyncio.Server:
    """Serve IMAP on a bound listening socket (``implicit_tls``: IMAPS)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ImapSession(mailroom, reader, writer, tls_context, implicit_tls=implicit_tls)
        try:
            await session.run()
        except asyncio.CancelledError:  # the server shuts down: the connection goes with it
            writer.close()

    return await asyncio.start_server(
        handle, sock=sock, ssl=tls_context if implicit_tls else None, limit=MAX_LINE + 2
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
