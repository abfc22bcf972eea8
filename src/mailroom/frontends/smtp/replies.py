"""Domain errors → SMTP replies (RFC 5321 codes, RFC 3463 enhanced codes): the SMTP
front-ends' one mapper."""

from __future__ import annotations

from mailroom.errors import MailroomError
from mailroom.frontends.smtp._handler import INTERNAL_ERROR

#: Stable code → (reply code, enhanced status). Anything else is a temporary failure of ours
#: (``INTERNAL_ERROR``): a sending client retries a 4xx, and we would rather it did.
SMTP_REPLIES: dict[str, tuple[int, str]] = {
    "sender_not_allowed": (553, "5.7.1"),
    "forbidden": (550, "5.7.1"),
    "rate_limited": (451, "4.7.1"),
    "payload_too_large": (552, "5.3.4"),
    "limit_exceeded": (552, "5.2.2"),
    "unavailable": (451, "4.3.0"),
}


def error_reply(exc: MailroomError) -> str:
    """One SMTP reply line for ``exc``; the message is made one printable line."""
    known = SMTP_REPLIES.get(exc.code)
    if known is None:
        return INTERNAL_ERROR
    code, enhanced = known
    text = "".join(c if c.isprintable() else " " for c in exc.message)[:400]
    return f"{code} {enhanced} {text}"
