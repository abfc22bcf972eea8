"""mail.contacts.*: the signed-in user's address book.

A contact has a name, addresses and free fields. An address is in at most one of a user's
contacts: adding it again is a ``conflict`` that names the contact holding it. An address may
carry an OpenPGP public key (parsed, its fingerprint computed and checked against a submitted
one) or just a fingerprint, which is resolved against the server's key directory.
``?q=john+smith`` finds contacts whose name, addresses or fields hold every word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from mailroom.domain.contacts import Contact, ContactCreate, ContactEmail, ContactEmailIn, ContactUpdate
from mailroom.domain.numbers import Id
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.pgp import parse_public_key
from mailroom.errors import Conflict, FieldError, InvalidParams, NotFound
from mailroom.registry import DELETE, GET, PATCH, POST, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.store import contacts as store
from mailroom.store import pubkeys
from mailroom.store.contacts import ContactAddress, ContactRecord
from mailroom.store.engine import Tx

ContactId = Annotated[Id, Field(description="The contact's id.")]
SearchQuery = Annotated[
    str, Field(max_length=200, description="Words that must all appear in the name, addresses or fields.")
]


def _user_id(ctx: Context) -> int:
    assert ctx.principal.user_id is not None
    return ctx.principal.user_id


def _search_text(name: str, emails: Sequence[Mapping[str, Any]], fields: dict[str, str]) -> str:
    parts = [name, *(e["address"] for e in emails), *fields.keys(), *fields.values()]
    return "\n".join(parts).lower()


async def resolve_keys(tx: Tx, emails: list[ContactEmailIn], loc: str) -> list[store.ContactAddressRow]:
    """Stored rows for the addresses: keys parsed and checked, fingerprints resolved."""
    rows: list[store.ContactAddressRow] = []
    errors: list[FieldError] = []
    for i, e in enumerate(emails):
        row: store.ContactAddressRow = {
            "address": e.address,
            "public_key": None,
            "fingerprint": None,
            "key_user_ids": None,
            "key_expires_at": None,
        }
        here = f"{loc}.{i}"
        if e.public_key is not None:
            try:
                key = parse_public_key(e.public_key)
            except ValueError as exc:
                errors.append(FieldError(f"{here}.public_key", str(exc)))
                continue
            if e.fingerprint is not None and e.fingerprint != key.fingerprint:
                errors.append(
                    FieldError(
                        f"{here}.fingerprint", f"does not match the key's fingerprint {key.fingerprint}"
                    )
                )
                continue
            row |= {
                "public_key": key.armored,
                "fingerprint": key.fingerprint,
                "key_user_ids": key.user_ids,
                "key_expires_at": key.expires_at,
            }
        elif e.fingerprint is not None:
            published = await pubkeys.get(tx, e.fingerprint)
            if published is None:
                errors.append(
                    FieldError(f"{here}.fingerprint", "no key with this fingerprint in the key directory")
                )
                continue
            row |= {
                "public_key": published["armored"],
                "fingerprint": published["fingerprint"],
                "key_user_ids": published["user_ids"],
                "key_expires_at": published["expires_at"],
            }
        rows.append(row)
    if errors:
        raise InvalidParams(errors)
    return rows


async def check_addresses_free(
    tx: Tx, user_id: int, rows: Sequence[store.ContactAddressRow], contact_id: int | None
) -> None:
    """An address already in another contact of the user's is a conflict naming that contact."""
    for row in rows:
        held = await store.holder(tx, user_id, row["address"])
        if held is not None and held.id != contact_id:
            raise Conflict(
                f"{row['address']} is already in your contact {held.name!r} (id {held.id})",
                address=row["address"],
                contact_id=held.id,
            )


def _contact(row: ContactRecord, emails: list[ContactAddress]) -> Contact:
    return Contact(
        id=row.id,
        name=row.name,
        emails=[ContactEmail.model_validate(e, from_attributes=True) for e in emails],
        fields=row.fields,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def load(tx: Tx, contact_id: int, user_id: int) -> Contact:
    row = await store.get(tx, contact_id, user_id)
    if row is None:
        raise NotFound.of("contact", contact_id)
    emails = await store.emails_of(tx, [contact_id])
    return _contact(row, emails[contact_id])


@api.method("mail.contacts.list", http=GET("/contacts"), access=UserSelf())
async def list_contacts(
    ctx: Context, q: SearchQuery = "", offset: Offset = 0, limit: Limit = DEFAULT_LIMIT
) -> Page[Contact]:
    """The caller's contacts by name; ``q`` keeps those holding every word of it."""
    user_id = _user_id(ctx)
    terms = [t for t in q.lower().split() if t]
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, user_id, terms=terms, offset=offset, limit=limit)
        emails = await store.emails_of(tx, [r.id for r in rows])
    items = [_contact(r, emails[r.id]) for r in rows]
    return Page[Contact](items=items, total=total, offset=offset, limit=limit)


@api.method("mail.contacts.get", http=GET("/contacts/{id}"), access=UserSelf())
async def get_contact(ctx: Context, id: ContactId) -> Contact:
    """One of the caller's contacts."""
    async with ctx.rt.db.read() as tx:
        return await load(tx, id, _user_id(ctx))


@api.method("mail.contacts.create", http=POST("/contacts", status=201), access=UserSelf())
async def create_contact(ctx: Context, contact: ContactCreate) -> Contact:
    """Add a contact; an address already in one of the caller's contacts is a ``conflict``."""
    user_id = _user_id(ctx)
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        emails = await resolve_keys(tx, contact.emails, "contact.emails")
        await check_addresses_free(tx, user_id, emails, None)
        contact_id = await store.insert_contact(
            tx,
            {
                "user_id": user_id,
                "name": contact.name,
                "fields": contact.fields,
                "search_text": _search_text(contact.name, emails, contact.fields),
                "created_at": now,
                "updated_at": now,
            },
        )
        await store.set_emails(tx, contact_id, user_id, emails)
        return await load(tx, contact_id, user_id)


@api.method("mail.contacts.update", http=PATCH("/contacts/{id}"), access=UserSelf())
async def update_contact(ctx: Context, id: ContactId, changes: ContactUpdate) -> Contact:
    """Change a contact: ``name``, ``emails`` (replaced whole) and ``fields`` (replaced whole)."""
    user_id = _user_id(ctx)
    async with ctx.rt.db.write() as tx:
        current = await load(tx, id, user_id)
        emails: Sequence[Mapping[str, Any]]
        if changes.emails is not None:
            resolved = await resolve_keys(tx, changes.emails, "changes.emails")
            await check_addresses_free(tx, user_id, resolved, id)
            await store.set_emails(tx, id, user_id, resolved)
            emails = resolved
        else:
            emails = [e.model_dump() for e in current.emails]
        name = changes.name if changes.name is not None else current.name
        fields = changes.fields if changes.fields is not None else current.fields
        await store.update_contact(
            tx,
            id,
            user_id,
            {
                "name": name,
                "fields": fields,
                "search_text": _search_text(name, emails, fields),
                "updated_at": ctx.rt.clock.now(),
            },
        )
        return await load(tx, id, user_id)


@api.method("mail.contacts.delete", http=DELETE("/contacts/{id}"), access=UserSelf())
async def delete_contact(ctx: Context, id: ContactId) -> None:
    """Delete one of the caller's contacts."""
    async with ctx.rt.db.write() as tx:
        if not await store.delete_contact(tx, id, _user_id(ctx)):
            raise NotFound.of("contact", id)
