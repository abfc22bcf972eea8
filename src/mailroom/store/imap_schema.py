"""IMAP subscriptions (RFC 9051 §6.3.7–6.3.8), per user, and the \\Recent mark of each mailbox
(RFC 3501 §2.3.2) (migration 0020_imapsubs).

A mailbox is subscribed unless its owner unsubscribed it (Gmail's default: every label shows
in a client that lists subscribed folders only, as Thunderbird does). A choice about a label
is a row of ``label_subscriptions``, by label id (migration 0022_jmap3), so it follows the
label through renames (its children's too); JMAP's ``Mailbox/isSubscribed`` of a label is "no
row with ``subscribed`` false". ``imap_subscriptions`` keeps the names with no label that a
client subscribed to (RFC 9051 lets a client subscribe to a name that does not exist, and
keeps an explicit subscription when the mailbox is deleted: store/mailbox_queries.py
``delete_label`` turns the label's row into a name); ``name`` is a label's name as stored
(``inbox``, ``archive`` … for the system labels).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata

#: A user's choice about one of their labels (IMAP SUBSCRIBE/UNSUBSCRIBE, JMAP
#: ``isSubscribed``): false, unsubscribed; true, subscribed explicitly (kept as a name in
#: ``imap_subscriptions`` when the label is deleted).
label_subscriptions = Table(
    "label_subscriptions",
    metadata,
    Column("label_id", Integer, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("subscribed", Boolean, nullable=False),
)

imap_subscriptions = Table(
    "imap_subscriptions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("subscribed", Boolean, nullable=False),
)

#: The case an account first used for a keyword (IMAP keeps it: a client storing ``$Label1``
#: reads ``$Label1``, RFC 9051 §2.3.2), by the keyword as stored (lower case, JMAP's form,
#: ``email_keywords``); only keywords whose shown form is not the stored one have a row.
keyword_names = Table(
    "keyword_names",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("keyword", String(64), primary_key=True),
    Column("shown", String(64), nullable=False),
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
