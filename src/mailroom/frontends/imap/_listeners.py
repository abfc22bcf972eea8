"""IMAP (STARTTLS) and IMAPS (implicit TLS) on the sockets ``mailroom serve`` bound, or (not
under ``serve``: tests, a worker run alone) on ports bound here."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mailroom.frontends.imap._server import start_imap
from mailroom.frontends.listeners import bind
from mailroom.frontends.smtp.certificate import server_context

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom


async def start_imap_listeners(
    mailroom: Mailroom, sockets: Mapping[str, socket.socket] | None = None
) -> list[asyncio.Server]:
    """Serve ``imap`` and ``imaps`` where the settings switch them on."""
    settings = mailroom.settings
    servers: list[asyncio.Server] = []
    wanted = {"imap": settings.imap_port, "imaps": settings.imaps_port}
    if not any(wanted.values()) and not (sockets and ("imap" in sockets or "imaps" in sockets)):
        return servers
    context = await asyncio.to_thread(server_context, settings)
    try:
        for name, port in wanted.items():
            if sockets is not None:
                sock = sockets.get(name)
            else:
                sock = bind(name, settings.imap_host, port) if port else None
            if sock is not None:
                servers.append(
                    await start_imap(mailroom, sock=sock, implicit_tls=name == "imaps", tls_context=context)
                )
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers
