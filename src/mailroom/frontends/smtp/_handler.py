"""The aiosmtpd handler: RCPT and DATA become registry calls, their answers SMTP replies.

Every failure of ours is temporary (``451 4.3.0``): a sending MTA retries a 4xx, and a
retry never stores a message twice (ingest deduplicates), whereas a 5xx would bounce mail we
could have taken.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mailroom.auth.principal import INTERNAL
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.smtp")

INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"


def _peer_ip(session: Any) -> str | None:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _extended(session: Any) -> bool:
    """ESMTP or SMTP: what XCLIENT's PROTO said of the proxy's client, else this session's."""
    proto = getattr(session, "xclient_proto", None)
    if proto is not None:
        return bool(proto == "ESMTP")
    return bool(getattr(session, "extended_smtp", False))


def protocol_of(*, lmtp: bool, extended: bool, tls: bool, authenticated: bool) -> str:
    """The session's ``with`` keyword for the ``Received`` line (RFC 5321 §4.4, RFC 3848: S
    for TLS, A for authentication; plain SMTP after HELO)."""
    if not lmtp and not extended:
        return "SMTP"
    return ("LMTP" if lmtp else "ESMTP") + ("S" if tls else "") + ("A" if authenticated else "")


def is_utf8(text: str) -> bool:
    """False for a command argument holding bytes that are not UTF-8 (aiosmtpd keeps them as
    lone surrogates, which no registry call accepts)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def envelope_sender(mail_from: str | None) -> str:
    """The reverse path without brackets; ``''`` for the null sender of bounces."""
    value = (mail_from or "").strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value


class DeliveryHandler:
    """Handler for both listeners; ``lmtp`` decides how DATA answers (one reply per recipient
    for LMTP, RFC 2033; one for the whole message for SMTP)."""

    def __init__(self, mailroom: Mailroom, *, lmtp: bool) -> None:
        self.mailroom = mailroom
        self.lmtp = lmtp
        self.protocol = "lmtp" if lmtp else "smtp"
        self.max_recipients = mailroom.settings.max_recipients

    async def _invoke(self, name: str, params: dict[str, Any], session: Any) -> Any:
        info = CallInfo(protocol=self.protocol, client_ip=_peer_ip(session))
        return await self.mailroom.runner.invoke(name, params, INTERNAL, info)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        ehlo_lines = getattr(server, "ehlo_lines", None)  # XCLIENT for trusted proxies
        return list(ehlo_lines(responses)) if ehlo_lines is not None else responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        # Refused now, not with a 451 at DATA that the client would retry for days.
        if not is_utf8(address):
            return "553 5.1.7 The sender address is not UTF-8"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        if not is_utf8(address):
            return "553 5.1.3 The recipient address is not UTF-8"
        try:
            result = await self._invoke("mail.delivery.check", {"address": address, "hold": True}, session)
        except Exception:
            log.exception("recipient check failed for %s", address)
            return INTERNAL_ERROR
        if result["accepted"]:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            _handles(envelope)[len(envelope.rcpt_tos) - 1] = result.get("handle")
        return str(result["reply"])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipients = list(envelope.rcpt_tos)
        raw = envelope.original_content or b""
        held = _handles(envelope)
        helo = str(getattr(session, "host_name", None) or "")
        params = {
            "raw": bytes(raw),
            "mail_from": envelope_sender(envelope.mail_from),
            "recipients": recipients,
            "source": self.protocol,
            "session": {
                "protocol": protocol_of(
                    lmtp=self.lmtp,
                    extended=_extended(session),
                    tls=getattr(session, "ssl", None) is not None,
                    authenticated=bool(getattr(session, "authenticated", False)),
                ),
                "helo": helo if helo and is_utf8(helo) else None,  # only for Received
                "peer_ip": _peer_ip(session),
                "peer_name": getattr(session, "xclient_name", None),  # a trusted proxy's XCLIENT
            },
            "handles": [held.get(i) for i in range(len(recipients))],
        }
        try:
            statuses = await self._invoke("mail.delivery.deliver", params, session)
            replies = [str(s["reply"]) for s in statuses]
            if len(replies) != len(recipients):
                raise RuntimeError("one status per recipient expected")
        except Exception:
            log.exception("delivery failed; answering a temporary failure")
            replies = [f"451 4.3.0 <{r}>: internal error, try again later" for r in recipients]
        if self.lmtp:
            return "\r\n".join(replies)
        return smtp_reply(replies)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %r", error)
        return INTERNAL_ERROR


def _handles(envelope: Any) -> dict[int, str | None]:
    """RCPT's resolution handles on this envelope, by position in ``rcpt_tos`` (aiosmtpd makes
    a new envelope for every transaction, so they never outlive it)."""
    held: dict[int, str | None] | None = getattr(envelope, "mailroom_handles", None)
    if held is None:
        held = {}
        envelope.mailroom_handles = held
    return held


def smtp_reply(replies: list[str]) -> str:
    """One SMTP reply for a message with per-recipient outcomes.

    Any temporary failure makes the whole message temporary (the client resends to every
    recipient; those already stored are recognised and not stored twice). Otherwise a
    message stored for anyone is accepted; refused by all, the first refusal answers.
    """
    temporary = [r for r in replies if r.startswith("4")]
    if temporary:
        return temporary[0]
    if any(r.startswith("2") for r in replies):
        return "250 2.0.0 OK: message stored"
    return replies[0] if replies else "554 5.5.1 No valid recipients"
