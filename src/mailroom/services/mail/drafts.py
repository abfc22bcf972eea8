"""Drafts edited and sent, and an email deleted: ``PATCH /emails/{id}``, ``POST
/emails/{id}/send``, ``DELETE /emails/{id}``.

A draft (``POST /emails`` with ``draft: true``) is an email like any other, with ``is_draft``
and a ``version`` that starts at 1:

* ``mail.emails.update`` rebuilds the draft's message with the fields given (the others as
  they are: its recipients, subject, bodies and attachments; its Message-ID, In-Reply-To and
  References stay) and replaces it in place: same id, thread and labels, ``version`` + 1.
  ``if_version`` (REST: ``If-Match`` with the ``ETag``) makes the edit conditional, so two
  tabs do not overwrite each other: a stale one gets ``412 precondition_failed``.
* ``mail.emails.send_draft`` sends the draft through ``mail.emails.send`` itself (an
  in-process call of the same method, so every rule of sending applies: the sender checks,
  limits, DKIM, the ``sent`` copy), answering the draft's email when the draft was a reply,
  then deletes the draft unless every recipient was refused.
* ``mail.emails.delete``: a draft, or mail already in ``trash`` or ``spam``, is deleted for
  good (as the batch ``delete``); any other email goes to the trash (as the batch ``trash``),
  which is what mail clients expect of "delete". The answer says which happened.

Another user's email is ``404`` everywhere; editing or sending an email that is not a draft
is ``409 conflict``.
"""

from __future__ import annotations

import asyncio
from email.utils import format_datetime, make_msgid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mailroom.delivery.ingest import dedup_key, id_key, message_columns, search_document
from mailroom.delivery.parse import parse_message
from mailroom.delivery.senders import check_may_send
from mailroom.domain.names import EmailAddress
from mailroom.domain.numbers import Id
from mailroom.errors import Conflict, LimitExceeded, NotFound, PayloadTooLarge, PreconditionFailed
from mailroom.registry import DELETE, PATCH, POST, Context, UserSelf
from mailroom.services.mail._actions import Target, apply
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.services.mail._push import announce_threads
from mailroom.services.mail.compose import (
    AttachmentRef,
    ComposeResult,
    EmailCompose,
    HeaderText,
    Recipients,
    ReplyHeaders,
    attachments_of,
    build_message,
    from_header,
)
from mailroom.services.mail.emails import EmailDetail, email_detail, load
from mailroom.services.mail.uploads import mark_used
from mailroom.store import blobs as blob_rows
from mailroom.store import emails as email_store
from mailroom.store import fulltext
from mailroom.store import mailbox_queries as queries
from mailroom.store import threads as thread_store
from mailroom.store import users as users_store
from mailroom.store.emails import Quota, StoredEmail

IfVersion = Annotated[
    int | None,
    Field(
        ge=1,
        le=2**31 - 1,
        description="Act only if the email is still at this version (its `version`; REST: or "
        "If-Match with its ETag); else 412 precondition_failed.",
    ),
]
Body = Annotated[str | None, Field(max_length=5_000_000)]
AttachmentIds = Annotated[
    list[AttachmentRef] | None,
    Field(
        max_length=100,
        description='The draft\'s attachments from now on: its own ("<draft id>/<index>"), other '
        'emails\' ("<email id>/<index>") or uploads ("up_..."). Absent: unchanged.',
    ),
]
#: Messages larger than this are parsed in a worker thread, so the event loop keeps serving.
_PARSE_INLINE_BYTES = 256 * 1024


class DeleteResult(BaseModel):
    """What ``DELETE /emails/{id}`` did: ``deleted`` for good, or ``trashed``."""

    email_id: int
    outcome: Literal["deleted", "trashed"]


def _check(row: StoredEmail, if_version: int | None, *, draft: bool = True) -> int:
    """The email's version, after the checks: a draft (409) at ``if_version`` (412)."""
    version = row.version or 1
    if draft and not row.is_draft:
        raise Conflict(f"email {row.id} is not a draft: only drafts can be edited or sent", kind="email")
    if if_version is not None and if_version != version:
        raise PreconditionFailed(
            f"email {row.id} is at version {version}, not {if_version}: it changed meanwhile",
            version=version,
        )
    return version


def _over(quota: Quota, delta: int) -> bool:
    limit = quota.quota_bytes
    return limit > 0 and quota.quota_bytes_used + delta > limit


async def _parse(raw: bytes) -> Any:
    return (
        parse_message(raw) if len(raw) <= _PARSE_INLINE_BYTES else await asyncio.to_thread(parse_message, raw)
    )


def _mailbox(value: dict[str, Any]) -> str:
    email, name = str(value.get("email") or ""), str(value.get("name") or "")
    if not name:
        return email
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{email}>'


def _addresses(values: list[dict[str, Any]] | None) -> list[str]:
    return [_mailbox(a) for a in values or [] if a.get("email")]


async def _as_compose(row: StoredEmail, raw: bytes, own: str) -> EmailCompose:
    """The draft as the compose request that would make it (its own attachments by reference;
    its From as ``from_address`` when that is not ``own``, the caller's address)."""
    parsed = await _parse(raw)
    sender = parsed.from_[0].email.lower() if parsed.from_ else ""
    return EmailCompose.model_construct(
        to=_addresses(row.to_addrs),
        cc=_addresses(row.cc_addrs),
        bcc=_addresses(row.bcc_addrs),
        subject=row.subject or "",
        body=parsed.text_body or "",
        html_body=parsed.html_body,
        reply_to=None,
        thread_id=None,
        attachment_ids=[f"{row.id}/{a['index']}" for a in row.attachments or []],
        draft=True,
        from_address=sender if sender and sender != own.lower() else None,
    )


def _thread_headers(row: StoredEmail) -> ReplyHeaders:
    """In-Reply-To and References as build_message takes them from an answered email."""
    parent = row.in_reply_to[0] if row.in_reply_to else None
    return ReplyHeaders(parent, list(row.references or []))


@api.method("mail.emails.update", http=PATCH("/emails/{id}"), access=UserSelf(), mutating=True)
async def update_draft(
    ctx: Context,
    id: Id,
    to: Recipients | None = None,
    cc: Recipients | None = None,
    bcc: Recipients | None = None,
    subject: HeaderText | None = None,
    body: Body = None,
    html_body: Annotated[Body, Field(description='The HTML part; "" removes it. Absent: unchanged.')] = None,
    attachment_ids: AttachmentIds = None,
    from_address: Annotated[
        EmailAddress | None,
        Field(
            description="The From address: the caller's own, an alias of theirs or a send-as identity "
            "(GET /me/identities); anything else is sender_not_allowed (403). Absent: unchanged."
        ),
    ] = None,
    if_version: IfVersion = None,
) -> EmailDetail:
    """Edit one of the caller's drafts: the fields given replace the draft's, the others stay.

    The draft keeps its id, thread, labels and Message-ID; its ``version`` grows by one.
    With ``if_version`` (REST: ``If-Match``) an edit made meanwhile elsewhere is a 412.
    """
    rt, user_id = ctx.rt, user_id_of(ctx)
    row, raw = await load(ctx, id)
    version = _check(row, if_version)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "subject": subject,
            "body": body,
            "html_body": html_body,
            "attachment_ids": attachment_ids,
            "from_address": from_address,
        }.items()
        if v is not None
    }
    if changes.get("html_body") == "":
        changes["html_body"] = None
    address = ctx.principal.email
    assert address is not None
    compose = (await _as_compose(row, raw, address)).model_copy(update=changes)
    attachments = await attachments_of(ctx, user_id, compose.attachment_ids)
    async with rt.db.read() as tx:
        user = await users_store.get(tx, address)
    if user is None:
        raise NotFound.of("user", address)
    domain = address.partition("@")[2]
    stored_id = row.message_id
    message_id = (
        f"<{stored_id}>"
        if stored_id and not str(stored_id).startswith("sha256:")
        else make_msgid(domain=domain)
    )
    sender = await from_header(ctx, user_id, compose.from_address or address, user.display_name)
    new_raw = build_message(
        sender=sender,
        compose=compose,
        answered=_thread_headers(row),
        attachments=attachments,
        message_id=message_id,
        date=format_datetime(rt.clock.now()),
        keep_bcc=True,
    )
    if len(new_raw) > rt.settings.max_message_bytes:
        raise PayloadTooLarge(f"the message is larger than {rt.settings.max_message_bytes} bytes")
    if from_address is not None:  # the sender rule for a From chosen now (as mail.emails.send does)
        await check_may_send(rt, user_id, mail_from=address, raw=new_raw)
    parsed = await _parse(new_raw)
    sha = await rt.blobs.put(new_raw)
    values: email_store.DraftColumns = {
        **message_columns(parsed),
        "message_id": id_key(parsed.message_id) if parsed.message_id else None,
        "blob_sha": sha,
        "size": len(new_raw),
        "dedup": dedup_key(parsed.message_id, sha),
    }
    delta = len(new_raw) - row.size
    now = rt.clock.now()
    async with rt.db.write() as tx:
        await blob_rows.record(tx, sha, len(new_raw), now)
        await rt.blobs.ensure(sha, new_raw)  # a collector may have removed the file meanwhile
        if delta > 0:
            quota = await email_store.quota(tx, user_id)
            if quota is not None and _over(quota, delta):
                raise LimitExceeded("the mailbox is full")
        if not await email_store.replace_draft(tx, user_id, id, version=version, values=values):
            current = await email_store.get(tx, user_id, id)
            if current is None:
                raise NotFound.of("email", id)
            _check(current, version)  # 409 or 412: sent or edited meanwhile
        await fulltext.index(tx, id, user_id, search_document(parsed))
        await email_store.add_quota_used(tx, user_id, delta)
        await thread_store.refresh(tx, row.thread_id)
        if row.blob_sha != sha:
            await queries.release_blobs(tx, rt.blobs, [row.blob_sha])
        updated = await email_store.get(tx, user_id, id)
    assert updated is not None
    uploads = [ref for ref in compose.attachment_ids if ref.startswith("up_")]
    if uploads:
        await mark_used(rt, user_id, uploads, id)
    await announce_threads(rt, user_id, [row.thread_id], "draft_updated")
    return await email_detail(ctx, updated, new_raw)


@api.method("mail.emails.send_draft", http=POST("/emails/{id}/send"), access=UserSelf(), mutating=True)
async def send_draft(ctx: Context, id: Id, if_version: IfVersion = None) -> ComposeResult:
    """Send one of the caller's drafts as ``mail.emails.send`` would send it (the same rules
    and checks), then delete the draft unless every recipient was refused (then it stays, to
    be corrected). A draft that answers an email goes out as a reply to it."""
    rt, user_id = ctx.rt, user_id_of(ctx)
    row, raw = await load(ctx, id)
    version = _check(row, if_version)
    address = ctx.principal.email
    assert address is not None
    compose = await _as_compose(row, raw, address)
    parent = row.in_reply_to[0] if row.in_reply_to else None
    if parent:
        async with rt.db.read() as tx:
            compose.reply_to = await email_store.answered_by(tx, user_id, id_key(str(parent)))
    request = compose.model_dump(exclude={"draft"}, exclude_none=True)
    result = ComposeResult.model_validate(await ctx.invoke("mail.emails.send", {"email": request}))
    if result.status == "failed":
        return result
    async with rt.db.write() as tx:
        current = await email_store.get(tx, user_id, id)
        # Edited in another tab while this one was sent: that edit is kept, unsent.
        if current is not None and (current.version or 1) == version:
            gone = await email_store.delete_emails(tx, user_id, [id])
            await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in gone])
    await announce_threads(rt, user_id, [row.thread_id], "draft_sent")
    return result


@api.method("mail.emails.delete", http=DELETE("/emails/{id}", status=200), access=UserSelf(), mutating=True)
async def delete_email(ctx: Context, id: Id, if_version: IfVersion = None) -> DeleteResult:
    """Delete one of the caller's emails: a draft, or mail in ``trash`` or ``spam``, for good
    (quota given back); any other email goes to the trash (``untrash`` brings it back)."""
    rt, user_id = ctx.rt, user_id_of(ctx)
    async with rt.db.write() as tx:
        row = await email_store.get(tx, user_id, id)
        if row is None:
            raise NotFound.of("email", id)
        _check(row, if_version, draft=False)
        outcome: Literal["deleted", "trashed"]
        if row.is_draft or {"trash", "spam"} & set(row.labels):
            gone = await email_store.delete_emails(tx, user_id, [id])
            await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in gone])
            outcome = "deleted"
        else:
            target = {id: Target((id,), (row.thread_id,))}
            await apply(tx, rt, user_id, "trash", target, label=None, until=None)
            outcome = "trashed"
    await announce_threads(rt, user_id, [row.thread_id], "delete" if outcome == "deleted" else "trash")
    return DeleteResult(email_id=id, outcome=outcome)
