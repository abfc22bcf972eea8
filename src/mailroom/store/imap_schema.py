"""IMAP subscriptions (RFC 9051 §6.3.7–6.3.8), per user (migration 0020_imapsubs).

A mailbox is subscribed unless its owner unsubscribed it (Gmail's default: every label shows
in a client that lists subscribed folders only, as Thunderbird does). A row records a choice
that differs from that, or a subscription to a name with no mailbox (RFC 9051 lets a client
subscribe to one, and keeps it when the mailbox is deleted). ``name`` is the label's name
(``inbox``, ``archive`` … for the system labels, the user's own for the others), so JMAP's
``Mailbox/isSubscribed`` of a label is "no row with ``subscribed`` false for its name".
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata

imap_subscriptions = Table(
    "imap_subscriptions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("subscribed", Boolean, nullable=False),
)
