"""Postfix socketmap look-ups (socketmap_table(5)): see ``_server`` and docs/internal-api.md."""

from mailroom.frontends.socketmap._netstring import MAX_LENGTH, NetstringError, NetstringReader, encode
from mailroom.frontends.socketmap._server import SocketmapProtocol, start_socketmap

__all__ = [
    "MAX_LENGTH",
    "NetstringError",
    "NetstringReader",
    "SocketmapProtocol",
    "encode",
    "start_socketmap",
]
