"""The Postfix socketmap listener (socketmap_table(5)), on TCP and/or a UNIX socket.

Each request is a netstring ``<table> <key>``; each reply one netstring: ``OK <value>``,
``NOTFOUND ``, ``TEMP <reason>``, ``TIMEOUT <reason>`` or ``PERM <reason>``. A connection
carries any number of requests, answered in order. The answer comes from the registry
method ``mail.maps.lookup`` (called with the internal principal, so the runner accounts it
like every other call); this module only speaks the protocol:

- an unknown table, or a request that is not ``<table> <key>`` in UTF-8: ``PERM``;
- a malformed netstring or one over 100,000 bytes: ``PERM`` and the connection is closed
  (the stream cannot be followed after it);
- the database or anything else failing: ``TEMP`` (Postfix defers the mail and retries);
- no answer within :data:`LOOKUP_TIMEOUT_SECONDS`: ``TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from mailroom.auth.principal import INTERNAL
from mailroom.errors import InvalidParams
from mailroom.frontends.socketmap._netstring import MAX_LENGTH, NetstringError, NetstringReader, encode
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.socketmap")

TABLES = frozenset(("domain", "mailbox", "alias", "transport", "sender_login", "recipient", "sender_access"))
#: Postfix waits ``socketmap_timeout`` (100 s) by default; answer well before.
LOOKUP_TIMEOUT_SECONDS = 10.0
#: Requests read ahead of their answers on one connection before reading pauses.
MAX_PENDING = 64
#: A connection with no request for this long is closed (Postfix reconnects when it needs).
IDLE_TIMEOUT_SECONDS = 300.0

_NOTFOUND = b"NOTFOUND "


def _printable(value: str, limit: int = 64) -> str:
    """A piece of the request fit to quote in a reply: no control characters, short."""
    text = "".join(c if c.isprintable() else "?" for c in value[:limit])
    return text + ("..." if len(value) > limit else "")


class SocketmapProtocol(asyncio.Protocol):
    """One client connection: netstrings in, answers out, in order."""

    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom
        self.reader = NetstringReader()
        self.pending: deque[bytes] = deque()
        self.transport: asyncio.Transport | None = None
        self.client_ip: str | None = None
        self.worker: asyncio.Task[None] | None = None
        self.paused = False
        self.closing = False
        self.idle: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._arm_idle()
        try:
            frames = self.reader.feed(data)
        except NetstringError as error:
            self.pending.append(b"\x00" + str(error).encode())  # answered PERM, then closed
            self.closing = True
        else:
            self.pending.extend(frames)
        if len(self.pending) >= MAX_PENDING and self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True
        if self.pending and self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._answer_all())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.idle is not None:
            self.idle.cancel()
        if self.worker is not None:
            self.worker.cancel()

    # -- answering -------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.transport is not None:
            self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_SECONDS, self.transport.close)

    async def _answer_all(self) -> None:
        try:
            while self.pending and self.transport is not None and not self.transport.is_closing():
                frame = self.pending.popleft()
                if frame[:1] == b"\x00":  # the stream broke here
                    self.transport.write(encode(b"PERM " + frame[1:]))
                    self.transport.close()
                    return
                self.transport.write(encode(await self.answer(frame)))
                if self.paused and len(self.pending) < MAX_PENDING // 2:
                    self.transport.resume_reading()
                    self.paused = False
        finally:
            self.worker = None

    async def answer(self, frame: bytes) -> bytes:
        """The reply to one request (without its netstring framing)."""
        try:
            request = frame.decode("utf-8")
        except UnicodeDecodeError:
            return b"PERM request is not UTF-8"
        table, sep, key = request.partition(" ")
        if not sep:
            return b"PERM malformed request: expected '<table> <key>'"
        if table not in TABLES:
            return f"PERM unknown table {_printable(table)!r}".encode()
        info = CallInfo(protocol="socketmap", client_ip=self.client_ip)
        try:
            result: Any = await asyncio.wait_for(
                self.mailroom.runner.invoke("mail.maps.lookup", {"table": table, "key": key}, INTERNAL, info),
                LOOKUP_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            log.warning("socketmap %s look-up timed out", table)
            return b"TIMEOUT look-up took too long"
        except InvalidParams:
            return b"PERM invalid key"
        except Exception:
            log.exception("socketmap %s look-up failed", table)
            return b"TEMP temporary failure, try again later"
        if not result["found"]:
            return _NOTFOUND
        reply = b"OK " + str(result["value"]).encode()
        if len(reply) > MAX_LENGTH:
            return b"PERM answer too long"
        return reply


async def start_socketmap(
    mailroom: Mailroom,
    *,
    sock: Any = None,
    host: str | None = None,
    port: int | None = None,
    path: str | None = None,
) -> asyncio.Server:
    """Serve socketmap on ``sock`` (an already bound listening socket, TCP or UNIX), or
    else on ``path`` (a UNIX socket) or ``host``:``port`` (TCP; port 0: any free port)."""
    loop = asyncio.get_running_loop()

    def factory() -> SocketmapProtocol:
        return SocketmapProtocol(mailroom)

    if sock is not None and sock.family == socket.AF_UNIX:
        return await loop.create_unix_server(factory, sock=sock)
    if sock is not None:
        return await loop.create_server(factory, sock=sock)
    if path is not None:
        return await loop.create_unix_server(factory, path=path)
    return await loop.create_server(factory, host=host or "127.0.0.1", port=port or 0)
