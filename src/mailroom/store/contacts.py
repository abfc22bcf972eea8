"""Repository of a user's contacts and their addresses. Every query names the owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.store.client_schema import contact_emails, contacts
from mailroom.store.engine import Query, Tx


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact as stored (without its owner and search text)."""

    id: int
    name: str
    fields: dict[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ContactAddress:
    """One address of a contact, at ``position`` in its list, with the OpenPGP key kept for it."""

    contact_id: int
    position: int
    address: str
    public_key: str | None
    fingerprint: str | None
    key_user_ids: list[str] | None
    key_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactHolder:
    """The contact that holds an address."""

    id: int
    name: str


_CONTACT = [contacts.c[name] for name in ContactRecord.__dataclass_fields__]
_EMAIL = [contact_emails.c[name] for name in ContactAddress.__dataclass_fields__]

_GET = Query(
    select(*_CONTACT).where(
        contacts.c.id == bindparam("contact_id"), contacts.c.user_id == bindparam("user_id")
    )
)
_HOLDER = Query(
    select(contacts.c.id, contacts.c.name)
    .select_from(contact_emails.join(contacts, contacts.c.id == contact_emails.c.contact_id))
    .where(contact_emails.c.user_id == bindparam("user_id"), contact_emails.c.address == bindparam("address"))
)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def get(tx: Tx, contact_id: int, user_id: int) -> ContactRecord | None:
    """One of the user's contacts (None for someone else's)."""
    row = await tx.first(_GET, {"contact_id": contact_id, "user_id": user_id})
    return ContactRecord(**row) if row is not None else None


async def emails_of(tx: Tx, contact_ids: Sequence[int]) -> dict[int, list[ContactAddress]]:
    """The addresses of these contacts, in their order."""
    if not contact_ids:
        return {}
    query = (
        select(*_EMAIL)
        .where(contact_emails.c.contact_id.in_(list(contact_ids)))
        .order_by(contact_emails.c.contact_id, contact_emails.c.position)
    )
    out: dict[int, list[ContactAddress]] = {i: [] for i in contact_ids}
    for row in await tx.all(query):
        out[row["contact_id"]].append(ContactAddress(**row))
    return out


async def page(
    tx: Tx, user_id: int, *, terms: Sequence[str], offset: int, limit: int
) -> tuple[list[ContactRecord], int]:
    """The user's contacts by name whose search text holds every term; and their total."""
    where = [contacts.c.user_id == user_id]
    where += [contacts.c.search_text.like(_like(t), escape="\\") for t in terms]
    query = (
        select(*_CONTACT).where(*where).order_by(contacts.c.name, contacts.c.id).offset(offset).limit(limit)
    )
    count = select(func.count()).select_from(contacts).where(*where)
    rows = [ContactRecord(**row) for row in await tx.all(query)]
    return rows, int(await tx.scalar(count) or 0)


async def holder(tx: Tx, user_id: int, address: str) -> ContactHolder | None:
    """The user's contact that has ``address``, if any."""
    row = await tx.first(_HOLDER, {"user_id": user_id, "address": address})
    return ContactHolder(**row) if row is not None else None


class NewContact(TypedDict):
    """The columns :func:`insert_contact` writes (the id is generated)."""

    user_id: int
    name: str
    fields: dict[str, str]
    search_text: str
    created_at: datetime
    updated_at: datetime


class ContactChanges(TypedDict, total=False):
    """The columns :func:`update_contact` may change (any subset)."""

    name: str
    fields: dict[str, str]
    search_text: str
    updated_at: datetime


class ContactAddressRow(TypedDict):
    """One address :func:`set_emails` stores (it adds the contact, user and position)."""

    address: str
    public_key: str | None
    fingerprint: str | None
    key_user_ids: list[str] | None
    key_expires_at: datetime | None


async def insert_contact(tx: Tx, values: NewContact) -> int:
    return int(await tx.scalar(insert(contacts).values(**values).returning(contacts.c.id)))


async def update_contact(tx: Tx, contact_id: int, user_id: int, values: ContactChanges) -> None:
    stmt = update(contacts).where(contacts.c.id == contact_id, contacts.c.user_id == user_id).values(**values)
    await tx.execute(stmt)


async def set_emails(tx: Tx, contact_id: int, user_id: int, emails: Sequence[ContactAddressRow]) -> None:
    """Replace the contact's addresses; an address in another contact of the user's is a Conflict."""
    await tx.execute(delete(contact_emails).where(contact_emails.c.contact_id == contact_id))
    rows = [{**e, "contact_id": contact_id, "user_id": user_id, "position": i} for i, e in enumerate(emails)]
    if rows:
        await tx.execute(insert(contact_emails), rows)


async def delete_contact(tx: Tx, contact_id: int, user_id: int) -> bool:
    stmt = delete(contacts).where(contacts.c.id == contact_id, contacts.c.user_id == user_id)
    return await tx.rowcount(stmt) > 0
