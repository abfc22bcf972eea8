"""``Email/get`` (RFC 8621 §4.2): every property, header forms, body parts and values."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field

from mailroom.delivery import mime as mime_store
from mailroom.domain.mime import jmap
from mailroom.registry import Context
from mailroom.services.jmap._accounts import EMAIL_PREFIX, account_of, decode, encode, state
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._get import check_ids
from mailroom.services.jmap._types import GetResponse, IdOrRef, JmapId, PropertyName, UnsignedInt
from mailroom.services.jmap.email._email import (
    DEFAULT_PROPERTIES,
    PROPERTIES,
    BodyOptions,
    Message,
    email_object,
    needs_message,
    record_renderer,
)
from mailroom.store import jmap as jmap_store
from mailroom.store import jmap_emails
from mailroom.store.blobs import BlobNotFound

#: Properties Email/get answers from the light record (store/jmap_emails.records).
_LIGHT_ENOUGH = frozenset(
    {
        "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "from",
        "subject", "hasAttachment", "preview", "messageId",
    }
)  # fmt: skip


def _check_properties(properties: list[str] | None) -> tuple[str, ...]:
    if properties is None:
        return DEFAULT_PROPERTIES
    bad = [p for p in properties if p not in PROPERTIES and jmap.parse_header_property(p) is None]
    if bad:
        raise MethodError("invalidArguments", f"unknown properties: {', '.join(bad[:10])}")
    return ("id", *[p for p in dict.fromkeys(properties) if p != "id"])


def _check_body_properties(properties: list[str] | None) -> tuple[str, ...]:
    if properties is None:
        return jmap.DEFAULT_BODY_PROPERTIES
    bad = [
        p for p in properties if p not in jmap.BODY_PART_PROPERTIES and jmap.parse_header_property(p) is None
    ]
    if bad:
        raise MethodError("invalidArguments", f"unknown body properties: {', '.join(bad[:10])}")
    return tuple(dict.fromkeys(properties))


@method("Email/get", capability=MAIL)
async def email_get(
    ctx: Context,
    accountId: JmapId,
    ids: Annotated[list[IdOrRef], Field(max_length=100_000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=200)] | None = None,
    bodyProperties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
    fetchTextBodyValues: bool = False,
    fetchHTMLBodyValues: bool = False,
    fetchAllBodyValues: bool = False,
    maxBodyValueBytes: UnsignedInt = 0,
) -> GetResponse:
    """The emails of ``ids``; ``ids: null`` is every email of the account while there are at
    most maxObjectsInGet, else ``requestTooLarge`` (RFC 8620 §5.1). Body properties come
    from the stored blob and its MIME structure."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = _check_properties(properties)
    options = BodyOptions(
        body_properties=_check_body_properties(bodyProperties),
        fetch_text=fetchTextBodyValues,
        fetch_html=fetchHTMLBodyValues,
        fetch_all=fetchAllBodyValues,
        max_bytes=maxBodyValueBytes,
    )
    if wanted is None:
        most = ctx.rt.settings.jmap_max_objects_in_get
        async with ctx.rt.db.read() as tx:
            every = await jmap_store.email_ids(tx, user_id, most + 1)
        if len(every) > most:
            why = f"the account has more than {most} emails (maxObjectsInGet): name them"
            raise MethodError("requestTooLarge", why)
        wanted = [encode(EMAIL_PREFIX, n) for n in every]
    numbers = {value: decode(EMAIL_PREFIX, value) for value in wanted}
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        found = await jmap_emails.records(
            tx,
            user_id,
            [n for n in numbers.values() if n is not None],
            full=not _LIGHT_ENOUGH.issuperset(props),
        )
    by_id = {r.id: r for r in found}
    render = record_renderer(props)
    if render is not None:  # a mail list's properties: the records are enough
        items = [render(by_id[n]) for n in numbers.values() if n is not None and n in by_id]
        missing = [value for value, n in numbers.items() if n is None or n not in by_id]
        return GetResponse(accountId=accountId, state=current, items=items, notFound=missing)
    messages: dict[str, Message] = {}
    shas = sorted({r.blob_sha for r in found if needs_message(props, r)})
    if shas:
        structures = await mime_store.structures(ctx.rt, shas)
        blobs = await asyncio.gather(*(_blob(ctx, sha) for sha in shas if sha in structures))
        for sha, blob in zip([s for s in shas if s in structures], blobs, strict=True):
            if blob is not None:
                messages[sha] = Message(blob, structures[sha])
    items = []
    missing = []
    for value, number in numbers.items():
        record = by_id.get(number) if number is not None else None
        if record is None or (needs_message(props, record) and record.blob_sha not in messages):
            missing.append(value)
            continue
        items.append(email_object(record, props, messages.get(record.blob_sha), options))
    return GetResponse(accountId=accountId, state=current, items=items, notFound=missing)


async def _blob(ctx: Context, sha: str) -> bytes | None:
    try:
        return await ctx.rt.blobs.get(sha)
    except BlobNotFound:
        return None
