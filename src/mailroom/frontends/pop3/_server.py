"""The POP3 listeners: ``pop3`` (plain, STLS) and ``pop3s`` (implicit TLS), on the sockets
``mailroom serve`` bound and every worker inherited, or bound here from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailroom.frontends.listeners import bind, listening_socket
from mailroom.frontends.pop3._session import TLS_HANDSHAKE_SECONDS, Pop3Session
from mailroom.frontends.pop3._wire import MAX_LINE
from mailroom.frontends.smtp.certificate import server_context

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.pop3")


@dataclass
class Pop3Listeners:
    """The running POP3 servers by listener name, and their open sessions."""

    servers: dict[str, asyncio.Server] = field(default_factory=dict)
    sessions: set[asyncio.Task[object]] = field(default_factory=set)

    def address(self, name: str) -> tuple[str, int]:
        host, port = self.servers[name].sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        for task in list(self.sessions):
            task.cancel()
        for task in list(self.sessions):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.servers.clear()


def _socket(
    mailroom: Mailroom, sockets: Mapping[str, socket.socket] | None, name: str, port_setting: str
) -> socket.socket | None:
    if sockets is not None:
        return sockets.get(name)
    port = getattr(mailroom.settings, port_setting)
    return bind(name, mailroom.settings.pop3_host, port) if port else None


async def start_pop3(
    mailroom: Mailroom,
    sockets: Mapping[str, socket.socket] | None = None,
    *,
    pop3: tuple[str, int] | None = None,
    pop3s: tuple[str, int] | None = None,
) -> Pop3Listeners:
    """Serve POP3 on the inherited sockets (``sockets``), or where ``pop3`` / ``pop3s`` say
    (tests: port 0 is any free port), or else on the ports of the settings."""
    running = Pop3Listeners()
    context: ssl.SSLContext | None = None

    def serve(secure: bool) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            running.sessions.add(task)
            try:
                await Pop3Session(mailroom, reader, writer, context, secure=secure).run()
            finally:
                running.sessions.discard(task)

        return connected

    try:
        for name, port_setting, given, implicit in (
            ("pop3", "pop3_port", pop3, False),
            ("pop3s", "pop3s_port", pop3s, True),
        ):
            if given is not None:
                sock: socket.socket | None = listening_socket(*given)
            elif pop3 is not None or pop3s is not None:
                continue
            else:
                sock = _socket(mailroom, sockets, name, port_setting)
            if sock is None:
                continue
            if context is None:
                context = server_context(mailroom.settings)
            running.servers[name] = await asyncio.start_server(
                serve(implicit),
                sock=sock,
                ssl=context if implicit else None,
                ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS if implicit else None,
                limit=MAX_LINE + 2,
            )
    except BaseException:
        await running.close()
        raise
    return running
