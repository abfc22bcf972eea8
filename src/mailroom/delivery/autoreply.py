"""Whether a mailbox's auto-reply answers a message (RFC 3834), decided at ingest.

The decision and its once-per-sender-per-period bookkeeping happen here; building and sending
the reply is the outbound side's (an ``autoreply`` intent, see store/intents.py).

No reply when (RFC 3834 section 2 and common practice):

- the auto-reply is off, or today (UTC) is outside ``reply_start`` .. ``reply_end``;
- the envelope sender is empty (a bounce) or looks automatic (``MAILER-DAEMON``,
  ``owner-*``, ``*-request``, ``*-bounces``, ``noreply``, ...) or is the mailbox itself;
- the message is automatic: ``Auto-Submitted`` other than ``no``, ``Precedence`` bulk /
  list / junk, or a mailing list (``List-Id``, ``List-Unsubscribe``);
- the message is spam;
- the mailbox is not addressed in ``To`` or ``Cc`` (neither its address nor the address
  the mail was sent to, which may be an alias);
- this sender got a reply from this mailbox within the period (7 days by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from mailroom.delivery._model import ParsedMessage
from mailroom.store.recipients import Mailbox

_AUTOMATIC_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|listserv|majordomo|owner-.*|.*-request|.*-bounces?(\+.*)?|"
    r"no-?reply|do-?not-?reply|bounces?(\+.*)?)$",
    re.IGNORECASE,
)
_BULK = frozenset({"bulk", "list", "junk"})


def automatic_sender(mail_from: str) -> bool:
    local = mail_from.rpartition("@")[0] if "@" in mail_from else mail_from
    return not mail_from or bool(_AUTOMATIC_SENDER.match(local))


def reply_blocker(
    parsed: ParsedMessage,
    *,
    user: Mailbox,
    mail_from: str,
    addressed_as: Iterable[str],
    today: date,
    spam: bool,
) -> str | None:
    """Why no auto-reply goes out for this message (None: one should, subject to the
    per-sender period, which the caller checks in the store)."""
    if not user.reply_enabled:
        return "auto-reply off"
    start, end = user.reply_start, user.reply_end
    if start is not None and today < start:
        return "auto-reply not started"
    if end is not None and today > end:
        return "auto-reply ended"
    sender = mail_from.strip().lower()
    if automatic_sender(sender):
        return "automatic or empty envelope sender"
    if sender == user.email.lower():
        return "message from the mailbox itself"
    if parsed.auto_submitted not in (None, "no"):
        return "Auto-Submitted message"
    if parsed.precedence in _BULK:
        return "bulk or list precedence"
    if parsed.list_id or parsed.list_unsubscribe:
        return "mailing-list message"
    if spam:
        return "spam"
    visible = {a.email.lower() for a in (*parsed.to, *parsed.cc)}
    if not visible & {a.lower() for a in addressed_as}:
        return "mailbox not in To or Cc"
    return None
