"""``Email/parse`` (RFC 8621 §4.9) and ``Email/import`` (§4.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.domain.mime import scan
from mailroom.registry import Context
from mailroom.services.jmap._accounts import (
    EMAIL_PREFIX,
    THREAD_PREFIX,
    account_of,
    check_if_in_state,
    encode,
    state,
)
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._request import created
from mailroom.services.jmap._types import CreationId, JmapId, PropertyName, SetError, State, UnsignedInt
from mailroom.services.jmap.email._email import (
    PARSE_DEFAULT_PROPERTIES,
    BodyOptions,
    Message,
    blob_id,
    parsed_object,
)
from mailroom.services.jmap.email.blobs import blob_bytes
from mailroom.services.jmap.email.get import _check_body_properties, _check_properties
from mailroom.services.jmap.email.set import _keywords, _mailbox_ids, _Refused, stored_keywords
from mailroom.store import jmap_emails
from mailroom.store import labels as label_store

_BlobId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]


class ParseResponse(BaseModel):
    accountId: str
    parsed: dict[str, dict[str, Any]] | None = None
    notParsable: list[str] | None = None
    notFound: list[str] | None = None


@method("Email/parse", capability=MAIL)
async def email_parse(
    ctx: Context,
    accountId: JmapId,
    blobIds: Annotated[list[_BlobId], Field(max_length=100)],
    properties: Annotated[list[PropertyName], Field(max_length=200)] | None = None,
    bodyProperties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
    fetchTextBodyValues: bool = False,
    fetchHTMLBodyValues: bool = False,
    fetchAllBodyValues: bool = False,
    maxBodyValueBytes: UnsignedInt = 0,
) -> ParseResponse:
    """Emails made of message blobs (uploads, attached messages ``G<sha>.<partId>``)."""
    user_id = account_of(ctx, accountId)
    props = _check_properties(properties) if properties is not None else PARSE_DEFAULT_PROPERTIES
    options = BodyOptions(
        body_properties=_check_body_properties(bodyProperties),
        fetch_text=fetchTextBodyValues,
        fetch_html=fetchHTMLBodyValues,
        fetch_all=fetchAllBodyValues,
        max_bytes=maxBodyValueBytes,
    )
    parsed: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for value in dict.fromkeys(blobIds):
        data = await blob_bytes(ctx, user_id, value)
        if data is None:
            missing.append(value)
            continue
        message = Message(data, scan(data))  # a blob, not a stored email: scanned here, once
        parsed[value] = parsed_object(value, value, message, props, options)
    return ParseResponse(accountId=accountId, parsed=parsed or None, notFound=missing or None)


class EmailImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blobId: _BlobId
    mailboxIds: dict[str, bool]
    keywords: dict[str, bool] = Field(default_factory=dict)
    receivedAt: AwareDatetime | None = None


class ImportResponse(BaseModel):
    accountId: str
    oldState: str | None
    newState: str
    created: dict[str, dict[str, Any]] | None = None
    notCreated: dict[str, dict[str, Any]] | None = None


@method("Email/import", capability=MAIL)
async def email_import(
    ctx: Context,
    accountId: JmapId,
    emails: Annotated[dict[CreationId, EmailImport], Field(max_length=500)],
    ifInState: State | None = None,
) -> ImportResponse:
    """Store message blobs as emails, through the same ingest as all mail."""
    user_id = account_of(ctx, accountId)
    async with ctx.rt.db.read() as tx:
        old = await check_if_in_state(tx, user_id, ifInState)
        names = {v: k for k, v in (await label_store.ids_by_name(tx, user_id)).items()}
        me = await jmap_emails.owner_address(tx, user_id)
    done: dict[str, dict[str, Any]] = {}
    refused: dict[str, dict[str, Any]] = {}
    for creation_id, item in emails.items():
        try:
            done[creation_id] = await _import(ctx, user_id, me, names, creation_id, item)
        except _Refused as exc:
            refused[creation_id] = exc.wire
    async with ctx.rt.db.read() as tx:
        new = await state(tx, user_id)
    return ImportResponse(
        accountId=accountId, oldState=old, newState=new, created=done or None, notCreated=refused or None
    )


async def _import(
    ctx: Context, user_id: int, me: str, names: dict[int, str], creation_id: str, item: EmailImport
) -> dict[str, Any]:
    boxes = _mailbox_ids(ctx, item.mailboxIds, names, "mailboxIds")
    if not boxes:
        raise _Refused("invalidProperties", "an email must be in at least one mailbox", ["mailboxIds"])
    keywords = _keywords(item.keywords, "keywords")
    raw = await blob_bytes(ctx, user_id, item.blobId)
    if raw is None:
        refusal = _Refused("blobNotFound", f"no blob {item.blobId}")
        refusal.wire["notFound"] = [item.blobId]
        raise refusal
    if len(raw) > ctx.rt.settings.max_message_bytes:
        raise _Refused("tooLarge", "the message is larger than the limit")
    received: datetime | None = item.receivedAt
    options = IngestOptions(
        labels=tuple(names[b] for b in sorted(boxes)),
        is_read="$seen" in keywords,
        is_starred="$flagged" in keywords,
        is_draft="$draft" in keywords,
        received_at=received,
        trace=False,
        keywords=stored_keywords(keywords),
    )
    resolution = Resolution(me, "accepted", [LocalTarget(user_id, me)])
    [result] = await ingest(ctx.rt, raw, mail_from="", recipients=[resolution], source="api", options=options)
    if not result.ok:
        kind = "overQuota" if result.code == 452 else "serverFail" if result.temporary else "forbidden"
        raise _Refused(kind, result.reply[4:])
    number = result.email_ids[0]
    new_id = encode(EMAIL_PREFIX, number)
    if result.duplicate:
        wire = SetError(type="alreadyExists", description="this message is already here").wire()
        wire["existingId"] = new_id
        refusal = _Refused("alreadyExists", "")
        refusal.wire = wire
        raise refusal
    async with ctx.rt.db.read() as tx:
        [record] = await jmap_emails.records(tx, user_id, [number])
    created(ctx, creation_id, new_id)
    return {
        "id": new_id,
        "blobId": blob_id(record.blob_sha),
        "threadId": encode(THREAD_PREFIX, record.thread_id),
        "size": record.size - len((record.trace or "").encode("utf-8")),
    }


@method("Email/copy", capability=MAIL)
async def email_copy(
    ctx: Context,
    fromAccountId: JmapId,
    accountId: JmapId,
    create: Annotated[dict[CreationId, dict[str, Any]], Field(max_length=500)],
    ifFromInState: State | None = None,
    ifInState: State | None = None,
    onSuccessDestroyOriginal: bool = False,
    destroyFromIfInState: State | None = None,
) -> ImportResponse:
    """Copy emails between accounts. A caller has one account, so there is never another to
    copy from: ``fromAccountNotFound`` for any other, ``invalidArguments`` for the same one
    (RFC 8620 §5.4: the two must differ; to add a mailbox use Email/set)."""
    account_of(ctx, accountId)
    if fromAccountId == accountId:
        raise MethodError("invalidArguments", "fromAccountId and accountId must differ (use Email/set)")
    raise MethodError("fromAccountNotFound", f"no account {fromAccountId}")
