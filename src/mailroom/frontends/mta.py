"""The listeners the mail daemons on the host connect to: Postfix's socketmap (TCP and/or a
UNIX socket) and Dovecot's dict proxy (a UNIX socket). Each is off until its setting names a
port or a path; ``mailroom serve`` binds them once and every worker serves them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mailroom.frontends.dovecot import start_dovecot_dict
from mailroom.frontends.listeners import UNIX_LISTENERS, bind, unix_socket
from mailroom.frontends.socketmap import start_socketmap

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.mta")


def _socket(
    mailroom: Mailroom, sockets: Mapping[str, socket.socket] | None, name: str
) -> socket.socket | None:
    """The inherited socket ``name``, or (not under ``mailroom serve``) one bound here."""
    if sockets is not None:
        return sockets.get(name)
    settings = mailroom.settings
    if name == "socketmap":
        return (
            bind(name, settings.socketmap_host, settings.socketmap_port) if settings.socketmap_port else None
        )
    listener = next(u for u in UNIX_LISTENERS if u.name == name)
    path = getattr(settings, listener.path_setting)
    return unix_socket(os.fspath(path), listener.mode) if path else None


async def start_mta_listeners(
    mailroom: Mailroom, sockets: Mapping[str, socket.socket] | None = None
) -> list[asyncio.Server]:
    """Serve socketmap and the Dovecot dict on the sockets the settings switch on."""
    servers: list[asyncio.Server] = []
    try:
        for name in ("socketmap", "socketmap-unix"):
            sock = _socket(mailroom, sockets, name)
            if sock is not None:
                servers.append(await start_socketmap(mailroom, sock=sock))
        sock = _socket(mailroom, sockets, "dovecot-dict")
        if sock is not None:
            servers.append(await start_dovecot_dict(mailroom, sock=sock))
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers
