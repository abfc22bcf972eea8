"""What the mail client modules (threads, emails, labels, batch) share: schemas and rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mailroom.errors import NotFound
from mailroom.registry import Context
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx
from mailroom.store.mailbox_queries import LabelRecord, ThreadListing
from mailroom.store.threads import AddressJSON, ThreadRecord

EncryptionLevel = Literal["unencrypted", "weak", "medium", "strong", "danger"]
#: A label given by name or by id ("inbox", "42").
LabelRef = Annotated[str, Field(min_length=1, max_length=100, description="A label name or id.")]
#: The system label a postponed thread carries until it comes back to the inbox.
POSTPONED = "postponed"
#: How many named people a participants snippet shows before "and N others".
SHOWN_PARTICIPANTS = 2


class Address(BaseModel):
    """A mailbox as a header names it."""

    name: str = ""
    email: str = ""


class ThreadSummary(BaseModel):
    """One line of a thread list."""

    thread_id: int
    participants: str = Field(description='"Billy Joel", or "To: John Smith, Billy Joel, and 2 others".')
    subject: str = Field(description="The subject of the latest email.")
    snippet: str = Field(description="The start of the latest email's text.")
    labels: list[str]
    n_emails: int
    n_unread: int
    has_attachments: bool
    is_starred: bool
    is_read: bool
    encryption_level: EncryptionLevel
    is_postponed: bool
    postponed_until: datetime | None
    is_muted: bool
    last_date: datetime


class ThreadList(BaseModel):
    """A page of threads, newest activity first, and how many the whole list has."""

    n_threads: int
    threads: list[ThreadSummary]


def encryption_level(n_emails: int, n_signed: int, n_encrypted: int) -> EncryptionLevel:
    """How well a thread is protected, from how many of its emails are encrypted or signed.

    With e encrypted, s signed only and p plain (neither) emails of n:

    * ``unencrypted``: no email is encrypted or signed;
    * ``weak``: nothing is encrypted, some emails are signed (authentic, not secret);
    * ``strong``: every email is encrypted;
    * ``medium``: some are encrypted and every other one is signed (none is plain);
    * ``danger``: some are encrypted and some are plain: part of an encrypted conversation
      went out in clear text (a reply quoting an encrypted message, typically).
    """
    plain = max(0, n_emails - n_signed - n_encrypted)
    if n_encrypted == 0:
        return "weak" if n_signed > 0 else "unencrypted"
    if n_encrypted >= n_emails:
        return "strong"
    return "danger" if plain > 0 else "medium"


def _display(address: AddressJSON) -> str:
    return str(address.get("name") or address.get("email") or "").strip()


def _join(names: list[str], total: int) -> str:
    """ "A", "A and B", "A, B, and C", "A, B, and 5 others"."""
    if total <= 0 or not names:
        return ""
    if total == 1:
        return names[0]
    if total == 2 and len(names) >= 2:
        return f"{names[0]} and {names[1]}"
    if total == 3 and len(names) >= 3:
        return f"{names[0]}, {names[1]}, and {names[2]}"
    shown = names[:SHOWN_PARTICIPANTS]
    others = total - len(shown)
    return f"{', '.join(shown)}, and {others} other{'s' if others != 1 else ''}"


def participants_snippet(
    participants: Sequence[AddressJSON], recipients: Sequence[AddressJSON], me: str | None
) -> str:
    """Who a thread is with, as a list shows it.

    The senders of the thread (``participants``) other than the mailbox owner ("me" when
    the owner also wrote); when only the owner wrote (sent mail, drafts), "To: " and the
    latest email's ``recipients`` (To, then Cc).
    """
    own = (me or "").lower()
    senders = [a for a in participants if str(a.get("email", "")).lower() != own]
    wrote_myself = len(senders) < len(participants)
    if senders:
        names = [_display(a) for a in senders]
        if wrote_myself:
            names.append("me")
        return _join([n for n in names if n], len(names))
    shown: list[AddressJSON] = []
    seen: set[str] = set()
    for address in recipients:
        key = str(address.get("email") or address.get("name") or "").lower()
        if key and key not in seen:
            seen.add(key)
            shown.append(address)
    if shown:
        names = [_display(a) for a in shown]
        return "To: " + _join(names[: SHOWN_PARTICIPANTS + 1], len(names))
    return "me" if wrote_myself else ""


def thread_summary(
    row: ThreadListing | ThreadRecord,
    names: list[str],
    me: str | None,
    recipients: Sequence[AddressJSON] | None = None,
) -> ThreadSummary:
    """A thread list's line; ``recipients`` (the latest email's To and Cc) default to those a
    :class:`ThreadListing` carries."""
    if recipients is None:
        recipients = (
            [*(row.latest_to or []), *(row.latest_cc or [])] if isinstance(row, ThreadListing) else []
        )
    postponed = row.postponed_until
    return ThreadSummary(
        thread_id=row.id,
        participants=participants_snippet(row.participants or [], recipients, me),
        subject=row.latest_subject,
        snippet=row.snippet,
        labels=names,
        n_emails=row.n_emails,
        n_unread=row.n_unread,
        has_attachments=row.n_attachments > 0,
        is_starred=row.n_starred > 0,
        is_read=row.n_unread == 0,
        encryption_level=encryption_level(row.n_emails, row.n_signed, row.n_encrypted),
        is_postponed=postponed is not None,
        postponed_until=postponed,
        is_muted=bool(row.muted),
        last_date=row.last_date,
    )


def user_id_of(ctx: Context) -> int:
    user_id = ctx.principal.user_id
    assert user_id is not None  # UserSelf guarantees it
    return user_id


async def find_label(tx: Tx, user_id: int, ref: str) -> LabelRecord:
    """The caller's label named ``ref``, or with id ``ref``; NotFound otherwise."""
    ref = ref.strip()
    row = await queries.label_by_name(tx, user_id, ref)
    if row is None and ref.lower() in label_store.SYSTEM_LABELS:
        row = await queries.label_by_name(tx, user_id, ref.lower())
    if row is None and ref.isdigit() and len(ref) < 18:
        row = await queries.label_by_id(tx, user_id, int(ref))
    if row is None:
        raise NotFound.of("label", ref)
    return row
