"""Labels as JMAP Mailboxes (RFC 8621 §2): the mapping shared by the Mailbox methods.

Labels are mailboxes, Gmail's model: an email is in every mailbox whose label it carries.
System labels have roles and cannot be renamed or destroyed; user labels have none. Labels
nest by name: a user label ``Work/Clients`` is the mailbox ``Clients`` inside ``Work`` when a
label ``Work`` exists (otherwise it is a top mailbox named ``Work/Clients``), as IMAP shows
them with the hierarchy delimiter ``/``. ``sortOrder`` is the user's when set
(store/jmap.py), else the server's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailroom.domain.objectids import MAILBOX_PREFIX as PREFIX
from mailroom.services.jmap._accounts import decode, encode
from mailroom.store import imap as imap_store
from mailroom.store import jmap as jmap_store
from mailroom.store import jmap_emails
from mailroom.store import labels as label_store
from mailroom.store.engine import Tx
from mailroom.store.jmap_emails import NOTHING_HIDDEN, HiddenCounts
from mailroom.store.mailbox_queries import LabelRecord

#: The hierarchy delimiter in label names (IMAP's too).
DELIMITER = "/"

#: System label → (role, display name). ``postponed`` (snoozed mail) has no IANA role.
SYSTEM: dict[str, tuple[str | None, str]] = {
    "inbox": ("inbox", "Inbox"),
    "archive": ("archive", "Archive"),
    "drafts": ("drafts", "Drafts"),
    "sent": ("sent", "Sent"),
    "spam": ("junk", "Spam"),
    "trash": ("trash", "Trash"),
    "starred": ("flagged", "Starred"),
    "important": ("important", "Important"),
    "postponed": (None, "Postponed"),
}
ROLE_TO_LABEL = {role: name for name, (role, _) in SYSTEM.items() if role is not None}
#: Where each system mailbox sorts (RFC 8621 ``sortOrder``: lower first); user labels after.
SORT_ORDER = {name: n + 1 for n, name in enumerate(label_store.SYSTEM_LABELS)}
USER_SORT_ORDER = 100

PROPERTIES = (
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
)


def mailbox_id(label_id: int) -> str:
    return encode(PREFIX, label_id)


def label_id(value: str) -> int | None:
    return decode(PREFIX, value)


def rights(system: bool) -> dict[str, bool]:
    return {
        "mayReadItems": True,
        "mayAddItems": True,
        "mayRemoveItems": True,
        "maySetSeen": True,
        "maySetKeywords": True,
        "mayCreateChild": not system,
        "mayRename": not system,
        "mayDelete": not system,
        "maySubmit": True,
    }


@dataclass(frozen=True, slots=True)
class Tree:
    """What a mailbox needs of the account: the user labels' ids by name (for ``parentId``),
    the sort orders the user set, the labels unsubscribed, and what the hidden emails
    (``$deleted``, RFC 8621 §4.1.1) take off each label's counts."""

    user_labels: dict[str, int] = field(default_factory=dict)
    orders: dict[int, int] = field(default_factory=dict)
    unsubscribed: frozenset[int] = frozenset()
    hidden: dict[int, HiddenCounts] = field(default_factory=dict)


async def tree(tx: Tx, user_id: int) -> Tree:
    names = await label_store.ids_by_name(tx, user_id)
    user = {n: i for n, i in names.items() if n not in SYSTEM}
    return Tree(
        user,
        await jmap_store.sort_orders(tx, user_id),
        await imap_store.unsubscribed_label_ids(tx, user_id),
        await jmap_emails.hidden_counts(tx, user_id),
    )


def split(name: str, t: Tree) -> tuple[int | None, str]:
    """``(parent label id, name shown)`` of a user label's full name."""
    parent, _, leaf = name.rpartition(DELIMITER)
    if parent and leaf and parent in t.user_labels:
        return t.user_labels[parent], leaf
    return None, name


def to_mailbox(row: LabelRecord, t: Tree | None = None) -> dict[str, Any]:
    """A label row (with its counts) as a Mailbox object, every property."""
    t = t if t is not None else Tree()
    system = row.kind == "system"
    name = row.name
    parent: int | None = None
    if system:
        role, shown = SYSTEM.get(name, (None, name))
    else:
        role = None
        parent, shown = split(name, t)
    default = SORT_ORDER.get(name, USER_SORT_ORDER) if system else USER_SORT_ORDER
    hidden = t.hidden.get(row.id, NOTHING_HIDDEN)
    return {
        "id": mailbox_id(row.id),
        "name": shown,
        "parentId": mailbox_id(parent) if parent is not None else None,
        "role": role,
        "sortOrder": t.orders.get(row.id, default),
        "totalEmails": max(row.emails_total - hidden.emails, 0),
        "unreadEmails": max(row.emails_unread - hidden.unread_emails, 0),
        "totalThreads": max(row.threads_total - hidden.threads, 0),
        "unreadThreads": max(row.threads_unread - hidden.unread_threads, 0),
        "myRights": rights(system),
        "isSubscribed": row.id not in t.unsubscribed,
    }
