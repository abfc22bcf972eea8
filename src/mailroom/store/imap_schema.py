"""IMAP subscriptions (RFC 9051 §6.3.7–6.3.8), per user, and the \\Recent mark of each mailbox
(RFC 3501 §2.3.2) (migration 0020_imapsubs).

A mailbox is subscribed unless its owner unsubscribed it (Gmail's default: every label shows
in a client that lists subscribed folders only, as Thunderbird does). A row records a choice
that differs from that, or a subscription to a name with no mailbox (RFC 9051 lets a client
subscribe to one, and keeps it when the mailbox is deleted). ``name`` is the label's name
(``inbox``, ``archive`` … for the system labels, the user's own for the others), so JMAP's
``Mailbox/isSubscribed`` of a label is "no row with ``subscribed`` false for its name".
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata

imap_subscriptions = Table(
    "imap_subscriptions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("subscribed", Boolean, nullable=False),
)

#: IMAP4rev1's \\Recent: a message is recent in the one session first told of it. The first
#: UID of a label no session has been told of yet; a read-write SELECT (or a sync that finds
#: new mail) of a rev1 session raises it under a row lock, and the UIDs it passed over are
#: recent in that session alone. No row: no session has claimed any (every message is recent).
imap_recent = Table(
    "imap_recent",
    metadata,
    Column("label_id", Integer, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Column("first_uid", BigInteger, nullable=False),
)
