"""mail.emails.send: compose a message, keep it as a draft or send it.

The message is built with :class:`email.message.EmailMessage` (CRLF, RFC 2047 where
needed): From is the caller (display name and address) or ``from_address``, an alias or a
send-as identity of theirs (delivery/senders.py decides; else ``sender_not_allowed``, 403),
then To, Cc, Subject, Date, a new Message-ID and, for a reply, In-Reply-To and References
from the email answered. No header field may contain CR or LF (422), so nobody can add
headers of their own. The envelope sender is always the caller's own address.

* ``draft: true``: stored in the caller's ``drafts`` (read, flagged draft; Bcc kept in the
  stored header so the draft remembers it), not sent.
* Otherwise sent through ``delivery.outbound.submit`` (the one way mail leaves: local
  recipients at once, remote ones through the queue, DKIM signing, a copy in ``sent``). Bcc
  recipients get the message but are not in its header.

``reply_to`` is the id of the caller's email being answered; ``thread_id`` without it answers
the latest email of that thread. ``attachment_ids`` name attachments of the caller's own
emails as ``"<email id>/<index>"`` (forwarding them) or uploads (``"up_..."``, POST /uploads),
which a sent email or a draft keeps from expiring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.outbound import submit
from mailroom.delivery.parse import extract_attachment
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.delivery.senders import check_may_send
from mailroom.domain.html_clean import clean_html
from mailroom.domain.names import EmailAddress
from mailroom.domain.numbers import Id
from mailroom.errors import (
    Conflict,
    FieldError,
    InvalidParams,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from mailroom.registry import POST, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.services.mail.uploads import mark_used, uploaded_attachments
from mailroom.store import emails as email_store
from mailroom.store import identities as identity_store
from mailroom.store import threads as thread_store
from mailroom.store import users as users_store
from mailroom.store.emails import StoredEmail

_ADDR_SPEC = re.compile(r"^[^\s@<>()\[\],;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
#: ``<email id>/<index>`` (an attachment of one's own email) or an upload's ``up_...`` id.
_ATTACHMENT_ID = re.compile(r"^(?:(\d{1,18})/(\d{1,6})|up_[A-Za-z0-9_-]{16,37})$")
#: References kept in a reply (the newest ones).
MAX_REFERENCES = 20


def _no_line_breaks(value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError("must not contain CR, LF or NUL")
    return value


def _address(value: str) -> str:
    _no_line_breaks(value)
    found = getaddresses([value])
    if len(found) != 1 or not _ADDR_SPEC.match(found[0][1]):
        raise ValueError("is not one address (name@example.org or Name <name@example.org>)")
    return value.strip()


Recipient = Annotated[str, Field(max_length=320 + 200), AfterValidator(_address)]
Recipients = Annotated[list[Recipient], Field(max_length=500)]
HeaderText = Annotated[str, Field(max_length=998), AfterValidator(_no_line_breaks)]
#: One entry of ``attachment_ids`` (also what a draft's edit takes: services/mail/drafts.py).
AttachmentRef = Annotated[str, Field(pattern=_ATTACHMENT_ID.pattern)]


class EmailCompose(BaseModel):
    """A message to keep as a draft or send."""

    model_config = ConfigDict(extra="forbid")

    to: Recipients = []
    cc: Recipients = []
    bcc: Recipients = []
    subject: HeaderText = ""
    body: Annotated[str, Field(max_length=5_000_000)] = ""
    html_body: Annotated[str | None, Field(max_length=5_000_000)] = None
    reply_to: Annotated[Id | None, Field(description="The id of the email answered.")] = None
    thread_id: Annotated[Id | None, Field(description="Answer the latest email of this thread.")] = None
    attachment_ids: Annotated[
        list[Annotated[str, Field(pattern=_ATTACHMENT_ID.pattern)]],
        Field(
            max_length=100,
            description='Attachments of the caller\'s emails ("<email id>/<index>") or uploads ("up_...").',
        ),
    ] = []
    draft: bool = False
    from_address: EmailAddress | None = Field(
        default=None,
        description=(
            "The From address: by default the caller's own; else an alias of theirs or a send-as "
            "identity (GET /me/identities). Anything else is sender_not_allowed (403)."
        ),
    )


class RecipientOutcome(BaseModel):
    address: str
    status: Literal["delivered", "queued", "error"]
    reason: str | None = None


class ComposeResult(BaseModel):
    """Where the message went: the stored copy (draft or sent) and each recipient's outcome."""

    email_id: int | None
    thread_id: int | None
    message_id: str | None
    status: Literal["draft", "sent", "partially_sent", "failed"]
    recipients: list[RecipientOutcome] = []


def _addr_spec(value: str) -> str:
    return getaddresses([value])[0][1]


async def _answered(ctx: Context, user_id: int, compose: EmailCompose) -> StoredEmail | None:
    async with ctx.rt.db.read() as tx:
        if compose.reply_to is not None:
            row = await email_store.get(tx, user_id, compose.reply_to)
            if row is None:
                raise NotFound.of("email", compose.reply_to)
            return row
        if compose.thread_id is not None:
            thread = await thread_store.get(tx, user_id, compose.thread_id)
            if thread is None or thread.latest_email_id is None:
                raise NotFound.of("thread", compose.thread_id)
            return await email_store.get(tx, user_id, thread.latest_email_id)
    return None


async def _attachments(ctx: Context, user_id: int, ids: list[str]) -> list[tuple[bytes, str, str]]:
    """``(content, media type, file name)`` of each attachment named."""
    out: list[tuple[bytes, str, str]] = []
    for ref in ids:
        if ref.startswith("up_"):  # uploaded beforehand (POST /uploads)
            out.extend(await uploaded_attachments(ctx.rt, user_id, [ref]))
            continue
        match = _ATTACHMENT_ID.match(ref)
        assert match is not None  # the pattern was validated
        email_id, index = int(match.group(1)), int(match.group(2))
        async with ctx.rt.db.read() as tx:
            row = await email_store.get(tx, user_id, email_id)
        info = next((a for a in (row.attachments if row else None) or [] if a.get("index") == index), None)
        if row is None or info is None:
            raise NotFound.of("attachment", ref)
        content = extract_attachment(await ctx.rt.blobs.get(row.blob_sha), str(info["part_path"]))
        if content is None:
            raise NotFound.of("attachment", ref)
        media = str(info.get("content_type") or "application/octet-stream").lower()
        if "/" not in media:
            media = "application/octet-stream"
        out.append((content, media, str(info.get("filename") or f"attachment-{index}")))
    return out


#: The attachments named by ``attachment_ids`` (drafts rebuild their message with them).
attachments_of = _attachments


def _ref(message_id: str | None) -> str | None:
    if not message_id or message_id.startswith("sha256:") or not _no_break(message_id):
        return None
    return f"<{message_id}>"


def _no_break(value: str) -> bool:
    return not any(c in value for c in "\r\n\x00<> ")


@dataclass(frozen=True, slots=True)
class ReplyHeaders:
    """What a reply takes of the email it answers (its In-Reply-To and References)."""

    message_id: str | None
    references: list[str]

    @classmethod
    def of(cls, email: StoredEmail | None) -> ReplyHeaders | None:
        return cls(email.message_id, email.references) if email is not None else None


def build_message(
    *,
    sender: HeaderAddress,
    compose: EmailCompose,
    answered: ReplyHeaders | None,
    attachments: list[tuple[bytes, str, str]],
    message_id: str,
    date: str,
    keep_bcc: bool,
) -> bytes:
    """The RFC 5322 message (CRLF line ends)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    if compose.to:
        msg["To"] = ", ".join(compose.to)
    if compose.cc:
        msg["Cc"] = ", ".join(compose.cc)
    if keep_bcc and compose.bcc:
        msg["Bcc"] = ", ".join(compose.bcc)
    msg["Subject"] = compose.subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    if answered is not None:
        parent = _ref(answered.message_id)
        refs = [r for r in (_ref(i) for i in answered.references or []) if r is not None]
        if parent is not None:
            msg["In-Reply-To"] = parent
            refs.append(parent)
        if refs:
            msg["References"] = " ".join(list(dict.fromkeys(refs))[-MAX_REFERENCES:])
    msg.set_content(compose.body)
    if compose.html_body is not None:  # from any client: reduced to the allowlist first
        msg.add_alternative(clean_html(compose.html_body), subtype="html")
    for content, media, filename in attachments:
        maintype, _, subtype = media.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


@api.method("mail.emails.send", http=POST("/emails", status=201), access=UserSelf(), mutating=True)
async def send_email(ctx: Context, email: EmailCompose) -> ComposeResult:
    """Compose a message: keep it in ``drafts`` (``draft: true``) or send it.

    Sending needs at least one recipient in to, cc or bcc. Replies (``reply_to`` or
    ``thread_id``) carry In-Reply-To and References, so they join the conversation.
    """
    user_id = user_id_of(ctx)
    if not email.draft and not (email.to or email.cc or email.bcc):
        raise InvalidParams([FieldError("to", "a message to send needs at least one recipient", "missing")])
    address = ctx.principal.email
    assert address is not None
    async with ctx.rt.db.read() as tx:
        user = await users_store.get(tx, address)
    if user is None:
        raise NotFound.of("user", address)
    answered = await _answered(ctx, user_id, email)
    attachments = await _attachments(ctx, user_id, email.attachment_ids)
    sender = await from_header(ctx, user_id, email.from_address or address, user.display_name)
    message_id = make_msgid(domain=address.partition("@")[2])
    raw = build_message(
        sender=sender,
        compose=email,
        answered=ReplyHeaders.of(answered),
        attachments=attachments,
        message_id=message_id,
        date=format_datetime(ctx.rt.clock.now()),
        keep_bcc=email.draft,
    )
    if len(raw) > ctx.rt.settings.max_message_bytes:
        raise PayloadTooLarge(f"the message is larger than {ctx.rt.settings.max_message_bytes} bytes")
    uploads = [ref for ref in email.attachment_ids if ref.startswith("up_")]
    # The sender rule (delivery/senders.py) for the From chosen; submit applies it again, so a
    # draft sent later is checked as it is then. The envelope sender is always the caller's
    # own address: bounces come back to them, and SPF holds for an external identity's mail.
    await check_may_send(ctx.rt, user_id, mail_from=address, raw=raw)
    if email.draft:
        draft = await _store_draft(ctx, user_id, address, raw, message_id)
        if uploads and draft.email_id is not None:
            await mark_used(ctx.rt, user_id, uploads, draft.email_id)  # they no longer expire
        return draft
    recipients = list(dict.fromkeys(_addr_spec(a) for a in [*email.to, *email.cc, *email.bcc]))
    result = await submit(
        ctx.rt, raw, mail_from=address, recipients=recipients, source="api", sender_user_id=user_id
    )
    outcomes = [
        RecipientOutcome(address=r.address, status=r.status, reason=r.reason) for r in result.recipients
    ]
    errors = sum(1 for r in outcomes if r.status == "error")
    status: Literal["sent", "partially_sent", "failed"] = (
        "failed" if errors == len(outcomes) else "partially_sent" if errors else "sent"
    )
    thread_id = None
    if result.sent_email_id is not None:
        async with ctx.rt.db.read() as tx:
            row = await email_store.get(tx, user_id, result.sent_email_id)
        thread_id = row.thread_id if row is not None else None
    if uploads and result.sent_email_id is not None:
        await mark_used(ctx.rt, user_id, uploads, result.sent_email_id)
    return ComposeResult(
        email_id=result.sent_email_id,
        thread_id=thread_id,
        message_id=result.message_id or message_id,
        status=status,
        recipients=outcomes,
    )


async def from_header(ctx: Context, user_id: int, address: str, display_name: str) -> HeaderAddress:
    """The From of a composed message: ``address`` with the name of the send-as identity
    for it when that has one, else the caller's display name."""
    if address != ctx.principal.email:
        async with ctx.rt.db.read() as tx:
            identity = await identity_store.get(tx, user_id, address)
        if identity is not None and identity.display_name:
            display_name = identity.display_name
    local, _, domain = address.rpartition("@")
    return HeaderAddress(display_name=display_name, username=local, domain=domain)


async def _store_draft(
    ctx: Context, user_id: int, address: str, raw: bytes, message_id: str
) -> ComposeResult:
    target = Resolution(address, "accepted", [LocalTarget(user_id, address)])
    options = IngestOptions(labels=("drafts",), is_read=True, is_draft=True, trace=False)
    [result] = await ingest(ctx.rt, raw, mail_from="", recipients=[target], source="api", options=options)
    if not result.ok:
        if result.code == 452:
            raise LimitExceeded("the mailbox is full")
        if result.code == 550:
            raise Conflict("the mailbox is disabled")
        raise Unavailable("the draft could not be stored now; try again")
    email_id = result.email_ids[0]
    async with ctx.rt.db.read() as tx:
        row = await email_store.get(tx, user_id, email_id)
    return ComposeResult(
        email_id=email_id,
        thread_id=row.thread_id if row is not None else None,
        message_id=message_id,
        status="draft",
    )
