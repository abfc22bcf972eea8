"""JMAP ids of accounts and objects (no store access: the front-end uses these too).

- An account is a mailbox: ``accountId`` is ``u<user id>``.
- Object ids are a one-letter prefix and the row id (``M12`` a Mailbox, ``T7`` a Thread,
  ``e42`` an Email...): short, URL-safe, and the prefix makes a mix-up fail.
"""

from __future__ import annotations

from mailroom.domain.numbers import INT32_MAX

ACCOUNT_PREFIX = "u"
MAILBOX_PREFIX = "M"
THREAD_PREFIX = "T"
EMAIL_PREFIX = "e"
IDENTITY_PREFIX = "I"


def account_id(user_id: int) -> str:
    return f"{ACCOUNT_PREFIX}{user_id}"


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
