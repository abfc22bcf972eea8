"""Object ids shared by JMAP and IMAP's OBJECTID (RFC 8474): one id per email, thread and
mailbox whichever protocol names it, so a client using both (or a server-side sync) can
match objects.

An id is a one-letter prefix and the row id: ``e42`` an Email (IMAP's EMAILID), ``T7`` a
Thread (THREADID), ``M3`` a Mailbox, i.e. a label (MAILBOXID). Short, URL-safe, within
RFC 8474's ``objectid`` syntax (letters and digits, starting with a letter), and the prefix
makes a mix-up (an email id given as a thread id) fail instead of naming another object.
"""

from __future__ import annotations

from mailroom.domain.numbers import INT32_MAX

EMAIL_PREFIX = "e"
THREAD_PREFIX = "T"
MAILBOX_PREFIX = "M"


def encode(prefix: str, row_id: int) -> str:
    return f"{prefix}{row_id}"


def decode(prefix: str, value: str) -> int | None:
    """The row id of ``value`` if it is ``prefix`` + a row id; None otherwise (not found)."""
    if not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or digits.startswith("0"):
        return None
    n = int(digits)
    return n if n <= INT32_MAX else None


def email_id(row_id: int) -> str:
    """The id of an email: JMAP's ``Email.id``, IMAP's EMAILID."""
    return encode(EMAIL_PREFIX, row_id)


def thread_id(row_id: int) -> str:
    """The id of a thread: JMAP's ``Thread.id`` and ``Email.threadId``, IMAP's THREADID."""
    return encode(THREAD_PREFIX, row_id)


def mailbox_id(label_id: int) -> str:
    """The id of a label as a mailbox: JMAP's ``Mailbox.id``, IMAP's MAILBOXID."""
    return encode(MAILBOX_PREFIX, label_id)
