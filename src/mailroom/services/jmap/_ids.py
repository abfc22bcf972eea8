"""JMAP ids of accounts and objects (no store access: the front-end uses these too).

- An account is a mailbox: ``accountId`` is ``u<user id>``.
- Object ids are a one-letter prefix and the row id (``M12`` a Mailbox, ``T7`` a Thread,
  ``e42`` an Email...): short, URL-safe, and the prefix makes a mix-up fail. Mailbox,
  Thread and Email ids are domain/objectids.py's, the ids IMAP's OBJECTID shows too.
"""

from __future__ import annotations

from mailroom.domain.objectids import EMAIL_PREFIX, MAILBOX_PREFIX, THREAD_PREFIX, decode, encode

__all__ = [
    "ACCOUNT_PREFIX",
    "EMAIL_PREFIX",
    "IDENTITY_PREFIX",
    "MAILBOX_PREFIX",
    "THREAD_PREFIX",
    "account_id",
    "decode",
    "encode",
]

ACCOUNT_PREFIX = "u"
IDENTITY_PREFIX = "I"


def account_id(user_id: int) -> str:
    return f"{ACCOUNT_PREFIX}{user_id}"
