"""Helpers for mail tests: messages to send and real SMTP/LMTP clients (``smtplib``)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.errors import NotFound
from mailroom.store.schema import users


def message(
    *,
    subject: str = "Hello",
    sender: str = "Bob <bob@example.net>",
    to: str = "alice@example.org",
    message_id: str | None = "<m1@example.net>",
    in_reply_to: str | None = None,
    references: str | None = None,
    body: str = "Hello Alice,\r\nthis is a test.\r\n",
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
    pad_to: int = 0,
) -> bytes:
    """A small RFC 5322 message; ``pad_to`` grows the body to about that many bytes."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    lines.append(f"Date: {format_datetime(date or datetime(2026, 1, 1, 10, 0, tzinfo=UTC))}")
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    text = body
    while len(head) + len(text) < pad_to:
        text += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    return (head + text).encode("utf-8")


@dataclass
class Transaction:
    """What the server answered to one mail transaction."""

    rcpt: list[tuple[int, str]] = field(default_factory=list)
    data: list[tuple[int, str]] = field(default_factory=list)


def _text(reply: tuple[int, bytes]) -> tuple[int, str]:
    return reply[0], reply[1].decode("utf-8", "replace")


def lmtp_send(
    port: int, mail_from: str, recipients: list[str], raw: bytes, *, client: smtplib.LMTP | None = None
) -> Transaction:
    """One LMTP transaction; reads one reply per accepted recipient after DATA (RFC 2033).

    ``smtplib.LMTP.data()`` reads only the first reply: the rest come from ``getreply()``.
    """
    own = client is None
    conn = client or smtplib.LMTP("127.0.0.1", port)
    try:
        if own:
            conn.ehlo("client.test")
        out = Transaction()
        code, _ = conn.mail(mail_from)
        assert code == 250, code
        for rcpt in recipients:
            out.rcpt.append(_text(conn.rcpt(rcpt)))
        accepted = sum(1 for code, _ in out.rcpt if code == 250)
        if accepted == 0:
            conn.rset()
            return out
        out.data.append(_text(conn.data(raw)))
        for _ in range(accepted - 1):
            out.data.append(_text(conn.getreply()))
        return out
    finally:
        if own:
            conn.quit()


def smtp_send(port: int, mail_from: str, recipients: list[str], raw: bytes) -> Transaction:
    """One SMTP transaction: one reply per RCPT and one for DATA."""
    conn = smtplib.SMTP("127.0.0.1", port)
    try:
        conn.ehlo("client.test")
        out = Transaction()
        code, _ = conn.mail(mail_from)
        assert code == 250, code
        for rcpt in recipients:
            out.rcpt.append(_text(conn.rcpt(rcpt)))
        if any(code == 250 for code, _ in out.rcpt):
            out.data.append(_text(conn.data(raw)))
        else:
            conn.rset()
        return out
    finally:
        conn.quit()


async def create_user(mailroom: Mailroom, email: str, **fields: Any) -> int:
    """Create a mailbox (and its domain when missing) through the admin API; returns its id."""
    registry = mailroom.registry
    domain = email.rpartition("@")[2]
    try:
        await registry.call("admin.domains.get", {"name": domain})
    except NotFound:
        await registry.call("admin.domains.create", {"domain": {"name": domain}})
    await registry.call(
        "admin.users.create", {"user": {"email": email, "password": "correct horse battery", **fields}}
    )
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(users.c.id).where(users.c.email == email)))
