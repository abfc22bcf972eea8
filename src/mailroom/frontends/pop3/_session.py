"""One POP3 connection (RFC 1939), from greeting to QUIT.

States: AUTHORIZATION (CAPA, STLS, USER/PASS, AUTH PLAIN, QUIT), then TRANSACTION over a
snapshot of the INBOX taken when the maildrop was locked (STAT, LIST, UIDL, RETR, TOP,
DELE, RSET, NOOP, CAPA, QUIT), then UPDATE at QUIT, where the deletions are carried out. A
connection that ends without QUIT deletes nothing and releases its lock.

Policy and data come from the ``mail.pop3.*`` registry methods (services/mail/pop3.py); this
module only speaks the protocol. Response codes (RFC 2449 ``RESP-CODES``, RFC 3206
``AUTH-RESP-CODE``): ``[AUTH]`` for refused credentials, ``[IN-USE]`` for a maildrop another
session holds, ``[SYS/TEMP]`` for a temporary failure (the brute-force guard's lockout too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
import secrets
import ssl
import time
from typing import TYPE_CHECKING, Any

from mailroom.auth.principal import INTERNAL
from mailroom.errors import Unavailable
from mailroom.frontends.pop3._wire import (
    MAX_LINE,
    Command,
    CommandError,
    multiline,
    normalise,
    number,
    parse_command,
    top,
)
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom
    from mailroom.events import OpenSession

log = logging.getLogger("mailroom.pop3")

#: Failed logins on one connection after which it is closed.
MAX_AUTH_FAILURES = 3
#: A held lock is renewed when a command comes this long after the last renewal.
RENEW_SECONDS = 60.0
#: How long a TLS handshake (POP3S, STLS) may take.
TLS_HANDSHAKE_SECONDS = 30.0

_TEMPORARY = b"-ERR [SYS/TEMP] temporary failure, try again later"


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class _Closed(Exception):
    """The connection is over (QUIT, too many failures, the client went away)."""


class Pop3Session:
    """The state machine of one connection."""

    def __init__(
        self,
        mailroom: Mailroom,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: ssl.SSLContext | None,
        *,
        secure: bool,
    ) -> None:
        self.mailroom = mailroom
        self.settings = mailroom.settings
        self.reader, self.writer = reader, writer
        self.tls = tls
        self.secure = secure
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.user: str | None = None  # USER given, waiting for PASS
        self.failures = 0
        # TRANSACTION state
        self.user_id: int | None = None
        self.session = secrets.token_hex(16)
        self.messages: list[tuple[int, int]] = []  # (email id, size), message n at n - 1
        self.deleted: set[int] = set()  # message numbers
        self.renewed = 0.0
        # Cut when the account's access ends (mailroom.events.OpenSessions): ``-ERR`` and
        # close, at once while waiting for a command (the input ends), else after the
        # running one.
        self.registered: OpenSession | None = None
        self.kicked: str | None = None

    # -- plumbing ----------------------------------------------------------------------------

    async def _invoke(self, name: str, params: dict[str, Any]) -> Any:
        info = CallInfo(protocol="pop3", client_ip=self.client_ip)
        return await self.mailroom.runner.invoke(name, params, INTERNAL, info)

    async def _send(self, *lines: bytes) -> None:
        self.writer.write(b"".join(line + b"\r\n" for line in lines))
        await self.writer.drain()

    async def _send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _read_line(self) -> bytes:
        timeout = self.settings.pop3_idle_timeout_seconds
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
        except TimeoutError:
            await self._send(b"-ERR autologout: idle for too long")
            raise _Closed from None
        except asyncio.LimitOverrunError:
            await self._send(b"-ERR line too long")
            raise _Closed from None
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            raise _Closed from None

    @property
    def plaintext_ok(self) -> bool:
        """May credentials be sent on this connection as it is now?"""
        return self.secure or (self.settings.pop3_allow_plaintext_loopback and _is_loopback(self.client_ip))

    # -- the connection ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._send(b"+OK mailroom POP3 server ready")
            while True:
                line = await self._read_line()
                try:
                    command = parse_command(line)
                except CommandError as error:
                    await self._send(b"-ERR " + str(error).encode())
                    continue
                if self.user_id is None:
                    await self._authorization(command)
                else:
                    await self._transaction(command)
                if self.kicked is not None:
                    raise _Closed
        except (_Closed, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.mailroom.runtime.events.sessions.end(self.registered)
            if self.kicked is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._send(b"-ERR [AUTH] " + self.kicked.encode()), 5)
            # Not cut short by a cancellation (the listeners' close() cancels the sessions):
            # a release interrupted inside its database call leaves the maildrop locked and
            # the connection being opened for it unclosed. The cancellation is passed on after.
            release = asyncio.ensure_future(self._release())
            try:
                await asyncio.shield(release)
            except asyncio.CancelledError:
                await release
                raise
            finally:
                self.writer.close()

    async def _release(self) -> None:
        """Without QUIT nothing is deleted; the lock goes."""
        if self.user_id is None:
            return
        user_id, self.user_id = self.user_id, None
        try:
            await self._invoke(
                "mail.pop3.close", {"user_id": user_id, "session": self.session, "deleted": []}
            )
        except Exception:
            log.exception("could not release the POP3 lock of user %d", user_id)

    def kick(self, reason: str) -> None:
        """The account's access ended: ``-ERR`` and close (nothing deleted: no UPDATE state)."""
        self.kicked = reason.replace("\r", " ").replace("\n", " ")[:200]
        transport = self.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            with contextlib.suppress(Exception):  # the transport may be closing already
                transport.pause_reading()
        self.reader.feed_eof()

    # -- AUTHORIZATION ----------------------------------------------------------------------

    def _capabilities(self) -> list[bytes]:
        caps = [b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
        if self.user_id is None:
            if self.plaintext_ok:
                caps += [b"USER", b"SASL PLAIN"]
            if not self.secure and self.tls is not None:
                caps.append(b"STLS")
        caps.append(b"IMPLEMENTATION mailroom")
        return caps

    async def _authorization(self, command: Command) -> None:
        keyword, args = command.keyword, command.args
        if keyword == "CAPA" and not args:
            await self._send(b"+OK capability list follows", *self._capabilities(), b".")
        elif keyword == "QUIT" and not args:
            await self._send(b"+OK mailroom POP3 server signing off")
            raise _Closed
        elif keyword == "STLS" and not args:
            await self._starttls()
        elif keyword == "USER" and len(args) == 1:
            if not self.plaintext_ok:
                await self._send(b"-ERR [AUTH] plaintext login needs TLS first: use STLS")
                return
            self.user = args[0]
            await self._send(b"+OK send the password")
        elif keyword == "PASS" and command.rest:
            user, self.user = self.user, None
            if user is None:
                await self._send(b"-ERR USER first")
                return
            await self._login(user, command.rest)
        elif keyword == "AUTH":
            await self._auth(args)
        elif keyword in ("APOP",):
            await self._send(b"-ERR [AUTH] APOP is not supported: use USER/PASS or AUTH PLAIN")
        else:
            await self._send(b"-ERR unknown command or wrong arguments in this state")

    async def _starttls(self) -> None:
        if self.secure or self.tls is None:
            await self._send(b"-ERR TLS is already on" if self.secure else b"-ERR STLS is not available")
            return
        # Anything the client sent after STLS before the handshake would be plaintext passed
        # into the TLS session (the STARTTLS command injection): refuse it.
        buffered = getattr(self.reader, "_buffer", b"")
        if buffered:
            await self._send(b"-ERR nothing may follow STLS before the TLS handshake")
            raise _Closed
        await self._send(b"+OK begin TLS negotiation")
        try:
            await self.writer.start_tls(self.tls, ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            raise _Closed from None
        self.secure = True
        self.user = None

    async def _auth(self, args: tuple[str, ...]) -> None:
        if not args:
            await self._send(b"+OK SASL mechanisms follow", b"PLAIN", b".")
            return
        if args[0].upper() != "PLAIN" or len(args) > 2:
            await self._send(b"-ERR [AUTH] unsupported SASL mechanism: use PLAIN")
            return
        if not self.plaintext_ok:
            await self._send(b"-ERR [AUTH] plaintext login needs TLS first: use STLS")
            return
        if len(args) == 2:
            response = args[1]
        else:
            await self._send(b"+ ")
            response = (await self._read_line()).rstrip(b"\r\n").decode("ascii", "replace")
        if response == "*":
            await self._send(b"-ERR authentication cancelled")
            return
        credentials = _plain(response)
        if credentials is None:
            await self._send(b"-ERR [AUTH] malformed PLAIN response")
            await self._failed()
            return
        await self._login(*credentials)

    async def _failed(self) -> None:
        self.failures += 1
        if self.failures >= MAX_AUTH_FAILURES:
            raise _Closed

    async def _login(self, user: str, password: str) -> None:
        try:
            verdict = await self._invoke("mail.pop3.login", {"user": user[:512], "password": password[:4096]})
        except Unavailable:  # the user directory (LDAP) did not answer: not a wrong password
            await self._send(b"-ERR [SYS/TEMP] the user directory is unavailable, try again later")
            return
        except Exception:
            log.exception("POP3 login failed unexpectedly")
            await self._send(_TEMPORARY)
            return
        if not verdict["ok"]:
            reason = verdict["reason"]
            if reason == "rate_limited":
                await self._send(b"-ERR [SYS/TEMP] too many failed logins, try again later")
            elif reason == "disabled":
                await self._send(b"-ERR [AUTH] POP3 is not enabled for this account")
            else:
                await self._send(b"-ERR [AUTH] invalid user name or password")
            await self._failed()
            return
        user_id = int(verdict["user_id"])
        try:
            maildrop = await self._invoke("mail.pop3.open", {"user_id": user_id, "session": self.session})
        except Exception:
            log.exception("could not open the POP3 maildrop of user %d", user_id)
            await self._send(_TEMPORARY)
            return
        if not maildrop["locked"]:
            await self._send(b"-ERR [IN-USE] the maildrop is in use by another POP3 session")
            return
        self.user_id = user_id
        self.renewed = time.monotonic()
        self.registered = self.mailroom.runtime.events.sessions.open(
            user_id, str(verdict["email"]), "pop3", str(verdict.get("credential") or "other"), self.kick
        )
        self.messages = [(int(m["id"]), int(m["size"])) for m in maildrop["messages"]]
        count, size = self._stat()
        await self._send(f"+OK maildrop locked: {count} messages ({size} octets)".encode())

    # -- TRANSACTION ------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int]:
        live = [size for n, (_, size) in enumerate(self.messages, 1) if n not in self.deleted]
        return len(live), sum(live)

    def _message(self, arg: str) -> int | None:
        """The message number ``arg`` names, if it exists and is not deleted."""
        n = number(arg)
        if n is None or not 1 <= n <= len(self.messages) or n in self.deleted:
            return None
        return n

    async def _renew(self) -> None:
        if time.monotonic() - self.renewed < RENEW_SECONDS:
            return
        assert self.user_id is not None
        held = await self._invoke("mail.pop3.renew", {"user_id": self.user_id, "session": self.session})
        if not held:
            self.user_id = None  # another session took it over: nothing of ours to release
            await self._send(b"-ERR [IN-USE] the maildrop lock was lost")
            raise _Closed
        self.renewed = time.monotonic()

    async def _transaction(self, command: Command) -> None:
        keyword, args = command.keyword, command.args
        try:
            await self._renew()
            await self._transaction_command(keyword, args)
        except _Closed:
            raise
        except (ConnectionError, ssl.SSLError):
            raise _Closed from None
        except Exception:
            log.exception("POP3 %s failed", keyword)
            await self._send(_TEMPORARY)

    async def _transaction_command(self, keyword: str, args: tuple[str, ...]) -> None:
        if keyword == "STAT" and not args:
            count, size = self._stat()
            await self._send(f"+OK {count} {size}".encode())
        elif keyword in ("LIST", "UIDL") and len(args) <= 1:
            await self._listing(keyword, args)
        elif keyword == "RETR" and len(args) == 1:
            await self._retrieve(args[0], None)
        elif keyword == "TOP" and len(args) == 2:
            lines = number(args[1])
            if lines is None:
                await self._send(b"-ERR the line count must be a non-negative number")
            else:
                await self._retrieve(args[0], lines)
        elif keyword == "DELE" and len(args) == 1:
            n = self._message(args[0])
            if n is None:
                await self._send(b"-ERR no such message")
            else:
                self.deleted.add(n)
                await self._send(f"+OK message {n} deleted".encode())
        elif keyword == "NOOP" and not args:
            await self._send(b"+OK")
        elif keyword == "RSET" and not args:
            self.deleted.clear()
            count, size = self._stat()
            await self._send(f"+OK maildrop has {count} messages ({size} octets)".encode())
        elif keyword == "CAPA" and not args:
            await self._send(b"+OK capability list follows", *self._capabilities(), b".")
        elif keyword == "QUIT" and not args:
            await self._quit()
        else:
            await self._send(b"-ERR unknown command or wrong arguments in this state")

    async def _listing(self, keyword: str, args: tuple[str, ...]) -> None:
        def item(n: int) -> bytes:
            email_id, size = self.messages[n - 1]
            return f"{n} {size if keyword == 'LIST' else email_id}".encode()

        if args:
            n = self._message(args[0])
            await self._send(b"-ERR no such message" if n is None else b"+OK " + item(n))
            return
        numbers = [n for n in range(1, len(self.messages) + 1) if n not in self.deleted]
        await self._send_raw(b"".join([b"+OK\r\n", *(item(n) + b"\r\n" for n in numbers), b".\r\n"]))

    async def _retrieve(self, arg: str, lines: int | None) -> None:
        n = self._message(arg)
        if n is None:
            await self._send(b"-ERR no such message")
            return
        assert self.user_id is not None
        download = await self._invoke(
            "mail.pop3.message", {"user_id": self.user_id, "id": self.messages[n - 1][0]}
        )
        raw = download.content
        if not raw:
            await self._send(b"-ERR message %d is no longer in the mailbox" % n)
            return
        message = normalise(raw)
        if lines is None:
            head = f"+OK {len(message)} octets\r\n".encode()
        else:
            message, head = top(message, lines), b"+OK top of message follows\r\n"
        await self._send_raw(head + multiline(message))

    async def _quit(self) -> None:
        assert self.user_id is not None
        user_id, self.user_id = self.user_id, None
        deleted = sorted(self.messages[n - 1][0] for n in self.deleted)
        try:
            await self._invoke(
                "mail.pop3.close", {"user_id": user_id, "session": self.session, "deleted": deleted}
            )
        except Exception:
            log.exception("POP3 QUIT of user %d failed", user_id)
            self.user_id = user_id  # released in run()'s finally, without deletions
            await self._send(b"-ERR [SYS/TEMP] some deleted messages were not removed")
            raise _Closed from None
        left = len(self.messages) - len(self.deleted)
        await self._send(f"+OK mailroom POP3 server signing off ({left} messages left)".encode())
        raise _Closed


def _plain(response: str) -> tuple[str, str] | None:
    """``(user, password)`` of a SASL PLAIN response (RFC 4616), or None if malformed. An
    authorisation identity other than the user's own is refused (no proxy logins)."""
    if response == "=":
        return None
    try:
        decoded = base64.b64decode(response.encode("ascii"), validate=True)
        authzid, authcid, password = (part.decode("utf-8") for part in decoded.split(b"\x00"))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    if not authcid or not password or (authzid and authzid.lower() != authcid.lower()):
        return None
    return authcid, password


__all__ = ["MAX_LINE", "Pop3Session"]
