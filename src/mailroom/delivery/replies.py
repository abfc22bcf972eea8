"""Building an auto-reply (RFC 3834) from the ``autoreply`` intent ingest recorded.

Whether to answer at all (lists, bulk, auto-submitted and null senders, once per sender per
period) was decided at ingest (delivery/autoreply.py); this module only writes the reply:

- ``Auto-Submitted: auto-replied`` (RFC 3834 section 5), so other responders stay quiet;
- ``In-Reply-To`` and ``References`` naming the message answered (section 3.1.4);
- the subject configured for the mailbox, else ``Re: `` and the original subject;
- ``From`` the mailbox itself, ``To`` the envelope sender it answers (section 4);
- sent with the null envelope sender ``<>`` (section 3.3), so it can never be bounced back
  into a loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from typing import Any

from mailroom.delivery.signing import format_address, new_message_id

_RE = ("re:", "aw:", "sv:", "vs:", "antw:")


def reply_subject(configured: str | None, original: str | None) -> str:
    if configured and configured.strip():
        return configured.strip()
    subject = (original or "").strip()
    if subject.lower().startswith(_RE):
        return subject
    return f"Re: {subject}" if subject else "Re: your message"


def _bracket(message_id: str) -> str:
    value = message_id.strip()
    return value if value.startswith("<") else f"<{value}>"


def build_autoreply(payload: Mapping[str, Any], *, to: str, hostname: str, now: datetime) -> bytes:
    """The reply's bytes, from an intent's ``payload`` (see store/intents.py)."""
    mailbox = str(payload["from"])
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = format_address(payload.get("display_name") or None, mailbox)
    msg["To"] = to
    msg["Subject"] = reply_subject(payload.get("subject"), payload.get("original_subject"))
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = new_message_id(mailbox.rpartition("@")[2] or hostname)
    in_reply_to = payload.get("in_reply_to")
    if in_reply_to:
        msg["In-Reply-To"] = _bracket(str(in_reply_to))
    references: Sequence[str] = payload.get("references") or []
    if references:
        msg["References"] = " ".join(_bracket(str(r)) for r in references)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Precedence"] = "auto_reply"
    msg.set_content(str(payload.get("body") or ""))
    return msg.as_bytes()
