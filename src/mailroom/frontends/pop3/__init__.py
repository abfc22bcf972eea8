"""The POP3 front-end (RFC 1939 with CAPA, UIDL, TOP, STLS and SASL PLAIN): docs/pop3.md."""

from mailroom.frontends.pop3._server import Pop3Listeners, start_pop3

__all__ = ["Pop3Listeners", "start_pop3"]
