"""JMAP (RFC 8620, 8621): the ``jmap`` API. Each module declares its methods on import.

Method modules build on :mod:`mailroom.services.jmap.framework`; see docs/jmap.md.
"""

from mailroom.services.jmap import (
    blob,
    email,
    identity,
    mailbox,
    push_subscription,
    session,
    submission,
    thread,
    vacation,
)
from mailroom.services.jmap._api import METHODS, api

__all__ = [
    "METHODS",
    "api",
    "blob",
    "email",
    "identity",
    "mailbox",
    "push_subscription",
    "session",
    "submission",
    "thread",
    "vacation",
]
