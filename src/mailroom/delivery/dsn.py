"""Delivery status notifications (RFC 3464): the bounce a sender gets when mail cannot go.

A DSN is ``multipart/report; report-type=delivery-status`` (RFC 6522) with three parts: a
human explanation, ``message/delivery-status`` (per-message fields, then one block of
per-recipient fields each) and ``text/rfc822-headers``: the original headers, not the body
(the sender has it, and it may be large). It goes with the null envelope sender ``<>``, so a
DSN that cannot be delivered is never answered by another.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from mailroom.delivery.signing import header_value, new_message_id, split_head

_ENHANCED = re.compile(r"^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient the message could not reach: the last SMTP reply and who gave it."""

    address: str
    code: int | None
    reply: str
    remote_mta: str | None = None


def status_code(failed: FailedRecipient) -> str:
    """The RFC 3463 status for a recipient: the reply's enhanced code, else derived from it."""
    match = _ENHANCED.match(failed.reply)
    if match:
        return match.group(1)
    if failed.code is not None and 400 <= failed.code < 500:
        return "4.4.7"  # expired while temporarily failing: delivery time expired
    if failed.code is not None and failed.code >= 500:
        return "5.0.0"
    return "4.4.7"


def build_dsn(
    *,
    original: bytes,
    sender: str,
    failed: Sequence[FailedRecipient],
    reporting_mta: str,
    arrival: datetime,
    now: datetime,
    queue_id: int | None = None,
) -> bytes:
    """The bounce for ``failed`` recipients of ``original`` (sent by ``sender``)."""
    boundary = f"dsn-{secrets.token_hex(12)}"
    human = [
        f"This is the mail system at {reporting_mta}.",
        "",
        "Your message could not be delivered to one or more recipients.",
        "The original headers are attached; the last reply of each server follows.",
        "",
        *(f"<{f.address}>: {' '.join(f.reply.split())}" for f in failed),
    ]
    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if queue_id is not None:
        per_message.append(f"X-Mailroom-Queue-ID: {queue_id}")
    per_message.append(f"Arrival-Date: {format_datetime(arrival)}")
    blocks = ["\r\n".join(per_message)]
    for f in failed:
        diagnostic = " ".join(f.reply.split())
        fields = [
            f"Final-Recipient: rfc822; {f.address}",
            "Action: failed",
            f"Status: {status_code(f)}",
            *([f"Remote-MTA: dns; {f.remote_mta}"] if f.remote_mta else []),
            f"Diagnostic-Code: smtp; {diagnostic}"
            if f.code is not None
            else f"Diagnostic-Code: x-mailroom; {diagnostic}",
            f"Last-Attempt-Date: {format_datetime(now)}",
        ]
        blocks.append("\r\n".join(fields))
    head, _ = split_head(original)
    original_id = header_value(head, "message-id")
    original_head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    top = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: {sender}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {new_message_id(reporting_mta)}",
        "Auto-Submitted: auto-replied",
        *([f"In-Reply-To: {original_id}", f"References: {original_id}"] if original_id else []),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "Content-Description: Notification",
        "",
        *human,
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "Content-Description: Delivery report",
        "",
        "\r\n\r\n".join(blocks),
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "Content-Description: Undelivered Message Headers",
        "",
        "",
    ]
    tail = f"\r\n--{boundary}--\r\n"
    return "\r\n".join(top).encode("utf-8") + original_head.rstrip(b"\r\n") + b"\r\n" + tail.encode("ascii")
