"""The IMAP4rev2 / IMAP4rev1 front-end (RFC 9051, RFC 3501): see ``_server`` and docs/imap.md."""

from mailroom.frontends.imap._listeners import start_imap_listeners
from mailroom.frontends.imap._server import ImapSession, start_imap

__all__ = ["ImapSession", "start_imap", "start_imap_listeners"]
