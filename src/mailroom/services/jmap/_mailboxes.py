"""Labels as JMAP Mailboxes (RFC 8621 §2): the mapping shared by the Mailbox methods.

Labels are mailboxes, Gmail's model: an email is in every mailbox whose label it carries.
System labels have roles and cannot be renamed or destroyed; user labels have none. Labels
do not nest (``parentId`` is always null, ``maxMailboxDepth`` 1).
"""

from __future__ import annotations

from typing import Any

from mailroom.domain.objectids import MAILBOX_PREFIX as PREFIX
from mailroom.services.jmap._accounts import decode, encode
from mailroom.store import labels as label_store
from mailroom.store.mailbox_queries import LabelRecord

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
        "mayCreateChild": False,  # labels do not nest
        "mayRename": not system,
        "mayDelete": not system,
        "maySubmit": True,
    }


def to_mailbox(row: LabelRecord) -> dict[str, Any]:
    """A label (with its counts) as a Mailbox object, every property."""
    system = row.kind == "system"
    name = row.name
    role, shown = SYSTEM.get(name, (None, name)) if system else (None, name)
    return {
        "id": mailbox_id(row.id),
        "name": shown,
        "parentId": None,
        "role": role,
        "sortOrder": SORT_ORDER.get(name, USER_SORT_ORDER) if system else USER_SORT_ORDER,
        "totalEmails": row.emails_total,
        "unreadEmails": row.emails_unread,
        "totalThreads": row.threads_total,
        "unreadThreads": row.threads_unread,
        "myRights": rights(system),
        "isSubscribed": True,
    }
