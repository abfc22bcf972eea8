"""Dovecot's dict-proxy protocol (``proxy:SOCKET:NAME``): see ``_server`` and docs/internal-api.md."""

from mailroom.frontends.dovecot._server import DictProtocol, start_dovecot_dict, tabescape, tabunescape

__all__ = ["DictProtocol", "start_dovecot_dict", "tabescape", "tabunescape"]
